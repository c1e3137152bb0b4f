"""The whole pipeline under Nuclio 1.14's own processor instead of the local
runner (`functions_runtime = "nuclio"`, as `triptych up --runtime nuclio`):
images uploaded over upload's HTTP trigger go through ingest, the three inference
functions and aggregate, fed by Nuclio's Kafka triggers one record per call, and
every comparison lands in Postgres; a corrupt image is dead-lettered once per
model by the handlers' delivery wrapper and blocks nobody."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from triptych.contracts import TOPIC_DEAD_LETTERS, DeadLetter
from triptych.models.zoo import ARCHITECTURES
from triptych.runtime.nuclio_processor import install_processor

from ..images import image_bytes
from .pipeline_helpers import (
    TopicWatcher,
    send_corrupt_image,
    start_full_pipeline,
    unique,
    wait_comparisons,
)
from .runtime_helpers import query


@pytest.fixture(scope="module")
def nuclio_pipeline(stack, tmp_path_factory):
    install_processor(stack)  # cached after the first build
    sup, port = start_full_pipeline(
        stack, tmp_path_factory.mktemp("nuclio-pipeline"), {"TRIPTYCH_FUNCTIONS_RUNTIME": "nuclio"}
    )
    yield sup, f"http://127.0.0.1:{port}"
    sup.stop()


def test_uploads_flow_to_comparisons_under_the_nuclio_processor(stack, nuclio_pipeline, admin_key):
    sup, upload_url = nuclio_pipeline
    assert sup.status() and all(r["state"] == "running" for entry in sup.status().values() for r in entry["replicas"])
    dlq = TopicWatcher(stack, TOPIC_DEAD_LETTERS)
    corrupt_id = send_corrupt_image(stack)
    tag = unique("nuclio")
    labels = ["cat", "dog", "ship", "truck", "frog", "horse"]
    ids = []
    with httpx.Client(base_url=upload_url, headers={"X-API-Key": admin_key}, timeout=60) as client:
        for i, label in enumerate(labels):
            reply = client.post(
                "/upload", files={"file": (f"{tag}-{i}.png", image_bytes("PNG"))}, data={"label": label}
            )
            assert reply.status_code == 201, reply.text
            ids.append(reply.json()["image_id"])

    comparisons = wait_comparisons(stack, ids, timeout=180)
    assert sorted(str(c["image_id"]) for c in comparisons) == sorted(ids)
    predictions = query(
        stack,
        "SELECT model_name, count(*) FROM predictions WHERE image_id = ANY(%s::uuid[]) GROUP BY model_name",
        (ids,),
    )
    assert dict(predictions) == {name: len(ids) for name in ARCHITECTURES}

    letters = [
        DeadLetter.model_validate_json(r.value)
        for r in dlq.collect(lambda r: corrupt_id in r.value.decode(errors="ignore"), 3, 60)
    ]
    dlq.close()
    assert sorted(letter.function for letter in letters) == sorted(a.function for a in ARCHITECTURES.values())
    assert all(letter.attempts == 1 and "cannot decode" in letter.error for letter in letters)
    assert query(stack, "SELECT count(*) FROM predictions WHERE image_id = %s", (corrupt_id,))[0][0] == 0
