"""aggregate (Kafka `predictions-output-stream`, batched): idempotent upsert of
predictions, one comparison per image once every active model has answered, and
rolling per-minute metrics per model version, all in PostgreSQL."""

from triptych.aggregation.aggregate import Aggregator
from triptych.sdk import delivered, metrics


def init_context(context):
    metrics.serve_in_pod()
    context.user_data.aggregator = Aggregator.from_settings()


@delivered(batches=True)
def handler(context, events):
    context.user_data.aggregator.handle([event.body for event in events])
    return [None] * len(events)
