"""How each function's bounds and the local scaler's rules map to Nuclio on
Kubernetes (`triptych functions scaling NAME` prints it; the Helm chart renders it).

- **A Kafka-triggered function** scales on its consumer lag with a KEDA
  `ScaledObject` (the `kafka` scaler: `lagThreshold` = `scale_lag_per_replica`,
  one trigger per topic and group), on the Deployment Nuclio makes
  (`nuclio-<name>`). One HPA, not two: when a NuclioFunction's min and max
  differ Nuclio makes an HPA named `nuclio-<name>`, so the ScaledObject names its
  own HPA the same and KEDA takes that one over (it owns it, and puts its lag
  metric back whenever Nuclio rewrites it). The NuclioFunction carries KEDA's
  bounds: Nuclio clamps the Deployment's replicas into its own [min, max] on every
  update, and with min == max it pulled KEDA's replicas back down (6 -> 1 -> 6 on
  the node, whenever its monitor flipped the function's state). KEDA's `minReplicaCount` and
  `maxReplicaCount` are the declared bounds, max capped by the partitions; the
  HPA behaviour KEDA passes on is the local scaler's (up at once by 100 % or 4
  pods, down through a `scale_stabilisation_s` window); `cooldownPeriod` (KEDA's
  wait before 1 → 0) is `scale_idle_to_zero_s`.
- **A declared wake condition** (`challenger` for `infer-shadow`, `int8` for
  `infer-int8`, max 1 each) is its only KEDA trigger, on Prometheus: the jobs
  function sets `triptych_wake_condition{condition}` to 1 while a challenger is in
  shadow (or a champion has a published int8 export) and to 0 after, every minute
  (triptych.lifecycle.wake_signals), so it wakes within the gate's minute. KEDA runs the most any trigger asks for, so a
  lag trigger beside it would wake it for every image.
- **An HTTP function** scales with Nuclio's own HPA on CPU (`minReplicas`,
  `maxReplicas`, `targetCPU` = `scale_target_busy`). At min 0 it also gets
  Nuclio's `scaleToZero` (the autoscaler and the DLX of Nuclio's chart: the DLX
  holds a request while the function wakes, as our supervisor's socket does
  locally), idle for `scale_idle_to_zero_s` by its handled events. Its cron
  triggers run as Kubernetes CronJobs that call it over HTTP
  (`cronTriggerCreationMode: kube`), which the DLX holds the same way.
- **A fixed function** (min == max, `jobs`) is a plain NuclioFunction.
"""

from __future__ import annotations

import math

from ..config import Settings
from .scaler_loop import bounds_of
from .spec import FunctionSpec, HttpTriggerSpec

KEDA_API = "keda.sh/v1alpha1"
# A wake condition as Prometheus sees it; the jobs function exports both gauges every minute.
WAKE_QUERIES = {
    "challenger": 'max(triptych_wake_condition{condition="challenger"}) or vector(0)',
    "int8": 'max(triptych_wake_condition{condition="int8"}) or vector(0)',
}


def _seconds(value: float) -> str:
    return f"{max(1, math.ceil(value))}s"


def nuclio_scaling(spec: FunctionSpec, settings: Settings) -> dict:
    """The NuclioFunction spec fields that say how many replicas it runs."""
    bounds = bounds_of(spec, "kubernetes")
    if bounds.min_replicas == bounds.max_replicas:
        return {"minReplicas": bounds.min_replicas, "maxReplicas": bounds.max_replicas}
    if spec.kafka_triggers:  # KEDA owns the count; Nuclio's clamp must never undo it
        return {"minReplicas": bounds.min_replicas, "maxReplicas": bounds.ceiling}
    fields: dict[str, object] = {
        "minReplicas": bounds.min_replicas,
        "maxReplicas": bounds.ceiling,
        "targetCPU": round(settings.scale_target_busy * 100),
    }
    if bounds.min_replicas == 0:
        fields["scaleToZero"] = {
            "scaleResources": [
                {
                    "metricName": "nuclio_processor_handled_events_total",
                    "windowSize": _seconds(settings.scale_idle_to_zero_s),
                    "threshold": 0,
                }
            ]
        }
    return fields


def keda_scaled_object(
    spec: FunctionSpec, settings: Settings, brokers: str, namespace: str = "triptych"
) -> dict | None:
    """The KEDA ScaledObject of a Kafka-triggered function that scales (None otherwise)."""
    bounds = bounds_of(spec, "kubernetes")
    if not spec.kafka_triggers or bounds.min_replicas == bounds.max_replicas:
        return None
    triggers = [
        {
            "type": "kafka",
            "metadata": {
                "bootstrapServers": brokers,
                "consumerGroup": trigger.consumer_group,
                "topic": topic,
                "lagThreshold": str(settings.scale_lag_per_replica),
                # A group that starts at the newest offset has nothing waiting until it commits.
                "offsetResetPolicy": "latest" if trigger.initial_offset == "latest" else "earliest",
                "allowIdleConsumers": "false",
            },
        }
        for trigger in spec.kafka_triggers
        for topic in trigger.topics
    ]
    if spec.wake_when:
        # The condition alone: KEDA runs the most any trigger asks for, so a lag trigger would wake it for every image.
        triggers = [
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": settings.prometheus_url,
                    "query": WAKE_QUERIES[spec.wake_when],
                    "threshold": "1",
                    "activationThreshold": "0",
                },
            }
        ]
    return {
        "apiVersion": KEDA_API,
        "kind": "ScaledObject",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": {"mlrun/project": "triptych"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"nuclio-{spec.name}"},
            "minReplicaCount": bounds.min_replicas,
            "maxReplicaCount": bounds.ceiling,
            "pollingInterval": max(1, round(settings.scale_tick_s)),
            "cooldownPeriod": max(1, round(settings.scale_idle_to_zero_s)),
            # The HPA Nuclio makes for a function whose min and max differ: KEDA adopts it.
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "name": f"nuclio-{spec.name}",
                    "behavior": {
                        "scaleUp": {
                            "stabilizationWindowSeconds": 0,
                            "selectPolicy": "Max",
                            "policies": [
                                {"type": "Percent", "value": 100, "periodSeconds": 15},
                                {"type": "Pods", "value": 4, "periodSeconds": 15},
                            ],
                        },
                        "scaleDown": {"stabilizationWindowSeconds": round(settings.scale_stabilisation_s)},
                    },
                }
            },
            "triggers": triggers,
        },
    }


def scaling_manifests(spec: FunctionSpec, settings: Settings, brokers: str | None = None) -> dict:
    """{"nuclio": the NuclioFunction's fields, "keda": a ScaledObject or None, "how": in words}."""
    keda = keda_scaled_object(spec, settings, brokers or settings.kafka_url)
    nuclio = nuclio_scaling(spec, settings)
    if keda:
        how = f"KEDA on the {spec.wake_when} condition" if spec.wake_when else "KEDA on consumer lag"
    elif any(isinstance(t, HttpTriggerSpec) for t in spec.triggers) and nuclio["minReplicas"] != nuclio["maxReplicas"]:
        how = "Nuclio's HPA on CPU" + (", to zero through its DLX" if "scaleToZero" in nuclio else "")
    else:
        how = "fixed"
    return {"function": spec.name, "how": how, "nuclio": nuclio, "keda": keda}
