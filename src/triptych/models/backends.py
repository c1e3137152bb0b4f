"""Running a model version: PyTorch eager (default), ONNX Runtime (the model
exported at registration), or CUDA with fp16 when a GPU exists. Every backend
takes a preprocessed N x 3 x S x S float32 batch and returns N x C probabilities."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .card import ONNX_FILE, WEIGHTS_FILE, ModelCard
from .zoo import build

BACKENDS = ("torch", "onnx", "cuda", "auto")


class TorchBackend:
    def __init__(self, model: torch.nn.Module, device: str = "cpu", fp16: bool = False):
        self.device = torch.device(device)
        self.dtype = torch.float16 if fp16 else torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        self.name = f"torch-{self.device.type}{'-fp16' if fp16 else ''}"

    @torch.inference_mode()
    def predict(self, batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(batch).to(self.device, self.dtype)
        return torch.softmax(self.model(tensor).float(), dim=1).cpu().numpy()


class OnnxBackend:
    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.name = "onnxruntime-cpu"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        logits = self.session.run(None, {self.input_name: batch})[0]
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def load_torch_model(folder: Path, card: ModelCard) -> torch.nn.Module:
    model = build(card.model_name, len(card.labels))
    model.load_state_dict(torch.load(Path(folder) / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    return model.eval()


def load_backend(kind: str, folder: Path, card: ModelCard, threads: int | None = None):
    """`auto` picks CUDA fp16 when a GPU is present, else PyTorch on the CPU."""
    if threads:
        torch.set_num_threads(threads)
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "torch"
    if kind == "onnx":
        return OnnxBackend(Path(folder) / ONNX_FILE, threads)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("backend `cuda` asked for, but torch sees no GPU")
        return TorchBackend(load_torch_model(folder, card), "cuda", fp16=True)
    if kind == "torch":
        return TorchBackend(load_torch_model(folder, card))
    raise ValueError(f"unknown backend {kind!r}; one of {', '.join(BACKENDS)}")


def export_onnx(model: torch.nn.Module, card: ModelCard, path: Path) -> None:
    """A dynamic-batch ONNX graph of the model, for the ONNX Runtime backend."""
    model = model.eval().to("cpu", torch.float32)
    example = torch.zeros(1, 3, card.input_size, card.input_size)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs no extra packages (the
        # dynamo one needs onnxscript) and handles these three networks exactly.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, example, str(path), input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)
