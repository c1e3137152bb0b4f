"""ingest (Kafka `minio-events`; cron `sweep` every minute): MinIO's bucket event
-> validated, registered image -> `images-input-stream` (keyed by image id, with
its pixels for 64 px models inline). Invalid objects are moved to `quarantine/`,
recorded, and dead-lettered. The sweep ingests recent objects whose event MinIO
could not deliver (see `Ingestor.sweep`)."""

from triptych.ingress.ingest import Ingestor


def init_context(context):
    context.user_data.ingestor = Ingestor.from_settings()


def handler(context, event):
    if event.trigger.kind == "cron":
        swept = context.user_data.ingestor.sweep()
        if swept["missing"]:
            context.logger.warn_with("swept objects that had no event", **swept)
        return swept
    image_ids = context.user_data.ingestor.handle_event(event.body)
    context.logger.debug_with("ingested", image_ids=image_ids)
