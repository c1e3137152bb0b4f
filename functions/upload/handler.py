"""upload (HTTP): POST /upload (one file) and POST /upload/batch (many), multipart,
with an API key that has the `upload` scope.

    curl -H "X-API-Key: $(cat ~/.local/share/triptych/keys/local.key)" \
         -F file=@cat.jpg -F label=cat http://127.0.0.1:8090/upload
    curl -H "Authorization: Bearer $KEY" -F files=@a.png -F files=@b.png -F 'labels=["cat","dog"]' \
         http://127.0.0.1:8090/upload/batch

Images are validated, stored in the `images` bucket, and from there MinIO's own
event starts the pipeline. Answers: 201 stored, 200 duplicate (same bytes seen
before, policy "reuse"), 207 per-file for a batch, 401/403 without a fitting key,
429 past the key's rate, 4xx with a reason for a bad request.
"""

from triptych.ingress.upload import Uploader
from triptych.sdk import metrics


def init_context(context):
    metrics.serve_in_pod()
    context.user_data.uploader = Uploader.from_settings()


def handler(context, event):
    status, body, headers = context.user_data.uploader.handle(
        event.path,
        event.method,
        event.body if isinstance(event.body, bytes) else b"",
        event.content_type,
        dict(event.headers or {}),
    )
    return context.Response(body=body, headers=headers, status_code=status, content_type="application/json")
