"""When a newly trained version becomes champion."""

import pytest

from triptych.models.lifecycle import decide


def test_first_version_is_promoted():
    assert decide(0.4, None, 0.02).promote


def test_promoted_only_when_better_by_the_margin():
    assert decide(0.93, 0.90, 0.02).promote
    assert not decide(0.91, 0.90, 0.02).promote
    assert "does not beat" in decide(0.91, 0.90, 0.02).reason


def test_versions_trained_on_different_sets_are_not_compared():
    decision = decide(0.99, 0.70, 0.02, candidate_dataset="triptych-shapes-v1", champion_dataset="cifar10")
    assert not decision.promote and "not comparable" in decision.reason and "cifar10" in decision.reason
    assert decide(0.99, 0.70, 0.02, "always", "triptych-shapes-v1", "cifar10").promote
    assert decide(0.99, 0.70, 0.02, candidate_dataset="cifar10", champion_dataset="cifar10").promote


def test_policies():
    assert not decide(1.0, 0.1, 0.02, "never").promote
    assert decide(0.1, 1.0, 0.02, "always").promote
    with pytest.raises(ValueError, match="promotion policy"):
        decide(0.5, 0.5, 0.02, "sometimes")
