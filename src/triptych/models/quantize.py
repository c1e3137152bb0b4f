"""int8, opt-in: ONNX Runtime static quantisation (QDQ) of a version's ONNX export,
calibrated on its own training images and gated on top-1 agreement with fp32 on
held-out images.

    triptych models quantize resnet50           # the champion; --version V for another
                                                # (triptych.lifecycle.int8 runs it on a version)

It measures, side by side in one process: fp32 and int8 forward passes (ms per
image, the replicas' threads and batch), top-1 agreement and accuracy of each on
held-out images. When agreement reaches MIN_AGREEMENT, `model.int8.onnx` is added
to the version's artifacts; replicas serve it with TRIPTYCH_INFER_BACKEND=onnx-int8.
Off by default: on a CPU without VNNI (AVX2 only) int8 convolutions gain little.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .card import INT8_FILE, ONNX_FILE, ModelCard

MIN_AGREEMENT = 0.99


def quantize_onnx(fp32: Path, out: Path, calibration: np.ndarray, batch: int = 16) -> None:
    """`out`: `fp32` with int8 weights (per channel) and uint8 activations, QDQ,
    activation ranges calibrated (MinMax) on `calibration` (N x 3 x S x S)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = onnx.load(str(fp32), load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(calibration[i : i + batch] for i in range(0, len(calibration), batch))

        def get_next(self):
            chunk = next(self._batches, None)
            return None if chunk is None else {input_name: chunk}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))  # shape inference and folding, as ONNX Runtime advises
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


def predictions(backend, batch: np.ndarray, size: int = 64) -> np.ndarray:
    return np.concatenate([backend.predict(batch[i : i + size]) for i in range(0, len(batch), size)]).argmax(axis=1)


def ms_per_image(backend, batch: np.ndarray, repeats: int = 20) -> float:
    """The median over `repeats` passes of one batch, per image (after two warm-up passes)."""
    for _ in range(2):
        backend.predict(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        backend.predict(batch)
        times.append((time.perf_counter() - started) * 1000 / len(batch))
    return float(np.median(times))


def cpu_flags() -> list[str]:
    """Which int8 instructions this CPU has (VNNI makes int8 convolutions fast)."""
    try:
        flags = set(
            next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
            .split(":", 1)[1]
            .split()
        )
    except (OSError, StopIteration):
        return []
    return sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"})


def compare_int8(
    folder: Path,
    card: ModelCard,
    calibration: np.ndarray,
    held_out: np.ndarray,
    truth: np.ndarray,
    threads: int,
    batch: int,
    min_agreement: float = MIN_AGREEMENT,
) -> dict:
    """Quantise the export in `folder` into `folder/INT8_FILE` and measure both; it
    `passes` when its top-1 agrees with fp32's on at least `min_agreement` of them."""
    from .backends import OnnxBackend

    quantize_onnx(folder / ONNX_FILE, folder / INT8_FILE, calibration)
    fp32, int8 = OnnxBackend(folder / ONNX_FILE, threads), OnnxBackend(folder / INT8_FILE, threads)
    p32, p8 = predictions(fp32, held_out), predictions(int8, held_out)
    probe = held_out[:batch]
    fp32_ms, int8_ms = ms_per_image(fp32, probe), ms_per_image(int8, probe)
    return {
        "model_name": card.model_name,
        "version": card.version,
        "held_out": int(len(held_out)),
        "calibration": int(len(calibration)),
        "agreement": float(np.mean(p32 == p8)),
        "fp32_accuracy": float(np.mean(p32 == truth)),
        "int8_accuracy": float(np.mean(p8 == truth)),
        "fp32_ms_per_image": fp32_ms,
        "int8_ms_per_image": int8_ms,
        "speedup": fp32_ms / int8_ms,
        "threads": threads,
        "batch": batch,
        "passes": bool(np.mean(p32 == p8) >= min_agreement),
        "min_agreement": min_agreement,
        "cpu_flags": cpu_flags(),
    }
