"""A hostile-input corpus, generated here (never downloaded): what every ingress
path (the API, the upload function, a bucket drop) must refuse with a clear reason
or quarantine, and the odd-but-valid images it must classify without crashing.

Each call makes fresh bytes, so cases never collide with earlier uploads."""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .images import image_bytes, png_claiming

# The image limit the hostile tests run with: "too large" stays cheap to send.
MAX_IMAGE_BYTES = 1_000_000


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    data: bytes
    refused: str | None  # the stable refusal code, or None: accepted and classified
    stored_name: str | None = None  # the file name it must be stored under, when accepted
    content_type: str = "application/octet-stream"  # what the client claims (never trusted)


def _noise(size=(64, 48)) -> np.ndarray:
    return np.random.default_rng().integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is patched to claim width x height."""
    data = bytearray(image_bytes("JPEG", (16, 16)))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _animated_png() -> bytes:
    frames = [Image.fromarray(_noise()) for _ in range(3)]
    return _save(frames[0], "PNG", save_all=True, append_images=frames[1:])


def _png_16bit() -> bytes:
    ok, buffer = cv2.imencode(".png", (_noise().astype(np.uint16) * 257))
    assert ok
    return buffer.tobytes()


def _jpeg_with_huge_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "A" * 60_000  # ImageDescription: one APP1 segment near its 64 KiB limit
    return _save(Image.fromarray(_noise()), "JPEG", exif=exif.tobytes())


def corpus() -> list[Case]:
    good_png = image_bytes("PNG")
    return [
        Case("zero-byte", "empty.png", b"", "empty"),
        Case("truncated", "cut.jpg", image_bytes("JPEG", (300, 300))[:2000], "corrupt"),
        Case("png-bomb", "bomb.png", png_claiming(100_000, 100_000), "too_many_pixels"),
        Case("jpeg-bomb", "bomb.jpg", _jpeg_claiming(60_000, 60_000), "too_many_pixels"),
        Case("too-large", "big.bmp", image_bytes("BMP", (600, 600)), "too_large"),
        Case("animated", "anim.png", _animated_png(), "animated"),
        Case("gif", "a.gif", _save(Image.fromarray(_noise()), "GIF"), "unsupported_format"),
        Case(
            "svg-script",
            "x.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "unsupported_format",
            content_type="image/svg+xml",
        ),
        Case(
            "html-as-jpg",
            "page.jpg",
            b"<html><body onload=alert(1)></body></html>",
            "unsupported_format",
            content_type="image/jpeg",
        ),
        Case("png-magic-then-html", "fake.png", b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script>", "corrupt"),
        # Valid images with something odd about them: classified like any other.
        Case(
            "polyglot-jpeg+html",
            "poly.jpg",
            image_bytes("JPEG") + b"<html><script>alert(1)</script></html>",
            None,
            "poly.jpg",
            content_type="text/html",
        ),
        Case("cmyk-jpeg", "cmyk.jpg", _save(Image.fromarray(_noise()).convert("CMYK"), "JPEG"), None, "cmyk.jpg"),
        Case("16-bit-png", "deep.png", _png_16bit(), None, "deep.png"),
        Case("huge-exif", "exif.jpg", _jpeg_with_huge_exif(), None, "exif.jpg"),
        Case(
            "wrong-type-and-extension", "really-a-png.jpg", good_png, None, "really-a-png.jpg", content_type="text/html"
        ),
        Case("path-traversal-name", "../../etc/passwd.png", image_bytes("PNG"), None, "passwd.png"),
        Case("windows-path-name", "C:\\Windows\\System32\\evil.png", image_bytes("PNG"), None, "evil.png"),
        Case(
            "control-and-bidi-name",
            "in\x7fvoice\u202egnp\x1b.exe.png",
            image_bytes("PNG"),
            None,
            "in_voice_gnp_.exe.png",
        ),
    ]
