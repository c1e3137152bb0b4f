"""ingest (Kafka `minio-events`): MinIO's bucket event -> validated, registered
image -> `images-input-stream` (keyed by image id). Invalid objects are moved to
`quarantine/`, recorded, and dead-lettered."""

from triptych.ingress.ingest import Ingestor


def init_context(context):
    context.user_data.ingestor = Ingestor.from_settings()


def handler(context, event):
    image_ids = context.user_data.ingestor.handle_event(event.body)
    context.logger.debug_with("ingested", image_ids=image_ids)
