"""Each function's replicas on every host, as Prometheus last scraped the
supervisors: what the dashboard's health list and the API's `/health` show.

Each supervisor exports, per function, the replicas it is asked to run, those
alive, those ready (listening, champion loaded) and its restarts. Summed over
supervisors, they cover one host or a cluster alike. A supervisor that stopped
answering has `up == 0`; its series go stale at once, so its replicas are no
longer counted as running."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Settings
from .prometheus import instant

QUERIES = {
    "desired": "sum by (function) (triptych_function_replicas_desired)",
    "alive": "sum by (function) (triptych_function_replicas_running)",
    "running": "sum by (function) (triptych_function_replicas_ready)",
    "restarts": "sum by (function) (triptych_function_replica_restarts)",
}
# Every supervisor Prometheus knows of, by the label its target carries (local file or remote discovery).
SUPERVISORS = 'up{component="supervisor"}'


@dataclass
class ReplicaHealth:
    # {function: {desired, running, starting, restarts}}: running is ready to serve,
    # starting is alive but not ready (an inference replica waits for a champion).
    functions: dict[str, dict[str, int]] = field(default_factory=dict)
    supervisors_up: list[str] = field(default_factory=list)
    supervisors_down: list[str] = field(default_factory=list)

    def supervisor_problems(self) -> list[str]:
        return [f"the function supervisor at {s} does not answer Prometheus" for s in self.supervisors_down]

    def function_problems(self) -> list[str]:
        return [
            f"function {name} has no running replica ({c['desired']} wanted"
            + (f", {c['starting']} starting: an inference replica waits for a champion)" if c["starting"] else ")")
            for name, c in self.functions.items()
            if c["desired"] > 0 and c["running"] == 0
        ]

    def problems(self) -> list[str]:
        return self.supervisor_problems() + self.function_problems()


def from_series(
    series: dict[str, list[tuple[dict[str, str], float]]], supervisors: list[tuple[dict[str, str], float]]
) -> ReplicaHealth:
    """Pure: the health the query results describe (`series`: QUERIES' name -> result)."""
    by_function: dict[str, dict[str, int]] = {}
    for figure, results in series.items():
        for labels, value in results:
            name = labels.get("function")
            if name:
                by_function.setdefault(name, dict.fromkeys(QUERIES, 0))[figure] = int(value)
    functions = {
        name: {
            "desired": f["desired"],
            "running": f["running"],
            "starting": max(0, f["alive"] - f["running"]),
            "restarts": f["restarts"],
        }
        for name, f in sorted(by_function.items())
    }
    return ReplicaHealth(
        functions=functions,
        supervisors_up=sorted(labels.get("instance", "?") for labels, value in supervisors if value == 1),
        supervisors_down=sorted(labels.get("instance", "?") for labels, value in supervisors if value != 1),
    )


def replica_health(settings: Settings) -> ReplicaHealth:
    """Raises PrometheusUnavailable when Prometheus does not answer."""
    return from_series({figure: instant(settings, q) for figure, q in QUERIES.items()}, instant(settings, SUPERVISORS))
