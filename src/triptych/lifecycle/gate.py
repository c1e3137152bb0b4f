"""The promotion gate, in two phases.

1. Offline, after training: the candidate and the champion are judged on the same
   held-out set. A candidate better by the margin (per architecture) becomes the
   `challenger`; otherwise it is rejected. With no champion yet it becomes champion.
2. Live, in shadow: the challenger answers the live stream beside the champion
   (the `infer-shadow` function). Every minute the gate looks at the labelled
   images both answered, and at the disagreements among them: a won by the
   challenger, b by the champion. Their e-value E = 2^n B(a+1, b+1)
   (`triptych.stats.evalue`) stays below 1/alpha with probability 1 - alpha when
   the two are equally accurate, however many times it is looked at. Once
   E >= 1/alpha the challenger is promoted if a > b and rejected if b > a: soon
   when the difference is large, never on noise. If `shadow_label_budget`
   labelled images pass first, the old rule decides (promoted when not worse),
   and the decision says it came at the budget, without significance. The
   inference functions hot-swap.

Every decision is a `system_events` row, tags on the MLflow version, and (when
`decision_webhook_url` is set) a JSON POST.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass, field

from prometheus_client import Gauge

from ..config import Settings
from ..db.connection import Database
from ..db.events import log_system_event
from ..models import registry
from ..models.champion_alias import announce, promote
from ..models.zoo import ARCHITECTURES
from ..stats.evalue import e_value, evidence
from . import wake_signals

log = logging.getLogger("triptych.lifecycle")

POLICIES = ("if-better", "always", "never")
# What a decision does to the candidate.
CHAMPION, CHALLENGER, REJECTED, REGISTERED, KEPT = "champion", "challenger", "rejected", "registered", "kept"


@dataclass
class Decision:
    outcome: str  # champion | challenger | rejected | registered (policy never) | kept (still in shadow)
    reason: str
    figures: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def decide(candidate: float, champion: float | None, margin: float, policy: str = "if-better") -> Decision:
    """Phase 1: held-out accuracies of candidate and champion on the same images."""
    if policy not in POLICIES:
        raise ValueError(f"promotion policy must be one of {POLICIES}")
    figures = {"candidate_accuracy": candidate, "champion_accuracy": champion, "margin": margin}
    if policy == "never":
        return Decision(REGISTERED, "promotion disabled (policy never)", figures)
    if policy == "always":
        return Decision(CHAMPION, "promotion forced (policy always)", figures)
    if champion is None:
        return Decision(CHAMPION, "no champion yet", figures)
    if candidate >= champion + margin:
        return Decision(
            CHALLENGER,
            f"held-out accuracy {candidate:.4f} beats the champion's {champion:.4f} on the "
            f"same images by >= {margin}: served in shadow",
            figures,
        )
    return Decision(
        REJECTED,
        f"held-out accuracy {candidate:.4f} does not beat the champion's {champion:.4f} on the same images by {margin}",
        figures,
    )


def decide_live(
    wins: int,
    losses: int,
    labelled: int,
    budget: int,
    alpha: float,
    challenger_correct: int | None = None,
    champion_correct: int | None = None,
) -> Decision:
    """Phase 2: the labelled live images both answered; `wins` and `losses` are the
    disagreements among them the challenger and the champion got right."""
    seen = evidence(wins, losses, alpha)
    challenger_correct = wins if challenger_correct is None else challenger_correct
    champion_correct = losses if champion_correct is None else champion_correct
    figures = {
        "labelled": labelled,
        "wins": wins,
        "losses": losses,
        "disagreements": seen.disagreements,
        "e_value": round(seen.e, 4),
        "threshold": seen.threshold,
        "alpha": alpha,
        "budget": budget,
        "challenger_correct": challenger_correct,
        "champion_correct": champion_correct,
        "significant": seen.significant,
        "at_budget": False,
    }
    if labelled:
        figures.update(challenger_accuracy=challenger_correct / labelled, champion_accuracy=champion_correct / labelled)
    duel = (
        f"of {seen.disagreements} labelled images where only one was right, the challenger won {wins} and "
        f"the champion {losses}"
    )
    if seen.verdict == "better":
        return Decision(
            CHAMPION,
            f"more accurate live: {duel}; E = {seen.e:.3g} >= {seen.threshold:g} "
            f"(alpha {alpha}) after {labelled} labelled images",
            figures,
        )
    if seen.verdict == "worse":
        return Decision(
            REJECTED,
            f"less accurate live: {duel}; E = {seen.e:.3g} >= {seen.threshold:g} "
            f"(alpha {alpha}) after {labelled} labelled images",
            figures,
        )
    if labelled < budget:
        return Decision(
            KEPT,
            f"in shadow: {duel}; E = {seen.e:.3g} of {seen.threshold:g} needed, "
            f"{labelled} of at most {budget} labelled images",
            figures,
        )
    figures["at_budget"] = True
    if wins >= losses:  # the same images: not fewer right is not worse
        return Decision(
            CHAMPION,
            f"not worse live at the label budget ({budget} images), without significance: "
            f"{duel}; E = {seen.e:.3g} < {seen.threshold:g}",
            figures,
        )
    return Decision(
        REJECTED,
        f"worse live at the label budget ({budget} images), without significance: "
        f"{duel}; E = {seen.e:.3g} < {seen.threshold:g}",
        figures,
    )


def apply(model_name: str, version: str, decision: Decision, settings: Settings, run_id: str | None = None) -> None:
    """Make the decision true in the registry, tell the functions, and record it."""
    figures = {k: v for k, v in decision.figures.items() if v is not None}
    if decision.outcome == CHAMPION:
        if registry.version_for_alias(model_name, registry.CHALLENGER, settings) == version:
            _end_shadow(model_name, settings)
        promote(model_name, version, decision.reason, settings)
    elif decision.outcome == CHALLENGER:
        registry.set_alias(model_name, version, registry.CHALLENGER, settings)
        announce(model_name, version, decision.reason, settings, alias=registry.CHALLENGER)
    elif (
        decision.outcome == REJECTED
        and registry.version_for_alias(model_name, registry.CHALLENGER, settings) == version
    ):
        _end_shadow(model_name, settings)
    if decision.outcome == KEPT:
        return  # re-checked every minute: only the final decision is recorded
    registry.tag_version(
        model_name,
        version,
        {
            "decision": decision.outcome,
            "decision_reason": decision.reason,
            **{f"decision_{k}": str(v) for k, v in figures.items()},
        },
        settings,
    )
    record = {
        "model_name": model_name,
        "version": version,
        "decision": decision.outcome,
        "reason": decision.reason,
        "figures": figures,
        "run_id": run_id,
    }
    severity = "warning" if decision.outcome == REJECTED else "info"
    if decision.outcome != CHAMPION:  # promote() records the promotion itself
        log_system_event(
            f"model_{decision.outcome}",
            severity,
            "gate",
            f"{model_name} v{version}: {decision.outcome}: {decision.reason}",
            details=record,
            dedup_key=f"gate:{model_name}:{version}:{decision.outcome}",
            settings=settings,
        )
    notify(record, settings)


def _end_shadow(model_name: str, settings: Settings) -> None:
    registry.delete_alias(model_name, registry.CHALLENGER, settings)
    announce(model_name, None, "shadow phase over", settings, alias=registry.CHALLENGER)


def notify(record: dict, settings: Settings) -> None:
    """POST the decision to the configured webhook; a failure is logged, never raised."""
    if not settings.decision_webhook_url:
        return
    request = urllib.request.Request(
        settings.decision_webhook_url,
        data=json.dumps(record, default=str).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except OSError as exc:
        log.warning("the decision webhook %s failed: %s", settings.decision_webhook_url, exc)


# The labelled live images a challenger (in shadow) and its champion both answered.
_SHADOW_PAIRS = """
FROM predictions s
JOIN predictions c ON c.image_id = s.image_id AND c.model_name = s.model_name
                  AND c.model_version = %(champion)s AND c.role = 'champion'
