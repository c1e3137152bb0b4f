"""Which model for my budget? Model versions as points of cost (p95 latency, CPU
per image) against accuracy: the Pareto front is the versions no other beats on
both at once, and the answer to "which model at a 50 ms budget" is the most
accurate version whose cost fits."""

from __future__ import annotations

from typing import Any


def pareto_front(points: list[dict[str, Any]], cost: str, benefit: str = "accuracy") -> list[dict[str, Any]]:
    """The points no other is at least as good as on both `cost` (lower is better)
    and `benefit` (higher is better) and strictly better on one, cheapest first.
    Points missing either figure are left out."""
    usable = sorted(
        (p for p in points if p.get(cost) is not None and p.get(benefit) is not None),
        key=lambda p: (p[cost], -p[benefit]),
    )
    front, best = [], float("-inf")
    for point in usable:
        if point[benefit] > best:
            front.append(point)
            best = point[benefit]
    return front


def best_within(
    points: list[dict[str, Any]], cost: str, budget: float, benefit: str = "accuracy"
) -> dict[str, Any] | None:
    """The most beneficial point whose cost is within `budget` (the cheaper on a tie); None if none fits."""
    fitting = [p for p in pareto_front(points, cost, benefit) if p[cost] <= budget]
    return fitting[-1] if fitting else None
