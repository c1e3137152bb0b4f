"""The Compare page's significance figures (triptych.stats.paired), each checked
against an independent computation on planted data: McNemar against a binomial
summed by hand, Cochran's Q against its formula, and the bootstrap interval
covering the true difference about 95 % of the time."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from triptych.stats.paired import cochran, matrix, mcnemar_p, more_labels_needed, pair_test, significance, verdict


def binomial_two_sided(b: int, c: int) -> float:
    n, k = b + c, min(b, c)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n)


@pytest.mark.parametrize("b, c", [(0, 0), (1, 0), (5, 5), (12, 3), (3, 12), (40, 25), (100, 60)])
def test_mcnemar_is_the_exact_binomial_on_the_discordant_pairs(b, c):
    assert mcnemar_p(b, c) == pytest.approx(binomial_two_sided(b, c), rel=1e-9, abs=1e-15)


def test_cochran_q_matches_its_formula():
    rng = np.random.default_rng(1)
    correct = (rng.random((400, 3)) < [0.7, 0.6, 0.65]).astype(np.int8)
    k, rows, cols = 3, correct.sum(axis=1), correct.sum(axis=0)
    expected = (k - 1) * (k * np.sum(cols**2) - rows.sum() ** 2) / (k * rows.sum() - np.sum(rows**2))
    q, p = cochran(correct)
    assert q == pytest.approx(expected)
    assert 0 < p < 1


def test_the_bootstrap_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    # On 60 % of images both models are right or wrong together (69 % right); on the
    # rest they answer independently, 75 % and 63 % right: the true difference is
    # 0.4 * (0.75 - 0.63) = 0.048.
    truth, covered, trials = 0.4 * (0.75 - 0.63), 0, 200
    for seed in range(trials):
        shared = rng.random(600) < 0.6
        common = rng.random(600) < 0.69
        first = np.where(shared, common, rng.random(600) < 0.75).astype(np.int8)
        second = np.where(shared, common, rng.random(600) < 0.63).astype(np.int8)
        result = pair_test(("a", "b"), first, second, seed=seed)
        covered += result.ci_low <= truth <= result.ci_high
    assert 0.90 <= covered / trials <= 0.99, covered


def test_a_clear_gap_says_so_and_a_small_one_says_how_many_labels_would_settle_it():
    clear = significance(
        ["resnet50", "mobilenet_v2"], {(True, True): 900, (True, False): 120, (False, True): 40, (False, False): 150}
    )
    [pair] = clear["pairs"]
    assert (pair["n"], pair["b"], pair["c"]) == (1210, 120, 40)
    assert pair["accuracy_difference"] == pytest.approx(80 / 1210)
    assert pair["ci_low"] < pair["accuracy_difference"] < pair["ci_high"]
    words = verdict(pair, {"resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2"}.get)
    assert words.startswith("ResNet50 is more accurate than MobileNetV2: +6.6 points (95 % CI")
    assert "p < 0.0001 over 1,210 labelled images" in words

    small = significance(["a", "b"], {(True, True): 800, (True, False): 33, (False, True): 27, (False, False): 140})
    [pair] = small["pairs"]
    assert pair["p_value"] > 0.05 and pair["more_labels_needed"] > 0
    assert "Not enough evidence that a is more accurate than b" in verdict(pair)
    # The extrapolation is right: at that many more labels, the same rates are significant.
    total = 1000 + pair["more_labels_needed"]
    assert mcnemar_p(round(33 * total / 1000), round(27 * total / 1000)) < 0.05
    assert more_labels_needed(30, 30, 1000) is None


def test_the_worse_model_listed_first_is_named_second_in_words():
    [pair] = significance(["a", "b"], {(True, True): 500, (True, False): 10, (False, True): 60})["pairs"]
    assert pair["accuracy_difference"] < 0
    assert verdict(pair).startswith("b is more accurate than a: +8.8 points")


def test_cochran_over_three_models_and_the_patterns_round_trip():
    patterns = {(True, True, True): 50, (True, False, False): 30, (False, False, True): 5, (False, False, False): 15}
    correct = matrix(patterns, 3)
    assert correct.shape == (100, 3) and correct.sum(axis=0).tolist() == [80, 50, 55]
    result = significance(["a", "b", "c"], patterns)
    assert len(result["pairs"]) == 3 and result["n"] == 100
    assert result["cochran_q"]["p_value"] < 0.001 and result["cochran_q"]["df"] == 2
    assert significance(["a", "b"], {})["cochran_q"] is None
