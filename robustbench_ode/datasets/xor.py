"""XOR: the four corners of the unit square, classes 0/1/1/0, optionally as noisy samples."""

from __future__ import annotations

import numpy as np
import torch

from . import params as p
from .base import DataSplits, split_rng

XOR_POINTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_LABELS = np.array([0, 1, 1, 0])


def sample_xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples cycling through the four corners (balanced to within one per corner), each
    plus Gaussian noise of standard deviation ``noise``. With n = 4 and no noise: the four points."""
    corner = np.arange(n) % 4
    x = XOR_POINTS[corner] + noise * rng.standard_normal((n, 2))
    order = rng.permutation(n) if n > 4 else np.arange(n)  # the clean four stay in corner order
    return x[order], XOR_LABELS[corner][order]


def xor(seed: int, **params) -> DataSplits:
    """XOR {0,0}->0, {0,1}->1, {1,0}->1, {1,1}->0; by default exactly the four points in each split."""
    q = p.XorParams(**params)
    splits = []
    for split, n in (("train", q.n_train), ("test", q.n_test)):
        x, y = sample_xor(n, q.noise, split_rng(seed, split))
        splits += [torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)]
    return DataSplits(*splits, n_classes=2)
