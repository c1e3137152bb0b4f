"""A freshly built network starts from near-uniform predictions, whatever its label count."""

import math

import pytest
import torch

from triptych.models.zoo import ARCHITECTURES, build


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_fresh_network_predicts_near_uniform(name):
    torch.manual_seed(0)
    # Train mode: batch statistics, as the first training step sees it (eval mode
    # would use BatchNorm's untrained running statistics).
    model = build(name, 10).train()
    with torch.no_grad():
        probabilities = torch.softmax(model(torch.rand(16, 3, 64, 64)), dim=1)
    assert probabilities.shape == (16, 10)
    # With torchvision's own EfficientNet head (scaled for 1000 classes) these are
    # about 0.5 and 1.0 nats; with the small head every model is near 0.1-0.2 and 0.1.
    assert probabilities.max(dim=1).values.mean().item() < 0.3
    entropy = -(probabilities * probabilities.log()).sum(dim=1).mean().item()
    assert math.log(10) - entropy < 0.25


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="unknown model 'vgg16'"):
        build("vgg16", 10)
