"""Built-in model families: factories ``f(in_shape, n_classes, **params) -> ODEClassifier``."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field
from torch import nn

from ..registry import Registry
from .classifier import AugmentChannels, ODEClassifier, Reshape, init_weights
from .fields import MLP, OttConv1d, OttConv2d
from .params import Activation, Augment, Depth, EndTime, Width

MODELS: Registry = Registry("model")



def ott_conv1d(in_shape: tuple[int, ...], n_classes: int, width: Width = 32,
               time_input: bool = False, augment: Augment = 0,
               t1: EndTime = 1.0, fast: bool = True) -> ODEClassifier:
    """Sphere2's model: a d-dim point becomes a (1 + augment)-channel signal of length d."""
    dim = math.prod(in_shape)
    channels = 1 + augment
    input_map = nn.Sequential(Reshape(1, dim), AugmentChannels(augment))
    field = OttConv1d(channels, width, time_input, fast)
    model = ODEClassifier(input_map, field, nn.Linear(channels * dim, n_classes), (0.0, t1))
    init_weights(model)
    return model


def ott_conv2d(in_shape: tuple[int, ...], n_classes: int, width: Width = 128,
               time_input: bool = False, augment: Augment = 0,
               t1: EndTime = 1.0, input_map: Literal["none", "strided_conv"] = "none",
               map_channels: Annotated[int, Field(gt=0, le=4096)] | None = None,
               map_stride: Annotated[int, Field(ge=1, le=16)] = 2) -> ODEClassifier:
    """The image model: (C, H, W) images, (C' + augment) state channels, one linear classifier.

    ``input_map: strided_conv`` lifts the image with a 3x3 conv (``map_channels`` out, default C;
    stride ``map_stride``) before the ODE block: a smaller state makes CPU runs cheap. ``none``
    (the protocol's CIFAR10 model) feeds the image itself.
    """
    c, h, w = in_shape
    layers: list[nn.Module] = []
    if input_map == "strided_conv":
        c_out = map_channels or c
        layers.append(nn.Conv2d(c, c_out, 3, stride=map_stride, padding=1))
        c, h, w = c_out, (h - 1) // map_stride + 1, (w - 1) // map_stride + 1
    layers.append(AugmentChannels(augment))
    channels = c + augment
    field = OttConv2d(channels, width, time_input)
    lift = layers[0] if len(layers) == 1 else nn.Sequential(*layers)
    model = ODEClassifier(lift, field, nn.Linear(channels * h * w, n_classes), (0.0, t1))
    init_weights(model)
    return model


def mlp(in_shape: tuple[int, ...], n_classes: int, hidden: Width = 64,
        depth: Depth = 2,
        activation: Activation = "relu",
        time_input: bool = False, augment: Augment = 0,
        t1: EndTime = 1.0) -> ODEClassifier:
    """A fully connected field on the flattened input (plus ``augment`` zero dimensions)."""
    dim = math.prod(in_shape) + augment
    input_map = nn.Sequential(nn.Flatten(), AugmentChannels(augment))
    field = MLP(dim, hidden, depth, activation, time_input)
    model = ODEClassifier(input_map, field, nn.Linear(dim, n_classes), (0.0, t1))
    init_weights(model)
    return model


BUILTIN_MODELS = {
    "ott_conv1d": (ott_conv1d, "Conv1d field 1->32 (k1), 32->32 (k3), 32->1 (k1) on points; Sphere2"),
    "ott_conv2d": (ott_conv2d, "Conv2d field C->128 (k1), 128->128 (k3), 128->C (k1); images"),
    "mlp": (mlp, "fully connected field on flattened input; 2-D toys"),
}
