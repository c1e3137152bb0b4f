"""The aggregate function's logic (`triptych.aggregation.aggregate.Aggregator`) with
its SQL replaced by fakes: which predictions it stores, which images it compares,
which metric windows it refreshes. tests/integration/test_pipeline.py and
test_dashboard_queries.py run the SQL against the real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from triptych.aggregation import aggregate as aggregate_module
from triptych.aggregation.aggregate import Aggregator
from triptych.aggregation.compare import Answer, compare
from triptych.config import Settings
from triptych.contracts import ClassScore, PredictionMessage, Timings
from triptych.sdk import PermanentError

AT = datetime(2026, 11, 27, 1, 2, 30, tzinfo=UTC)
IDS = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]


def prediction(image_id, model, label="cat", role="champion", version="1") -> bytes:
    return (
        PredictionMessage(
            image_id=image_id,
            model_name=model,
            model_version=version,
            role=role,
            predicted_at=AT,
            top_k=[ClassScore(label=label, confidence=0.9), ClassScore(label="dog", confidence=0.1)],
            timings=Timings(fetch_ms=0, decode_ms=0, preprocess_ms=1, inference_ms=2, total_ms=3),
            backend="fake",
            batch_size=1,
            worker_id="w",
        )
        .model_dump_json()
        .encode()
    )


class FakeWindows:
    def __init__(self):
        self.touched = set()

    def touch(self, windows):
        self.touched |= windows


@pytest.fixture()
def aggregator(db, monkeypatch):
    calls = {"upserted": [], "shadow": [], "compared": []}

    def compare_complete(cur, image_ids, active_models):
        calls["compared"].append((list(image_ids), list(active_models)))
        return {
            image_id: compare([Answer(m, "1", "cat", 0.9, 2.0) for m in active_models], None) for image_id in image_ids
        }

    monkeypatch.setattr(aggregate_module, "upsert_predictions", lambda cur, ms: calls["upserted"].extend(ms))
    monkeypatch.setattr(aggregate_module, "refresh_shadow", lambda cur, image_id: calls["shadow"].append(image_id))
    monkeypatch.setattr(aggregate_module, "compare_complete", compare_complete)
    aggregator = Aggregator(Settings(active_models=["resnet50", "mobilenet_v2"]), db)
    aggregator.windows = FakeWindows()
    aggregator.calls = calls
    return aggregator


def test_a_batch_is_stored_and_compared_in_one_transaction(aggregator, db):
    written = aggregator.handle(
        [prediction(IDS[0], "resnet50"), prediction(IDS[0], "mobilenet_v2"), prediction(IDS[1], "resnet50")]
    )
    assert db.transactions == 1 and written == 2
    assert [(m.image_id, m.model_name) for m in aggregator.calls["upserted"]] == [
        (IDS[0], "resnet50"),
        (IDS[0], "mobilenet_v2"),
        (IDS[1], "resnet50"),
    ]
    assert aggregator.calls["compared"] == [([IDS[0], IDS[1]], ["resnet50", "mobilenet_v2"])]
    assert aggregator.windows.touched == {
        ("resnet50", "1", AT.replace(second=0)),
        ("mobilenet_v2", "1", AT.replace(second=0)),
    }
    assert aggregator.calls["shadow"] == []


def test_a_shadow_answer_is_stored_but_never_completes_a_comparison(aggregator):
    aggregator.handle([prediction(IDS[0], "resnet50", role="shadow", version="9")])
    assert aggregator.calls["shadow"] == [IDS[0]]
    assert aggregator.calls["compared"] == [([], ["resnet50", "mobilenet_v2"])]
    assert aggregator.windows.touched == set(), "a challenger's answers stay out of the champions' metrics"


@pytest.mark.parametrize("body", [b"{}", b"not json", b'{"image_id": "x", "model_name": "resnet50"}'])
def test_a_malformed_prediction_is_a_permanent_error_and_stores_nothing(aggregator, db, body):
    with pytest.raises(PermanentError, match="malformed prediction message"):
        aggregator.handle([prediction(IDS[0], "resnet50"), body])
    assert db.transactions == 0 and aggregator.calls["upserted"] == []
