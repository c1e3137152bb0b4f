"""infer-<model> (Kafka `images-input-stream`, batched): one source, three
deployments (TRIPTYCH_MODEL_NAME = resnet50 | mobilenet_v2 | efficientnet_b0),
each its own consumer group. Loads its champion from the MLflow registry,
classifies batches, publishes to `predictions-output-stream`, and hot-swaps on
`model-updates`."""

from triptych.inference.infer import Classifier
from triptych.sdk import delivered, metrics


def init_context(context):
    metrics.serve_in_pod()
    context.user_data.classifier = Classifier.from_settings()


@delivered(batches=True)
def handler(context, events):
    context.user_data.classifier.handle([event.body for event in events])
    return [None] * len(events)
