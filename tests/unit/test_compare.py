import pytest

from triptych.aggregation.compare import Answer, compare, model_set_key


def a(model, cls, conf=0.9, ms=10.0, version="1"):
    return Answer(model, version, cls, conf, ms)


def test_all_agree():
    c = compare(
        [a("resnet50", "cat", 0.9, 30), a("mobilenet_v2", "cat", 0.7, 5), a("efficientnet_b0", "cat", 0.8, 9)], "cat"
    )
    assert (c.consensus_class, c.agreement_level, c.agreement_ratio) == ("cat", "all", 1.0)
    assert c.consensus_confidence == pytest.approx(0.8)
    assert c.fastest_model == "mobilenet_v2" and c.fastest_inference_ms == 5
    assert c.consensus_correct is True and c.needs_review is False
    assert all(m["correct"] for m in c.per_model.values())


def test_majority_and_per_model_correctness():
    c = compare([a("resnet50", "dog"), a("mobilenet_v2", "cat"), a("efficientnet_b0", "dog")], "cat")
    assert (c.consensus_class, c.agreement_level) == ("dog", "majority")
    assert c.agreement_ratio == pytest.approx(2 / 3)
    assert c.consensus_correct is False and c.needs_review is True
    assert {m: v["correct"] for m, v in c.per_model.items()} == {
        "resnet50": False,
        "mobilenet_v2": True,
        "efficientnet_b0": False,
    }


def test_three_way_split_goes_to_the_most_confident_class():
    c = compare([a("resnet50", "dog", 0.5), a("mobilenet_v2", "cat", 0.8), a("efficientnet_b0", "fox", 0.6)], None)
    assert (c.consensus_class, c.agreement_level) == ("cat", "none")
    assert c.consensus_correct is None and all(v["correct"] is None for v in c.per_model.values())


def test_two_two_tie_is_broken_by_mean_confidence():
    c = compare([a("m1", "dog", 0.9), a("m2", "dog", 0.5), a("m3", "cat", 0.8), a("m4", "cat", 0.7)], None)
    assert c.consensus_class == "cat" and c.agreement_level == "none"  # 0.75 > 0.70; half is not a majority


def test_perfect_tie_is_decided_the_same_way_every_time():
    answers = [a("m1", "dog", 0.5), a("m2", "cat", 0.5)]
    assert compare(answers, None).consensus_class == compare(list(reversed(answers)), None).consensus_class


def test_model_set_names_every_version_in_a_stable_order():
    answers = [a("resnet50", "x", version="3"), a("efficientnet_b0", "x", version="1")]
    assert model_set_key(answers) == "efficientnet_b0@1,resnet50@3"
    assert compare(answers, None).model_set == model_set_key(list(reversed(answers)))


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError):
        compare([], None)
    with pytest.raises(ValueError):
        compare([a("resnet50", "x"), a("resnet50", "y", version="2")], None)
