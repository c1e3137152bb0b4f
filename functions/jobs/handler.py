"""jobs (cron): the scheduled lifecycle jobs, each run as an MLRun job (a plain
call where MLRun is not installed: the serving image on Kubernetes) and
recorded in `pipeline_runs` (except the minute-by-minute shadow gate, which
records only its decisions):

    shadow-gate    every 60 s: promote or reject challengers in shadow on live labelled images
    drift          every 60 s: the drift detectors (confidence, agreement, pixel statistics)
    metrics        hourly: per-model hourly snapshots from the per-minute metrics
    data-quality   daily: quarantine undecodable objects, report integrity, apply retention

The cron event's body names the job ({"job": "metrics"}); `triptych jobs run NAME`
runs the same job by hand.
"""

import json

from triptych.config import get_settings
from triptych.lifecycle import drift, gate  # noqa: F401 - their gauges are this replica's from the start
from triptych.lifecycle.jobs import run_job
from triptych.sdk import metrics


def init_context(context):
    metrics.serve_in_pod()
    context.user_data.settings = get_settings()


def handler(context, event):
    body = event.body
    if isinstance(body, (bytes, str)):
        body = json.loads(body or "{}")
    result = run_job(body.get("job", ""), context.user_data.settings, requested_by=f"cron:{event.trigger.name}")
    if result["state"] == "failed":  # said aloud: a job that fails every minute must not read as done
        context.logger.error_with("job failed", job=body.get("job"), run_id=result.get("run_id"), error=result["error"])
    else:
        context.logger.info_with("job done", job=body.get("job"), run_id=result.get("run_id"))
    return result
