"""A test function that plants a slow model: every cron tick it records, in the
inference functions' own histogram, images of `resnet50` (version `planted`)
that took 2 s each, so the real Prometheus and its rules see a model over its
bound (ModelInferenceSlow)."""

from triptych.inference.infer import INFERENCE_SECONDS
from triptych.sdk import delivered


@delivered
def handler(context, event):
    for _ in range(5):
        INFERENCE_SECONDS.labels("resnet50", "planted", "sleep").observe(2.0)
