"""The Kubernetes mapping of each declared function's scaling (runtime/kube_scaling.py)."""

from pathlib import Path

import pytest

from triptych.config import Settings
from triptych.runtime.kube_scaling import scaling_manifests
from triptych.runtime.spec import load_functions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mapped():
    settings = Settings(_env_file=None)
    return {
        name: scaling_manifests(spec, settings, "kafka:9092")
        for name, spec in load_functions(ROOT / "project.yaml").items()
    }


def test_a_kafka_function_scales_with_keda_on_its_lag_through_the_hpa_nuclio_makes(mapped):
    resnet = mapped["infer-resnet50"]
    assert resnet["how"] == "KEDA on consumer lag"
    spec = resnet["keda"]["spec"]
    # One HPA: KEDA adopts the one Nuclio makes, and Nuclio's clamp holds KEDA's own bounds.
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "nuclio-infer-resnet50"
    assert (resnet["nuclio"]["minReplicas"], resnet["nuclio"]["maxReplicas"]) == (2, 6)
    assert spec["scaleTargetRef"]["name"] == "nuclio-infer-resnet50"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 6)
    assert spec["triggers"] == [
        {
            "type": "kafka",
            "metadata": {
                "bootstrapServers": "kafka:9092",
                "consumerGroup": "infer-resnet50",
                "topic": "images-input-stream",
                "lagThreshold": "100",
                "offsetResetPolicy": "earliest",
                "allowIdleConsumers": "false",
            },
        }
    ]
    behaviour = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behaviour["scaleDown"]["stabilizationWindowSeconds"] == 60


def test_ingest_scales_on_both_its_topics_within_the_fewest_partitions(mapped):
    spec = mapped["ingest"]["keda"]["spec"]
    assert {t["metadata"]["topic"] for t in spec["triggers"]} == {"minio-events", "minio-events-durable"}
    assert spec["maxReplicaCount"] == 3


def test_the_shadow_wakes_on_the_challenger_condition_alone(mapped):
    shadow = mapped["infer-shadow"]
    assert shadow["how"] == "KEDA on the challenger condition"
    spec = shadow["keda"]["spec"]
    assert spec["minReplicaCount"] == 0 and [t["type"] for t in spec["triggers"]] == ["prometheus"]
    assert 'triptych_wake_condition{condition="challenger"}' in spec["triggers"][0]["metadata"]["query"]


def test_the_int8_twin_wakes_on_a_published_int8_champion_alone(mapped):
    twin = mapped["infer-int8"]
    assert twin["how"] == "KEDA on the int8 condition"
    spec = twin["keda"]["spec"]
    assert spec["minReplicaCount"] == 0 and spec["maxReplicaCount"] == 1
    assert [t["type"] for t in spec["triggers"]] == ["prometheus"]
    assert 'triptych_wake_condition{condition="int8"}' in spec["triggers"][0]["metadata"]["query"]


def test_http_functions_use_nuclios_hpa_and_retrain_goes_to_zero_through_the_dlx(mapped):
    upload, retrain = mapped["upload"], mapped["retrain"]
    assert upload["keda"] is None and upload["nuclio"] == {"minReplicas": 1, "maxReplicas": 4, "targetCPU": 70}
    assert retrain["nuclio"]["minReplicas"] == 0 and retrain["how"].endswith("to zero through its DLX")
    assert retrain["nuclio"]["scaleToZero"]["scaleResources"][0]["windowSize"] == "120s"


def test_a_fixed_function_is_a_plain_nuclio_function(mapped):
    assert mapped["jobs"] == {
        "function": "jobs",
        "how": "fixed",
        "keda": None,
        "nuclio": {"minReplicas": 1, "maxReplicas": 1},
    }