JOIN images i ON i.image_id = s.image_id
WHERE s.model_name = %(model)s AND s.model_version = %(challenger)s AND s.role = 'shadow'
  AND i.ground_truth_label IS NOT NULL
"""

SHADOW_FIGURES = (
    """
SELECT count(*) AS labelled,
       count(*) FILTER (WHERE s.predicted_class = i.ground_truth_label) AS challenger_correct,
       count(*) FILTER (WHERE c.predicted_class = i.ground_truth_label) AS champion_correct,
       count(*) FILTER (WHERE s.predicted_class = i.ground_truth_label
                          AND c.predicted_class IS DISTINCT FROM i.ground_truth_label) AS wins,
       count(*) FILTER (WHERE c.predicted_class = i.ground_truth_label
                          AND s.predicted_class IS DISTINCT FROM i.ground_truth_label) AS losses
"""
    + _SHADOW_PAIRS
)


def shadow_figures(cur, model_name: str, challenger: str, champion: str) -> dict:
    """Labelled live images both answered, how many each got right, and the
    disagreements each won (only it was right)."""
    cur.execute(SHADOW_FIGURES, {"model": model_name, "challenger": challenger, "champion": champion})
    return dict(cur.fetchone())


SHADOW_DUEL = (
    """
SELECT s.predicted_class = i.ground_truth_label AS challenger_right,
       coalesce(c.predicted_class = i.ground_truth_label, FALSE) AS champion_right
