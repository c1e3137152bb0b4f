"""Image bytes and pixels, shared by ingress (validation, inline pixels), the
models (training and inference preprocessing), the data sets and the lifecycle
jobs: what a format is, how bytes decode, how pixels resize, how stored bytes are
served. One place, so a photo is read the same way wherever it goes."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

JPEG_MAGIC = b"\xff\xd8\xff"


class DecodeError(ValueError):
    pass


# Magic numbers of the accepted formats, checked before Pillow sees the bytes.
_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
)
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp"}


# How stored image bytes are served (the API, the dashboard): as the type sniffed at
# upload, never as anything a browser would render as a page, and never re-sniffed,
# so a polyglot (a JPEG with HTML appended) stays an image.
SERVED_IMAGE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Disposition": "inline"}


def served_media_type(stored: str | None) -> str:
    return stored if stored is not None and stored in CONTENT_TYPES.values() else "application/octet-stream"


def sniff_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def open_jpeg_scaled(data: bytes, at_least: int) -> Image.Image:
    """A JPEG decoded at the smallest DCT scale (1, 1/2, 1/4 or 1/8) that keeps
    both sides at least `at_least` pixels. The entropy-coded data is still read
    in full, so truncation and corruption fail here as in a full decode; only the
    inverse DCT is done at the reduced size (a 640x480 photo for a 64 px model is
    decoded at 160x120, several times faster)."""
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (max(1, at_least), max(1, at_least)))
    image.load()
    return image


def decode(data: bytes, at_least: int | None = None) -> np.ndarray:
    """Any JPEG/PNG/WebP/BMP to H x W x 3 RGB uint8. With `at_least`, a JPEG comes
    out only as large as needed for that side (see open_jpeg_scaled); other
    formats, and every image without `at_least`, are decoded at full size."""
    if at_least and data[:3] == JPEG_MAGIC:
        try:
            with open_jpeg_scaled(data, at_least) as image:
                return np.asarray(image.convert("RGB"))
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad data
            raise DecodeError(f"cannot decode JPEG ({len(data)} bytes): {exc}") from exc
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if array is None:
        raise DecodeError(f"cannot decode image ({len(data)} bytes)")
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def resize_to(image: np.ndarray, size: int, mode: str = "stretch") -> np.ndarray:
    """To `size` x `size`: stretched, or ImageNet style (shorter side, centre crop)."""
    if mode == "shorter-side-crop":
        h, w = image.shape[:2]
        scale = size * 256 / 224 / min(h, w)
        image = cv2.resize(
            image,
            (max(size, round(w * scale)), max(size, round(h * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        h, w = image.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        return image[top : top + size, left : left + size]
    if image.shape[0] == size and image.shape[1] == size:
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)
