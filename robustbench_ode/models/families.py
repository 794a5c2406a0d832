"""Built-in model families: factories ``f(in_shape, n_classes, **params) -> ODEClassifier``, their
parameters validated by the families' models in :mod:`.params`."""

from __future__ import annotations

import math

from torch import nn

from .classifier import AugmentChannels, ODEClassifier, Reshape, init_weights
from .fields import MLP, OttConv1d, OttConv2d
from .params import MLPParams, OttConv1dParams, OttConv2dParams


def ott_conv1d(in_shape: tuple[int, ...], n_classes: int, **params) -> ODEClassifier:
    """Sphere2's model: a d-dim point becomes a (1 + augment)-channel signal of length d."""
    q = OttConv1dParams(**params)
    dim = math.prod(in_shape)
    channels = 1 + q.augment
    input_map = nn.Sequential(Reshape(1, dim), AugmentChannels(q.augment))
    field = OttConv1d(channels, q.width, q.time_input, q.fast)
    model = ODEClassifier(input_map, field, nn.Linear(channels * dim, n_classes), (0.0, q.t1))
    init_weights(model)
    return model


def ott_conv2d(in_shape: tuple[int, ...], n_classes: int, **params) -> ODEClassifier:
    """The image model: (C, H, W) images, (C' + augment) state channels, one linear classifier.

    ``input_map: strided_conv`` lifts the image with a 3x3 conv (``map_channels`` out, default C;
    stride ``map_stride``) before the ODE block: a smaller state makes CPU runs cheap. ``none``
    (the protocol's CIFAR10 model) feeds the image itself.
    """
    q = OttConv2dParams(**params)
    c, h, w = in_shape
    layers: list[nn.Module] = []
    if q.input_map == "strided_conv":
        c_out = q.map_channels or c
        layers.append(nn.Conv2d(c, c_out, 3, stride=q.map_stride, padding=1))
        c, h, w = c_out, (h - 1) // q.map_stride + 1, (w - 1) // q.map_stride + 1
    layers.append(AugmentChannels(q.augment))
    channels = c + q.augment
    field = OttConv2d(channels, q.width, q.time_input)
    lift = layers[0] if len(layers) == 1 else nn.Sequential(*layers)
    model = ODEClassifier(lift, field, nn.Linear(channels * h * w, n_classes), (0.0, q.t1))
    init_weights(model)
    return model


def mlp(in_shape: tuple[int, ...], n_classes: int, **params) -> ODEClassifier:
    """A fully connected field on the flattened input (plus ``augment`` zero dimensions)."""
    q = MLPParams(**params)
    dim = math.prod(in_shape) + q.augment
    input_map = nn.Sequential(nn.Flatten(), AugmentChannels(q.augment))
    field = MLP(dim, q.hidden, q.depth, q.activation, q.time_input)
    model = ODEClassifier(input_map, field, nn.Linear(dim, n_classes), (0.0, q.t1))
    init_weights(model)
    return model
