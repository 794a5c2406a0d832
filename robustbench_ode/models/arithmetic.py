"""Multiply-adds (MACs) of one field evaluation, per sample, from a family's parameters and the
input shape: what the cost estimate (harness/cost.py) scales its measured rate by. Each family
declares its rule in the registry (models/catalog.py ``ModelInfo.macs``);
tests/test_arithmetic.py checks every rule against torch's FLOP counter on the built field.

Written by hand rather than counted with ``torch.utils.flop_counter``: the estimate runs in
``validate``, which never imports torch (docs/architecture.md), and the counter needs a built
model. Only the field is counted: the input map and the head run once per forward pass, the field
once per stage of every step. Bias additions and activations are left out, as FLOP counters do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .params import (
    AugmentedTrajectoryParams,
    CNFParams,
    MLPParams,
    OttConv1dParams,
    OttConv2dParams,
    ResNetParams,
    TrajectoryParams,
    base_params,
    resolved_trace,
)


def _ott_block(channels: int, width: int, time_input: bool, taps: int) -> int:
    """Ott et al.'s block at one position: C(+t) -> w (1 tap), w -> w (``taps``), w -> C (1 tap)."""
    return (channels + int(time_input)) * width + width * width * taps + width * channels


def ott_conv1d(params: dict[str, Any], in_shape: tuple[int, ...]) -> int:
    """A d-dim point as a (1 + augment)-channel signal of length d; a kernel of 3 at every one of
    the d positions (padding included, as the convolution computes it)."""
    q = OttConv1dParams(**params)
    return math.prod(in_shape) * _ott_block(1 + q.augment, q.width, q.time_input, 3)


def ott_conv2d(params: dict[str, Any], in_shape: tuple[int, ...]) -> int:
    """(C, H, W) images, after the optional strided input map; a 3x3 kernel at every pixel."""
    q = OttConv2dParams(**params)
    c, h, w = in_shape
    if q.input_map == "strided_conv":
        c = q.map_channels or c
        h, w = (h - 1) // q.map_stride + 1, (w - 1) // q.map_stride + 1
    return h * w * _ott_block(c + q.augment, q.width, q.time_input, 9)


def _mlp(dim: int, hidden: int, depth: int, time_input: bool) -> int:
    widths = [dim + int(time_input)] + [hidden] * depth + [dim]
    return sum(a * b for a, b in zip(widths, widths[1:]))


def mlp(params: dict[str, Any], in_shape: tuple[int, ...]) -> int:
    q = MLPParams(**params)
    return _mlp(math.prod(in_shape) + q.augment, q.hidden, q.depth, q.time_input)


def trajectory(params: dict[str, Any], in_shape: tuple[int, ...]) -> int:
    """The time-series MLP on the flat state (no augmentation)."""
    q = TrajectoryParams(**params)
    return _mlp(math.prod(in_shape), q.hidden, q.depth, q.time_input)


def augmented_trajectory(params: dict[str, Any], in_shape: tuple[int, ...]) -> int:
    """The time-series MLP on the flat state plus ``augment`` zero dimensions."""
    q = AugmentedTrajectoryParams(**params)
    return _mlp(math.prod(in_shape) + q.augment, q.hidden, q.depth, q.time_input)


def cnf(params: dict[str, Any], in_shape: tuple[int, ...]) -> int:
    """A CNF's augmented field in training mode: the MLP's forward pass plus one backward pass
    through it (the same multiply-adds: each layer's input gradient) per vector-Jacobian product
    of its trace, D for the exact trace, ``probes`` for Hutchinson's."""
    q = CNFParams(**params)
    dim = math.prod(in_shape)
    products = dim if resolved_trace(q.trace, dim) == "exact" else q.probes
    return (1 + products) * _mlp(dim, q.hidden, q.depth, q.time_input)


BASES = {"ott_conv1d": ott_conv1d, "ott_conv2d": ott_conv2d, "mlp": mlp}


@dataclass(frozen=True)
class Residual:
    """A ResNet baseline: one block is its base family's field (a class, not a closure: metadata
    travels to spawned and Ray workers by pickling)."""

    def __call__(self, params: dict[str, Any], in_shape: tuple[int, ...]) -> int:
        q = ResNetParams(**params)
        return BASES[q.base](base_params(q), in_shape)
