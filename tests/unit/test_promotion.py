"""The promotion gate's two decisions: offline (held-out, same images) and live (shadow)."""

import pytest

from triptych.lifecycle.gate import (
    CHALLENGER,
    CHAMPION,
    KEPT,
    REGISTERED,
    REJECTED,
    decide,
    decide_live,
)
from triptych.lifecycle.training_set import HOLD_OUT_SHARE, TrainingSet, held_out


def test_first_version_becomes_champion():
    assert decide(0.4, None, 0.02).outcome == CHAMPION


def test_better_by_the_margin_enters_shadow_not_service():
    decision = decide(0.93, 0.90, 0.02)
    assert decision.outcome == CHALLENGER and "shadow" in decision.reason
    assert decision.figures == {"candidate_accuracy": 0.93, "champion_accuracy": 0.90, "margin": 0.02}


def test_not_better_by_the_margin_is_rejected():
    decision = decide(0.91, 0.90, 0.02)
    assert decision.outcome == REJECTED and "does not beat" in decision.reason
    assert decide(0.95, 0.90, 0.10).outcome == REJECTED  # a per-architecture margin


def test_policies():
    assert decide(1.0, 0.1, 0.02, "never").outcome == REGISTERED
    assert decide(0.1, 1.0, 0.02, "always").outcome == CHAMPION
    with pytest.raises(ValueError, match="promotion policy"):
        decide(0.5, 0.5, 0.02, "sometimes")


def test_shadow_keeps_the_challenger_while_the_evidence_is_short():
    decision = decide_live(wins=6, losses=2, labelled=50, budget=2000, alpha=0.05)
    assert decision.outcome == KEPT and "50 of at most 2000" in decision.reason
    assert decision.figures["e_value"] < 20 and not decision.figures["significant"]


def test_shadow_decides_as_soon_as_the_evidence_is_significant_either_way():
    better = decide_live(wins=30, losses=5, labelled=120, budget=2000, alpha=0.05)
    assert better.outcome == CHAMPION and better.figures["significant"] and not better.figures["at_budget"]
    assert better.figures["e_value"] >= 20 and "won 30" in better.reason
    worse = decide_live(wins=5, losses=30, labelled=120, budget=2000, alpha=0.05)
    assert worse.outcome == REJECTED and worse.figures["significant"]


def test_at_the_label_budget_the_old_rule_decides_and_says_so():
    tie = decide_live(wins=40, losses=40, labelled=2000, budget=2000, alpha=0.05)
    assert tie.outcome == CHAMPION and tie.figures["at_budget"] and not tie.figures["significant"]
    assert "without significance" in tie.reason  # a tie is not worse
    worse = decide_live(
        wins=39, losses=41, labelled=2000, budget=2000, alpha=0.05, challenger_correct=1500, champion_correct=1502
    )
    assert worse.outcome == REJECTED and worse.figures["challenger_accuracy"] < worse.figures["champion_accuracy"]


def test_the_labelled_split_is_deterministic_and_about_one_in_five():
    hashes = [f"{i * 2654435761 % 2**32:08x}" + "0" * 56 for i in range(5000)]
    first = [held_out(h) for h in hashes]
    assert first == [held_out(h) for h in hashes]
    assert abs(sum(first) / len(first) - 1 / HOLD_OUT_SHARE) < 0.03


def test_a_training_set_names_its_parts_and_round_trips():
    plain = TrainingSet("triptych-shapes-v1", train_count=100, test_count=10)
    assert plain.dataset_id == "triptych-shapes-v1"
    mixed = TrainingSet("triptych-shapes-v1", "labelled-abc", 100, 10, labelled_train=8, labelled_test=2)
    assert mixed.dataset_id == "triptych-shapes-v1+labelled-abc"
    assert TrainingSet.from_dict(mixed.as_dict()) == mixed