"""
    + _SHADOW_PAIRS
    + """
ORDER BY s.predicted_at, s.image_id
LIMIT %(limit)s
"""
)


def shadow_duel(cur, model_name: str, challenger: str, champion: str, limit: int = 20_000) -> tuple[list, list]:
    """Per labelled image both answered, in the order the challenger answered them:
    was the challenger right, was the champion (what the evidence path is drawn from)."""
    cur.execute(SHADOW_DUEL, {"model": model_name, "challenger": challenger, "champion": champion, "limit": limit})
    rows = cur.fetchall()
    return [bool(r["challenger_right"]) for r in rows], [bool(r["champion_right"]) for r in rows]


# What the shadow gate sees, for Prometheus (the ShadowChallengerWorse alert): the
# jobs function's replica exports them between its minute-by-minute reviews.
SHADOW_ACCURACY = Gauge(
    "triptych_shadow_accuracy", "Live accuracy on the labelled images both versions answered", ("model", "role")
)
SHADOW_LABELLED = Gauge(
    "triptych_shadow_labelled", "Labelled live images a challenger and its champion both answered", ("model",)
)
SHADOW_EVIDENCE = Gauge("triptych_shadow_evidence", "The shadow gate's e-value: it decides at 1/alpha", ("model",))


def _export_shadow(model_name: str, figures: dict) -> None:
    labelled = figures["labelled"]
    SHADOW_LABELLED.labels(model_name).set(labelled)
    SHADOW_EVIDENCE.labels(model_name).set(e_value(figures["wins"], figures["losses"]))
    if labelled:
        SHADOW_ACCURACY.labels(model_name, "challenger").set(figures["challenger_correct"] / labelled)
        SHADOW_ACCURACY.labels(model_name, "champion").set(figures["champion_correct"] / labelled)


def _forget_shadow(model_name: str) -> None:
    """No challenger in shadow: no figures to show (a stale one would keep an alert firing)."""
    for gauge, labels in (
        (SHADOW_LABELLED, (model_name,)),
        (SHADOW_EVIDENCE, (model_name,)),
        (SHADOW_ACCURACY, (model_name, "challenger")),
        (SHADOW_ACCURACY, (model_name, "champion")),
    ):
        try:
            gauge.remove(*labels)
        except KeyError:
            pass


def review_shadow(settings: Settings, db: Database | None = None) -> list[dict]:
    """Phase 2 for every model with a challenger; returns what was decided."""
    db = db or Database(settings)
    results = []
    in_shadow = False
    for model_name in ARCHITECTURES:
        challenger = registry.version_for_alias(model_name, registry.CHALLENGER, settings)
        champion = registry.version_for_alias(model_name, registry.CHAMPION, settings)
        if challenger is None or champion is None:
            _forget_shadow(model_name)
            continue
        in_shadow = True

        def read_figures(cur, m: str = model_name, ch: str = challenger, cp: str = champion) -> dict:
            return shadow_figures(cur, m, ch, cp)

        figures = db.transaction(read_figures)
        _export_shadow(model_name, figures)
        decision = decide_live(
            figures["wins"],
            figures["losses"],
            figures["labelled"],
            settings.shadow_label_budget,
            settings.shadow_alpha,
            figures["challenger_correct"],
            figures["champion_correct"],
        )
        decision.figures.update(champion_version=champion)
        apply(model_name, challenger, decision, settings)
        results.append({"model_name": model_name, "version": challenger, **decision.as_dict()})
    # infer-shadow's wake on Kubernetes: set before a decision ends the shadow phase, so
    # it answers this minute's images too; the next review says 0.
    wake_signals.signal("challenger", in_shadow)
    return results
