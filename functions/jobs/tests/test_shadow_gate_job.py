"""The jobs function's minute-by-minute shadow gate (`triptych.lifecycle.gate.review_shadow`)
with the registry and the SQL replaced by fakes: what it decides from the live
figures, what it records, and what it exports to Prometheus.
tests/integration/test_lifecycle.py runs it against the real registry and Postgres."""

from __future__ import annotations

import pytest

from triptych.config import Settings
from triptych.lifecycle import gate
from triptych.stats.evalue import e_value


@pytest.fixture()
def registry(monkeypatch):
    """Aliases per model; every model has a champion v1, resnet50 a challenger v2."""
    aliases = {
        ("resnet50", "champion"): "1",
        ("resnet50", "challenger"): "2",
        ("mobilenet_v2", "champion"): "1",
        ("efficientnet_b0", "champion"): "1",
    }
    monkeypatch.setattr(gate.registry, "version_for_alias", lambda model, alias, settings: aliases.get((model, alias)))
    return aliases


@pytest.fixture()
def applied(monkeypatch):
    calls = []
    monkeypatch.setattr(
        gate, "apply", lambda model, version, decision, settings: calls.append((model, version, decision))
    )
    return calls


def figures(monkeypatch, **counts):
    row = {"labelled": 0, "challenger_correct": 0, "champion_correct": 0, "wins": 0, "losses": 0, **counts}
    monkeypatch.setattr(gate, "shadow_figures", lambda cur, model, challenger, champion: dict(row))


def gauge(metric, *labels):
    return metric.labels(*labels)._value.get()


def test_a_challenger_short_of_evidence_stays_in_shadow_and_its_evidence_is_exported(
    monkeypatch, db, registry, applied
):
    figures(monkeypatch, labelled=60, challenger_correct=45, champion_correct=41, wins=8, losses=4)
    [result] = gate.review_shadow(Settings(shadow_alpha=0.05, shadow_label_budget=2000), db)
    assert result["model_name"] == "resnet50" and result["version"] == "2"
    assert result["outcome"] == gate.KEPT
    assert result["figures"]["champion_version"] == "1"
    [(model, version, decision)] = applied
    assert (model, version, decision.outcome) == ("resnet50", "2", gate.KEPT)
    assert gauge(gate.SHADOW_LABELLED, "resnet50") == 60
    assert gauge(gate.SHADOW_EVIDENCE, "resnet50") == pytest.approx(e_value(8, 4))  # about 0.64: far from 20
    assert gauge(gate.SHADOW_ACCURACY, "resnet50", "challenger") == pytest.approx(0.75)


def test_strong_evidence_promotes_at_once_and_weak_evidence_at_the_budget_says_so(monkeypatch, db, registry, applied):
    figures(monkeypatch, labelled=150, challenger_correct=130, champion_correct=100, wins=35, losses=5)
    [result] = gate.review_shadow(Settings(shadow_label_budget=2000), db)
    assert result["outcome"] == gate.CHAMPION and result["figures"]["significant"]
    assert result["figures"]["e_value"] >= 20

    figures(monkeypatch, labelled=300, challenger_correct=200, champion_correct=199, wins=21, losses=20)
    [result] = gate.review_shadow(Settings(shadow_label_budget=300), db)
    assert result["outcome"] == gate.CHAMPION and result["figures"]["at_budget"]
    assert not result["figures"]["significant"] and "without significance" in result["reason"]


def test_no_challenger_no_decision_and_no_stale_gauge(monkeypatch, db, registry, applied):
    figures(monkeypatch, labelled=10, wins=1, losses=1)
    gate.review_shadow(Settings(), db)
    del registry[("resnet50", "challenger")]
    assert gate.review_shadow(Settings(), db) == []
    samples = {s.labels.get("model") for m in gate.SHADOW_EVIDENCE.collect() for s in m.samples}
    assert "resnet50" not in samples
