"""A test function with an HTTP and a cron trigger."""

import os
from pathlib import Path


def handler(context, event):
    if event.trigger.kind == "cron":
        with open(os.environ["WEB_CRON_FILE"], "a") as out:
            out.write("tick\n")
        return None
    if event.path == "/boom":
        raise RuntimeError("the handler blew up")
    if event.path == "/response":
        return context.Response(body={"created": True}, status_code=201, content_type="application/json")
    body = event.body if isinstance(event.body, (dict, list)) else event.body.decode()
    return {
        "method": event.method,
        "path": event.path,
        "body": body,
        "query": event.fields,
        "pid": os.getpid(),
        "cron_file_exists": Path(os.environ["WEB_CRON_FILE"]).exists(),
    }
