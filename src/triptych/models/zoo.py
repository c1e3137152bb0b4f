"""The model zoo: which torchvision architecture each Triptych model is, with a
classifier head sized to the label set of the version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a network is built: naming models stays light (the dashboard)
    import torch


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
        Architecture(
            "efficientnet_b0", "infer-efficientnet-b0", "efficientnet_b0", options=(("stochastic_depth_prob", 0.0),)
        ),
    )
}


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; one of {', '.join(ARCHITECTURES)}") from None


def build(name: str, num_classes: int) -> torch.nn.Module:
    """A freshly initialised network with `num_classes` outputs."""
    import torchvision

    arch = architecture(name)
    model = getattr(torchvision.models, arch.builder)(weights=None, num_classes=num_classes, **dict(arch.options))
    _start_head_small(model)
    return model


def _start_head_small(model: torch.nn.Module) -> None:
    """Start the classifier near uniform predictions, whatever the label count.

    torchvision's EfficientNet draws its head from U(+-1/sqrt(num_classes)), scaled
    for 1000 ImageNet classes: with 10 classes the first logits are so large that
    training from scratch spent its first epochs undoing them (67.8 % held-out after
    3 epochs, 24 % vs 69 % after 2 short epochs on 4,000 images). N(0, 0.01) is what
    MobileNetV2 already uses and about ResNet50's default scale (std 0.013).
    """
    import torch

    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.normal_(head.weight, std=0.01)
    torch.nn.init.zeros_(head.bias)


def build_pretrained(name: str) -> tuple[torch.nn.Module, list[str]]:
    """ImageNet weights from torchvision (downloads once; needs network access)."""
    import torchvision

    weights_enum = torchvision.models.get_model_weights(architecture(name).builder)
    weights = weights_enum.DEFAULT
    model = getattr(torchvision.models, architecture(name).builder)(weights=weights)
    return model, list(weights.meta["categories"])
