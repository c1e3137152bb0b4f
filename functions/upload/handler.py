"""upload (HTTP): POST /upload (one file) and POST /upload/batch (many), multipart.

    curl -F file=@cat.jpg -F label=cat http://127.0.0.1:8090/upload
    curl -F files=@a.png -F files=@b.png -F 'labels=["cat","dog"]' http://127.0.0.1:8090/upload/batch

Images are validated, stored in the `images` bucket, and from there MinIO's own
event starts the pipeline. Answers: 201 stored, 200 duplicate (same bytes seen
before, policy "reuse"), 207 per-file for a batch, 4xx with a reason.
"""

from triptych.ingress.upload import Uploader


def init_context(context):
    context.user_data.uploader = Uploader.from_settings()


def handler(context, event):
    status, body = context.user_data.uploader.handle(
        event.path, event.method, event.body if isinstance(event.body, bytes) else b"", event.content_type
    )
    return context.Response(body=body, status_code=status, content_type="application/json")
