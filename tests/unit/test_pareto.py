"""The Compare page's "which model for my budget" (triptych.stats.pareto), against
a brute-force check of dominance on planted points."""

from __future__ import annotations

import itertools
import random

from triptych.stats.pareto import best_within, pareto_front


def dominated(p, q) -> bool:
    """q is at least as cheap and as accurate as p, and better on one."""
    return (
        q["ms"] <= p["ms"] and q["accuracy"] >= p["accuracy"] and (q["ms"], q["accuracy"]) != (p["ms"], p["accuracy"])
    )


def test_the_front_is_exactly_the_undominated_points():
    rng = random.Random(5)
    for _ in range(200):
        points = [
            {"ms": rng.choice([5, 10, 20, 30, 50]), "accuracy": rng.choice([0.4, 0.5, 0.6, 0.7])}
            for _ in range(rng.randint(1, 8))
        ]
        front = pareto_front(points, "ms")
        expected = {(p["ms"], p["accuracy"]) for p in points if not any(dominated(p, q) for q in points)}
        assert {(p["ms"], p["accuracy"]) for p in front} == expected
        assert all(a["ms"] < b["ms"] and a["accuracy"] < b["accuracy"] for a, b in itertools.pairwise(front))


def test_the_best_model_within_a_budget_and_none_when_nothing_fits():
    points = [
        {"name": "resnet50", "ms": 49.9, "accuracy": 0.55},
        {"name": "mobilenet_v2", "ms": 10.3, "accuracy": 0.52},
        {"name": "efficientnet_b0", "ms": 16.0, "accuracy": 0.39},
        {"name": "slow", "ms": None, "accuracy": 0.9},
    ]
    assert best_within(points, "ms", 50)["name"] == "resnet50"
    assert best_within(points, "ms", 20)["name"] == "mobilenet_v2"
    assert best_within(points, "ms", 5) is None
    assert [p["name"] for p in pareto_front(points, "ms")] == ["mobilenet_v2", "resnet50"]
