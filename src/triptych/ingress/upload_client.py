"""A client of the upload function's HTTP trigger, for the CLI (`triptych upload`)
and the dashboard's Upload page: both send files the way any program would, so
validation and storage stay in one place (the upload function)."""

from __future__ import annotations

import json

import httpx2 as httpx


class UploadUnavailable(RuntimeError):
    """The upload function could not be reached or answered with something other than a batch result."""


def upload_batch(
    base_url: str,
    files: list[tuple[str, bytes]],
    labels: list[str | None] | None = None,
    api_key: str | None = None,
    timeout: float = 120,
    source: str | None = None,
    metadata: dict | None = None,
) -> dict:
    """POST files to `/upload/batch` with `api_key` (scope `upload`); returns its reply
    (`stored`, `duplicates`, `rejected`, and one result per file with its image id or
    its refusal). `source` (default `upload`) and `metadata` (a JSON object kept on
    each image) are the function's form fields of those names."""
    form = {"labels": json.dumps(labels)} if labels is not None else {}
    if source:
        form["source"] = source
    if metadata:
        form["metadata"] = json.dumps(metadata)
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        reply = httpx.post(
            f"{base_url}/upload/batch",
            files=[("files", (name, data)) for name, data in files],
            data=form,
            headers=headers,
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise UploadUnavailable(f"cannot reach the upload function at {base_url}: {exc}") from exc
    if reply.status_code != 207:
        try:
            reason = reply.json().get("error", reply.text)
        except ValueError:
            reason = reply.text
        if reply.status_code == 401 and not api_key:
            reason += " (no API key found: set TRIPTYCH_API_KEY, or run `triptych up`, which makes the local one)"
        raise UploadUnavailable(f"the upload function answered {reply.status_code}: {reason}")
    return reply.json()
