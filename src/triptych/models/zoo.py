"""The model zoo: which torchvision architecture each Triptych model is, with a
classifier head sized to the label set of the version."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision


@dataclass(frozen=True)
class Architecture:
    name: str  # model name used everywhere: messages, tables, metrics
    function: str  # the inference function that serves it
    builder: str  # torchvision.models.<builder>
    # Training-time options of the builder; they change no weight shape, so a
    # state dict loads the same with or without them.
    options: tuple[tuple[str, object], ...] = ()

    @property
    def registered_name(self) -> str:
        return f"triptych-{self.name.replace('_', '-')}"


ARCHITECTURES = {
    a.name: a
    for a in (
        Architecture("resnet50", "infer-resnet50", "resnet50"),
        Architecture("mobilenet_v2", "infer-mobilenet-v2", "mobilenet_v2"),
        # Stochastic depth slows convergence from scratch on a small set too much.
        Architecture("efficientnet_b0", "infer-efficientnet-b0", "efficientnet_b0",
                     options=(("stochastic_depth_prob", 0.0),)),
    )
}


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; one of {', '.join(ARCHITECTURES)}") from None


def build(name: str, num_classes: int) -> torch.nn.Module:
    """A freshly initialised network with `num_classes` outputs."""
    arch = architecture(name)
    return getattr(torchvision.models, arch.builder)(weights=None, num_classes=num_classes, **dict(arch.options))


def build_pretrained(name: str) -> tuple[torch.nn.Module, list[str]]:
    """ImageNet weights from torchvision (downloads once; needs network access)."""
    weights_enum = torchvision.models.get_model_weights(architecture(name).builder)
    weights = weights_enum.DEFAULT
    model = getattr(torchvision.models, architecture(name).builder)(weights=weights)
    return model, list(weights.meta["categories"])
