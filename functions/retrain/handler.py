"""retrain (cron weekly + HTTP): train the models on the labelled set, register
each new version in MLflow, and promote it only when it beats the champion; the
inference functions hot-swap to a new champion without a restart.

    curl -X POST http://127.0.0.1:8091/retrain -d '{"models": ["mobilenet_v2"], "quick": true}' \
         -H 'content-type: application/json'
"""

import json

from triptych.models.bootstrap import FULL, QUICK, train_as_mlrun_job
from triptych.models.zoo import ARCHITECTURES


def handler(context, event):
    request = event.body if isinstance(event.body, dict) else json.loads(event.body or "{}")
    if event.trigger.kind == "http" and event.method != "POST":
        return context.Response(body={"error": "POST /retrain with {\"models\": [...], \"quick\": false}"},
                                status_code=405, content_type="application/json")
    models = request.get("models") or list(ARCHITECTURES)
    unknown = [m for m in models if m not in ARCHITECTURES]
    if unknown:
        return context.Response(body={"error": f"unknown models {unknown}; one of {list(ARCHITECTURES)}"},
                                status_code=400, content_type="application/json")
    budget = QUICK if request.get("quick") else FULL
    outcomes = [train_as_mlrun_job(name, budget, policy=request.get("policy", "if-better")) for name in models]
    context.logger.info_with("retrained", outcomes=outcomes)
    return {"outcomes": outcomes}
