"""ingest (Kafka `minio-events`, batched; cron `sweep` every minute): MinIO's
bucket events -> validated, registered images -> `images-input-stream` (keyed by
image id, with the pixels 64 px models need inline). Invalid objects are moved to
`quarantine/`, recorded, and dead-lettered. The sweep ingests recent objects
whose event MinIO could not deliver (see `Ingestor.sweep`)."""

from triptych.ingress.ingest import Ingestor
from triptych.sdk import delivered


def init_context(context):
    context.user_data.ingestor = Ingestor.from_settings()


@delivered(batches=True)
def handler(context, events):
    if len(events) == 1 and events[0].trigger.kind == "cron":
        swept = context.user_data.ingestor.sweep()
        if swept["missing"]:
            context.logger.warn_with("swept objects that had no event", **swept)
        return [swept]
    image_ids = context.user_data.ingestor.handle_events([event.body for event in events])
    context.logger.debug_with("ingested", count=len(image_ids))
    return [None] * len(events)
