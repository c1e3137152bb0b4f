import hashlib

import pytest

from triptych.imaging import sniff_format
from triptych.ingress.objects import (
    decode_metadata,
    encode_metadata,
    image_id_for,
    sanitize_filename,
)
from triptych.ingress.validation import InvalidImage, validate_image

from ..images import image_bytes, png_claiming, truncated_jpeg

LIMITS = dict(max_bytes=2_000_000, max_pixels=50_000_000)


@pytest.mark.parametrize("fmt,name", [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp")])
def test_every_accepted_format_is_sniffed_and_measured(fmt, name):
    data = image_bytes(fmt, (48, 32))
    info = validate_image(data, **LIMITS)
    assert (info.format, info.width, info.height, info.channels) == (name, 48, 32, 3)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "data,code,status",
    [
        (b"", "empty", 400),
        (truncated_jpeg(), "corrupt", 400),
        (b"this is plain text, not a jpeg\n" * 10, "unsupported_format", 415),
        (png_claiming(100_000, 100_000), "too_many_pixels", 413),
        (b"\xff\xd8\xff" + b"\x00" * 2_000_001, "too_large", 413),
    ],
    ids=["empty", "truncated-jpeg", "text-named-jpg", "png-bomb", "over-size-limit"],
)
def test_bad_images_are_refused_with_a_reason(data, code, status):
    with pytest.raises(InvalidImage) as err:
        validate_image(data, **LIMITS)
    assert err.value.code == code and err.value.http_status == status
    assert str(err.value)


def test_format_comes_from_bytes_not_names():
    assert sniff_format(image_bytes("PNG")) == "png"
    assert sniff_format(b"GIF89a....") is None


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        (".hidden.png", "hidden.png"),
        ("ñandú café 写真.jpg", "ñandú café 写真.jpg"),
        ("a\x00b\nc.png", "a_b_c.png"),
        ("", "image"),
        (None, "image"),
    ],
)
def test_filenames_are_sanitised(raw, expected):
    assert sanitize_filename(raw) == expected


def test_metadata_round_trips_non_ascii_through_s3_headers():
    meta = encode_metadata("upload", "ñandú.png", "pájaro", {"camera": "café"})
    assert all(value.isascii() for value in meta.values())
    event_style = {f"X-Amz-Meta-{k.title()}": v for k, v in meta.items()}
    assert decode_metadata(event_style) == {
        "source": "upload",
        "label": "pájaro",
        "filename": "ñandú.png",
        "client": {"camera": "café"},
    }


def test_image_id_is_deterministic_and_depends_on_every_part():
    base = image_id_for("images", "k", "", "a" * 64)
    assert base == image_id_for("images", "k", "", "a" * 64)
    assert (
        len(
            {
                base,
                image_id_for("images", "k2", "", "a" * 64),
                image_id_for("images", "k", "v1", "a" * 64),
                image_id_for("images", "k", "", "b" * 64),
            }
        )
        == 4
    )
