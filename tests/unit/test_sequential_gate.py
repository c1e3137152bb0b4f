"""The shadow gate's e-value (triptych.stats.evalue), checked against an exact
computation and by simulation: looking after every labelled image, it promotes
on noise in at most alpha of 2,000 streams where both models are equally
accurate, and it decides soon when one is clearly better."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from triptych.lifecycle.gate import CHAMPION, KEPT, decide_live
from triptych.stats.evalue import e_value, evidence, evidence_path, log_e_value

ALPHA = 0.05
STREAMS = 2000
LABELS = 1000  # labelled images per stream, the gate looking after each one


def exact_e(a: int, b: int) -> Fraction:
    """2^n B(a+1, b+1) = 2^n a! b! / (n+1)!, in exact arithmetic."""
    n = a + b
    return Fraction(2**n * math.factorial(a) * math.factorial(b), math.factorial(n + 1))


@pytest.mark.parametrize("a, b", [(0, 0), (1, 0), (3, 7), (20, 5), (60, 40), (120, 80)])
def test_the_e_value_is_the_beta_mixture_likelihood_ratio(a, b):
    assert e_value(a, b) == pytest.approx(float(exact_e(a, b)), rel=1e-9)
    assert e_value(a, b) == pytest.approx(e_value(b, a))  # two-sided: symmetric in the models


def test_it_starts_at_one_and_stays_below_one_on_a_perfect_tie():
    assert e_value(0, 0) == 1
    assert all(e_value(k, k) < 1 for k in range(1, 200))
    assert evidence(50, 50, ALPHA).verdict is None


def paths(rng, p_challenger: float, p_champion: float, correlation_share: float = 0.6):
    """(streams x labels) correctness of both models: on a share of the images both
    answer alike (easy or hard for both), elsewhere independently."""
    shape = (STREAMS, LABELS)
    shared = rng.random(shape) < correlation_share
    common = rng.random(shape) < (p_challenger + p_champion) / 2
    challenger = np.where(shared, common, rng.random(shape) < p_challenger)
    champion = np.where(shared, common, rng.random(shape) < p_champion)
    return challenger, champion


def first_crossing(challenger, champion):
    """For each stream: the label at which E first reaches 1/alpha (-1: never), and
    who was ahead then."""
    wins = np.cumsum(challenger & ~champion, axis=1)
    losses = np.cumsum(champion & ~challenger, axis=1)
    crossed = log_e_value(wins, losses) >= math.log(1 / ALPHA)
    at = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    rows = np.arange(len(at))
    ahead = np.where(at >= 0, np.sign(wins[rows, at] - losses[rows, at]), 0)
    return at, ahead


def test_under_equal_accuracy_it_promotes_on_noise_in_at_most_alpha_of_the_streams():
    rng = np.random.default_rng(20261203)
    challenger, champion = paths(rng, 0.7, 0.7)
    at, ahead = first_crossing(challenger, champion)
    false_promotions = np.mean(ahead > 0)
    false_decisions = np.mean(at >= 0)
    print(
        f"\n[gate, equal accuracy] {STREAMS} streams x {LABELS} looks: false promotions {false_promotions:.4f}, "
        f"any decision {false_decisions:.4f} (alpha {ALPHA})"
    )
    assert false_promotions <= ALPHA
    assert false_decisions <= ALPHA  # Ville: promotions and rejections together


@pytest.mark.parametrize("better, worse, median_within", [(0.9, 0.5, 100), (0.8, 0.6, 300)])
def test_a_clearly_better_challenger_is_promoted_the_sooner_the_larger_the_gap(better, worse, median_within):
    rng = np.random.default_rng(7)
    challenger, champion = paths(rng, better, worse)
    at, ahead = first_crossing(challenger, champion)
    promoted = ahead > 0
    print(
        f"\n[gate, {better} vs {worse}] promoted in {promoted.mean():.3f} of streams, median at "
        f"{np.median(at[promoted]):.0f} labelled images; wrongly rejected in {np.mean(ahead < 0):.4f}"
    )
    assert promoted.mean() > 0.99
    assert np.median(at[promoted]) < median_within
    assert np.mean(ahead < 0) <= ALPHA


def test_the_gate_decision_matches_the_evidence_on_a_stream():
    rng = np.random.default_rng(3)
    challenger, champion = (x[0] for x in paths(rng, 0.85, 0.55))
    e, wins_so_far, losses_so_far = evidence_path(challenger, champion)
    first = int(np.argmax(e >= 1 / ALPHA))
    for labelled in (first, first + 1):
        wins = int(np.sum((challenger & ~champion)[:labelled]))
        losses = int(np.sum((champion & ~challenger)[:labelled]))
        outcome = decide_live(wins, losses, labelled, budget=2000, alpha=ALPHA).outcome
        assert outcome == (KEPT if labelled == first else CHAMPION)
    assert wins_so_far[-1] + losses_so_far[-1] == np.sum(challenger != champion)
