"""Running a model version: ONNX Runtime (the model exported at registration;
the default on CPUs), PyTorch eager, or CUDA with fp16 when a GPU exists. Every
backend takes a preprocessed N x 3 x S x S float32 batch and returns N x C
probabilities.

torch is imported only by the backends that need it: an ONNX Runtime replica
never loads it (a few hundred MB less per replica).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .card import INT8_FILE, ONNX_FILE, WEIGHTS_FILE, ModelCard

if TYPE_CHECKING:
    import torch

BACKENDS = ("onnx", "onnx-int8", "torch", "cuda", "auto")
# The files a backend needs beside the card (the int8 model is added later, by hand).
REQUIRED_FILES = {"onnx-int8": (INT8_FILE,)}


def available_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads(model_processes: int, cores: int | None = None) -> int:
    """Intra-op threads per inference replica when none are configured: the cores
    shared out among the processes that run models at once, at least one. More
    threads than that only contend (and ONNX Runtime's idle threads spin)."""
    return max(1, (cores or available_cores()) // max(1, model_processes))


class TorchBackend:
    def __init__(self, model: torch.nn.Module, device: str = "cpu", fp16: bool = False):
        import torch

        self.device = torch.device(device)
        self.dtype = torch.float16 if fp16 else torch.float32
        # On a GPU, convolutions in NHWC use the tensor cores' fast kernels.
        self.memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        self.model = model.to(self.device, self.dtype).eval().to(memory_format=self.memory_format)
        self.name = f"torch-{self.device.type}{'-fp16' if fp16 else ''}"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        import torch

        return self.predict_tensor(torch.from_numpy(batch))

    def predict_tensor(self, batch: torch.Tensor) -> np.ndarray:
        """A batch already in torch (on the GPU, say, after decoding there)."""
        import torch

        with torch.inference_mode():
            tensor = batch.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
            return torch.softmax(self.model(tensor).float(), dim=1).cpu().numpy()


class OnnxBackend:
    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # Idle intra-op threads spin-wait by default: cheap alone, but beside two
        # other models' replicas on a few cores it burns the CPU they need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.name = "onnxruntime-cpu"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        logits = self.session.run(None, {self.input_name: batch})[0]
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def load_torch_model(folder: Path, card: ModelCard) -> torch.nn.Module:
    import torch

    from .zoo import build

    model = build(card.model_name, len(card.labels))
    model.load_state_dict(torch.load(Path(folder) / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    return model.eval()


def _cuda_available() -> bool:
    # No NVIDIA device node, no CUDA: decided without importing torch.
    if not Path("/dev/nvidiactl").exists():
        return False
    import torch

    return torch.cuda.is_available()


def resolve(kind: str, folder: Path | None = None) -> str:
    """`auto` is CUDA fp16 when a GPU is present, else ONNX Runtime on the CPU
    (when the version has its ONNX export, as every registered one does), else PyTorch."""
    if kind != "auto":
        return kind
    if _cuda_available():
        return "cuda"
    return "onnx" if folder is None or (Path(folder) / ONNX_FILE).exists() else "torch"


def load_backend(kind: str, folder: Path, card: ModelCard, threads: int | None = None):
    kind = resolve(kind, folder)
    if kind == "onnx":
        return OnnxBackend(Path(folder) / ONNX_FILE, threads)
    if kind == "onnx-int8":
        if not (Path(folder) / INT8_FILE).exists():
            raise FileNotFoundError(
                f"{card.model_name} v{card.version} has no int8 model: "
                f"`triptych models quantize {card.model_name} --version {card.version}` first"
            )
        backend = OnnxBackend(Path(folder) / INT8_FILE, threads)
        backend.name = "onnxruntime-cpu-int8"
        return backend
    if kind not in ("cuda", "torch"):
        raise ValueError(f"unknown backend {kind!r}; one of {', '.join(BACKENDS)}")
    import torch

    if threads:
        torch.set_num_threads(threads)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("backend `cuda` asked for, but torch sees no GPU")
        return TorchBackend(load_torch_model(folder, card), "cuda", fp16=True)
    return TorchBackend(load_torch_model(folder, card))


def export_onnx(model: torch.nn.Module, card: ModelCard, path: Path) -> None:
    """A dynamic-batch ONNX graph of the model, for the ONNX Runtime backend."""
    import torch

    model = model.eval().to("cpu", torch.float32)
    example = torch.zeros(1, 3, card.input_size, card.input_size)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs no extra packages (the
        # dynamo one needs onnxscript) and handles these three networks exactly.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
