"""The pieces that make the pipeline fast: decoding only as large as needed,
pixels carried in the image message, threads shared out, metric windows
recomputed once per interval."""

import subprocess
import sys
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest

from triptych.aggregation.windows import WindowRefresher
from triptych.config import Settings
from triptych.contracts import ImageMessage, Pixels, PredictionMessage
from triptych.imaging import decode, resize_to
from triptych.inference.infer import Classifier
from triptych.inference.serving_model import LoadedModel
from triptych.ingress.ingest import inline_pixels
from triptych.ingress.validation import InvalidImage, validate_image
from triptych.models.backends import default_threads
from triptych.models.card import ModelCard
from triptych.models.preprocess import needed_side

from ..images import image_bytes, truncated_jpeg

LIMITS = dict(max_bytes=5_000_000, max_pixels=50_000_000)


def photo(width=640, height=480) -> bytes:
    """A smooth camera-sized JPEG (random noise would not survive any downscale alike)."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.ascontiguousarray(
        np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1).astype(np.uint8)
    )
    cv2.circle(pixels, (width // 2, height // 2), height // 4, (250, 30, 60), -1)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(pixels[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return data.tobytes()


def test_a_jpeg_is_decoded_only_as_large_as_asked_and_looks_the_same_at_model_size():
    data = photo()
    full, reduced = decode(data), decode(data, at_least=64)
    assert full.shape == (480, 640, 3)
    assert reduced.shape == (120, 160, 3)  # 1/4: 1/8 would leave 60 < 64 rows
    difference = np.abs(resize_to(full, 64).astype(int) - resize_to(reduced, 64).astype(int))
    assert difference.mean() < 2.0  # grey levels out of 255


def test_other_formats_and_small_images_are_decoded_whole():
    png = image_bytes("PNG", (300, 200), seed=2)
    assert decode(png, at_least=64).shape == (200, 300, 3)
    assert decode(image_bytes("JPEG", (100, 80), seed=2), at_least=64).shape == (80, 100, 3)


def test_a_crop_model_keeps_enough_pixels_for_its_centre_crop():
    card = ModelCard(model_name="resnet50", labels=["a"], input_size=224, resize="shorter-side-crop", dataset_id="x")
    assert needed_side(card) == 256
    assert needed_side(card.model_copy(update={"resize": "stretch", "input_size": 64})) == 64


@pytest.mark.parametrize("at_least", [None, 64])
def test_validation_at_a_reduced_scale_still_refuses_a_truncated_jpeg(at_least):
    whole = photo()
    with pytest.raises(InvalidImage) as err:
        validate_image(whole[: len(whole) * 2 // 3], **LIMITS, decode_at_least=at_least)
    assert err.value.code == "corrupt"
    with pytest.raises(InvalidImage):
        validate_image(truncated_jpeg(), **LIMITS, decode_at_least=at_least)


def test_validation_hands_back_the_pixels_it_decoded_when_asked():
    info = validate_image(photo(), **LIMITS, decode_at_least=64)
    assert (info.width, info.height) == (640, 480) and info.pixels.shape == (120, 160, 3)
    assert validate_image(photo(), **LIMITS).pixels is None
    png = validate_image(image_bytes("PNG", (90, 70), seed=1), **LIMITS, decode_at_least=64)
    assert png.pixels.shape == (70, 90, 3)


def test_inline_pixels_round_trip_through_the_message():
    pixels = decode(photo(), at_least=64)
    carried = inline_pixels(pixels, 64)
    message = ImageMessage.model_validate_json(image_message(pixels=[carried]).model_dump_json())
    np.testing.assert_array_equal(message.pixels[0].array(), resize_to(pixels, 64))


def test_inline_pixels_of_the_wrong_length_are_refused():
    bad = Pixels(size=64, rgb_b64="AAAA")
    with pytest.raises(ValueError, match="not 64x64x3"):
        bad.array()


def image_message(**overrides) -> ImageMessage:
    fields = dict(
        image_id="00000000-0000-0000-0000-000000000001",
        bucket="images",
        object_key="synthetic/x.jpg",
        sha256="0" * 64,
        image_format="jpeg",
        width=640,
        height=480,
        source="synthetic",
    )
    fields.update(overrides)
    return ImageMessage(**fields)


class Sent:
    def get(self, timeout=None):
        return None


class FakeProducer:
    def __init__(self):
        self.sent = []

    def send(self, topic, key, value):
        self.sent.append(PredictionMessage.model_validate_json(value))
        return Sent()


class NoBucket:
    """An object store that must not be called."""

    def get_object(self, *args, **kwargs):
        raise AssertionError("the image was fetched although its pixels were in the message")


class Bucket:
    def __init__(self, data: bytes):
        self.data, self.gets = data, 0

    def get_object(self, *args, **kwargs):
        self.gets += 1
        data = self.data

        class Response:
            def read(self, limit=None):
                return data

            def close(self):
                pass

            def release_conn(self):
                pass

        return Response()


class Model:
    """A served model whose backend records the batch it was given."""

    def __init__(self, card: ModelCard):
        self.batches = []
        outer = self

        class Backend:
            name = "fake"

            def predict(self, batch):
                outer.batches.append(batch)
                return np.tile(np.array([[0.9, 0.1]], np.float32), (len(batch), 1))

        self.loaded = LoadedModel(card.model_copy(update={"version": "3"}), Backend())


def card(size=64, resize="stretch"):
    return ModelCard(
        model_name="mobilenet_v2",
        labels=["circle", "square"],
        input_size=size,
        resize=resize,
        dataset_id="synthetic-v1",
    )


def test_a_model_of_an_inlined_size_answers_without_fetching_or_decoding():
    pixels = decode(photo(), at_least=64)
    message = image_message(pixels=[inline_pixels(pixels, 64)])
    model, producer = Model(card()), FakeProducer()
    classifier = Classifier(Settings(), [model], NoBucket(), producer, "w-1")
    [answer] = classifier.handle([message.model_dump_json()])
    assert answer.predicted_class == "circle" and answer.timings.fetch_ms == 0
    assert answer.received_at is not None and answer.received_at <= answer.predicted_at
    assert model.batches[0].shape == (1, 3, 64, 64)
    assert producer.sent == [answer]


def test_a_model_of_another_size_fetches_and_decodes_only_as_large_as_it_needs():
    data = photo()
    message = image_message(pixels=[inline_pixels(decode(data, at_least=64), 64)])
    bucket, model = Bucket(data), Model(card(224, "shorter-side-crop"))
    Classifier(Settings(), [model], bucket, FakeProducer(), "w-1").handle([message.model_dump_json()])
    assert bucket.gets == 1 and model.batches[0].shape == (1, 3, 224, 224)


def test_threads_are_shared_out_among_the_models_replicas():
    assert default_threads(3, cores=2) == 1
    assert default_threads(3, cores=16) == 5
    assert default_threads(0, cores=4) == 4


def test_auto_is_cuda_on_a_gpu_else_onnx_runtime_when_the_export_exists(monkeypatch, tmp_path):
    from triptych.models import backends

    monkeypatch.setattr(backends, "_cuda_available", lambda: False)
    assert backends.resolve("auto") == "onnx" and backends.resolve("torch") == "torch"
    assert backends.resolve("auto", tmp_path) == "torch"  # a version without its ONNX export
    (tmp_path / backends.ONNX_FILE).write_bytes(b"")
    assert backends.resolve("auto", tmp_path) == "onnx"
    monkeypatch.setattr(backends, "_cuda_available", lambda: True)
    assert backends.resolve("auto", tmp_path) == "cuda"


def test_an_onnx_replica_never_imports_torch():
    code = (
        "import sys; from triptych.inference import infer; from triptych.models import backends; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


class FakeDb:
    def __init__(self):
        self.recomputed = []

    def transaction(self, work):
        class Cursor:
            def execute(cur, sql, params=None):
                if "INSERT INTO model_metrics" in sql:
                    self.recomputed.append((params["model"], params["version"], params["start"]))

        return work(Cursor())


def test_a_window_touched_by_many_batches_is_recomputed_once_per_flush():
    db = FakeDb()
    windows = WindowRefresher(db, interval_s=3600)  # flushed by hand below
    minute = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    for _ in range(50):
        windows.touch({("resnet50", "1", minute), ("mobilenet_v2", "2", minute)})
    windows.flush()
    assert sorted(db.recomputed) == [("mobilenet_v2", "2", minute), ("resnet50", "1", minute)]
    windows.flush()
    assert len(db.recomputed) == 2  # nothing new touched, nothing recomputed


def test_with_no_interval_every_batch_recomputes_at_once():
    db = FakeDb()
    minute = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    WindowRefresher(db, interval_s=0).touch({("resnet50", "1", minute)})
    assert db.recomputed == [("resnet50", "1", minute)]


def test_inline_sizes_are_checked_when_the_settings_are_read():
    assert Settings(inline_pixel_sizes=[]).inline_pixel_sizes == []
    with pytest.raises(ValueError):
        Settings(inline_pixel_sizes=[512])  # would not fit a message; refused at start, not per image
