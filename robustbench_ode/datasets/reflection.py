"""Dupont et al. 2019's 1-D map g(x) = -x (g(-1) = 1, g(1) = -1), as a regression dataset.

Inputs are drawn uniformly from [-1, -0.5] U [0.5, 1] (either interval with probability 1/2, from
:func:`~robustbench_ode.datasets.base.split_rng`, train and test independent) and the target is
``-x``, observed once, at t = 1: ``times = (0, 1)``, ``y`` of shape (N, 1, 1). A neural ODE whose
state is x itself cannot fit it: the time-1 flow of any 1-D field is increasing, and -x is
decreasing. With one zero dimension appended (ANODE) the flow can rotate (x, 0) to (-x, 0) in the
plane. The readout is fixed (the first coordinate of the final state), so no learned head can
supply the sign flip (docs/dupont.md)."""

from __future__ import annotations

import numpy as np
import torch

from . import params as p
from .base import DataSplits, split_rng


def reflection_inputs(seed: int, split: str, n: int) -> np.ndarray:
    """``n`` points uniform on [-1, -0.5] U [0.5, 1], shape (n, 1), float64."""
    rng = split_rng(seed, split)
    magnitude = rng.uniform(0.5, 1.0, n)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (sign * magnitude)[:, None]


def reflection(seed: int, **params) -> DataSplits:
    """x in 1-D, target g(x) = -x at t = 1 (Dupont et al. 2019, Section 3's g_1d)."""
    q = p.ReflectionParams(**params)
    tensors = []
    for split, n in (("train", q.n_train), ("test", q.n_test)):
        x = reflection_inputs(seed, split, n)
        tensors += [torch.as_tensor(x, dtype=torch.float32),
                    torch.as_tensor(-x[:, None, :], dtype=torch.float32)]
    return DataSplits(*tensors, n_classes=0, task="regression",
                      times=torch.tensor([0.0, 1.0], dtype=torch.float64))
