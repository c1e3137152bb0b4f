"""retrain (cron weekly + HTTP): run the project's `retrain` MLRun workflow:
gather the base data set plus every labelled image, train the chosen models in
parallel, evaluate each beside its champion on the same held-out images, and
gate: better by the margin enters shadow (`infer-shadow`), and the `jobs`
function's shadow gate promotes it on live labels; inference functions hot-swap.

    curl -X POST http://127.0.0.1:8091/retrain -H "X-API-Key: $ADMIN_KEY" \
         -H 'content-type: application/json' -d '{"models": ["mobilenet_v2"], "quick": true}'
    # -> 202 {"run_id": "...", "state": "queued", "status_path": "/retrain/<run_id>"}
    curl http://127.0.0.1:8091/retrain/<run_id>

POST needs a key with the `admin` scope and returns at once; the run goes on in
the background, one run at a time (409 while one runs); GET shows each step. The
cron trigger runs one to the end with the default request (every model, full
budget, the gate).
"""

from triptych.config import get_settings
from triptych.lifecycle.retrain import Retrainer, RetrainRequest
from triptych.sdk import metrics


def init_context(context):
    metrics.serve_in_pod()
    retrainer = context.user_data.retrainer = Retrainer(get_settings())
    interrupted = retrainer.recover()
    if interrupted:
        context.logger.warn_with("runs left unfinished by a previous process marked failed", count=interrupted)


def handler(context, event):
    retrainer = context.user_data.retrainer
    if event.trigger.kind == "cron":
        run = retrainer.start(RetrainRequest(), requested_by="cron", wait=True)
        return {"run_id": str(run["run_id"])}
    status, body, headers = retrainer.handle(event.path, event.method, event.body, dict(event.headers or {}))
    return context.Response(body=body, headers=headers, status_code=status, content_type="application/json")
