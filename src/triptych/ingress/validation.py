"""Checking image bytes before anything trusts them.

The format is sniffed from the bytes, never taken from a filename or a client's
content type. Dimensions come from the header, so a decompression bomb (a tiny
file claiming 100k x 100k pixels) is refused before it is decoded; then the image
is decoded once, which catches truncation and corruption. A JPEG is decoded at a
reduced DCT scale (all its compressed data is still read and checked; only the
inverse transform is smaller), as large as `decode_at_least` asks when the caller
wants the pixels, else at 1/8.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..imaging import CONTENT_TYPES, decode, open_jpeg_scaled, sniff_format


class InvalidImage(ValueError):
    """Bytes that are not an acceptable image. `code` is stable for clients and metrics."""

    def __init__(self, code: str, message: str, http_status: int = 400):
        super().__init__(message)
        self.code = code
        self.http_status = http_status


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    channels: int
    size_bytes: int
    sha256: str
    # RGB uint8 at least `decode_at_least` on each side, when the caller asked for it.
    pixels: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def validate_image(data: bytes, max_bytes: int, max_pixels: int, decode_at_least: int | None = None) -> ImageInfo:
    if not data:
        raise InvalidImage("empty", "the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise InvalidImage("too_large", f"the file is {len(data)} bytes; the limit is {max_bytes}", http_status=413)
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidImage(
            "unsupported_format", "not a JPEG, PNG, WebP or BMP image (content sniffed from the bytes)", http_status=415
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:  # reads the header only
                width, height = header.size
                if width * height > max_pixels:
                    raise InvalidImage(
                        "too_many_pixels",
                        f"{width}x{height} = {width * height} pixels; the limit is {max_pixels}",
                        http_status=413,
                    )
                mode = header.mode
                frames = getattr(header, "n_frames", 1)
                if frames > 1:
                    # Inference decodes one still frame (OpenCV); refuse rather than guess which.
                    raise InvalidImage(
                        "animated",
                        f"an animated {fmt.upper()} ({frames} frames) is not classified; send a single frame",
                        http_status=415,
                    )
        pixels = None
        if fmt == "jpeg":
            with open_jpeg_scaled(data, decode_at_least or 1) as image:  # truncated or corrupt data fails here
                if decode_at_least:
                    pixels = np.asarray(image.convert("RGB"))
        else:
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # full decode: truncated or corrupt data fails here
            if decode_at_least:
                pixels = decode(data)  # as inference and training decode it
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage("too_many_pixels", f"decompression bomb refused: {exc}", http_status=413) from exc
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad data
        raise InvalidImage("corrupt", f"the {fmt.upper()} data cannot be decoded: {exc}") from exc
    return ImageInfo(
        format=fmt,
        width=width,
        height=height,
        channels=Image.getmodebands(mode) if mode else 3,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        pixels=pixels,
    )
