"""ingest (Kafka `minio-events`, batched; Kafka `minio-events-durable`; cron
`sweep` every minute): MinIO's bucket events -> validated, registered images ->
`images-input-stream` (keyed by image id, with the pixels 64 px models need
inline). Invalid objects are moved to `quarantine/`, recorded, and dead-lettered.
The durable copies of the same events (MinIO's on-disk queue) make good any event
the fast path lost while Kafka was away (see `triptych.ingress.reconcile`)."""

from triptych.bus import GroupLag
from triptych.contracts import TOPIC_MINIO_EVENTS
from triptych.ingress.ingest import Ingestor
from triptych.ingress.reconcile import Reconciler
from triptych.ingress.sweep import sweep
from triptych.sdk import DeliveryPlan, delivered, metrics

FAST_TRIGGER, DURABLE_TRIGGER = "minio-events", "minio-events-durable"


def init_context(context):
    metrics.serve_in_pod()
    ingestor = Ingestor.from_settings()
    context.user_data.ingestor = ingestor
    fast_group = DeliveryPlan.from_env().for_trigger(FAST_TRIGGER).consumer_group
    context.user_data.reconciler = Reconciler(ingestor, GroupLag(ingestor.settings, fast_group, TOPIC_MINIO_EVENTS))


@delivered(batches=True)
def handler(context, events):
    if len(events) == 1 and events[0].trigger.kind == "cron":
        swept = sweep(context.user_data.ingestor)
        if swept["missing"]:
            context.logger.warn_with("swept objects that had no event", **swept)
        return [swept]
    trigger = events[0].trigger.name
    if (trigger.decode() if isinstance(trigger, bytes) else trigger) == DURABLE_TRIGGER:  # msgpack may give bytes
        counts = context.user_data.reconciler.handle_events([event.body for event in events])
        return [counts] + [None] * (len(events) - 1)
    image_ids = context.user_data.ingestor.handle_events([event.body for event in events])
    context.logger.debug_with("ingested", count=len(image_ids))
    return [None] * len(events)
