"""Low-dimensional toy datasets, generated from the seed (bit-identical on every run)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from .base import DataSplits, split_rng

Count = Annotated[int, Field(gt=0, le=10_000_000)]
Noise = Annotated[float, Field(ge=0.0, le=10.0)]

# Sphere2 rings (PROTOCOL.md): (r_min, r_max, label, share of the points).
SPHERE_RINGS = ((0.10, 0.15, 0, 0.25), (0.25, 0.30, 1, 0.50), (0.40, 0.45, 0, 0.25))


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)


def sample_spheres(n: int, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Concentric shells, the construction of Dupont et al.: radius r_min + (r_max - r_min) u^(1/d),
    direction a normalised Gaussian vector. Shares are exact (rounding goes to the middle ring),
    so the two classes are balanced."""
    counts = [int(round(n * share)) for *_, share in SPHERE_RINGS]
    counts[1] = n - counts[0] - counts[2]
    xs, ys = [], []
    for (r_min, r_max, label, _), m in zip(SPHERE_RINGS, counts):
        direction = rng.standard_normal((m, dim))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        radius = r_min + (r_max - r_min) * rng.random(m) ** (1.0 / dim)
        xs.append(direction * radius[:, None])
        ys.append(np.full(m, label))
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(n)
    return x[order], y[order]


def sphere2(seed: int, n_train: Count = 2000, n_test: Count = 1000) -> DataSplits:
    """Three rings in 2-D (inner and outer: class 0, middle: class 1), as in Ott et al."""
    return spheres(seed, dim=2, n_train=n_train, n_test=n_test)


def spheres(seed: int, dim: Annotated[int, Field(ge=2, le=4096)] = 2, n_train: Count = 2000,
            n_test: Count = 1000) -> DataSplits:
    """Concentric spheres in ``dim`` dimensions (Sphere2 generalised; the protocol also uses 3, 10, 900)."""
    tr = _tensors(*sample_spheres(n_train, dim, split_rng(seed, "train")))
    te = _tensors(*sample_spheres(n_test, dim, split_rng(seed, "test")))
    return DataSplits(*tr, *te, n_classes=2)


def _sk_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def moons(seed: int, n_train: Count = 2000, n_test: Count = 1000, noise: Noise = 0.1) -> DataSplits:
    """Two interleaving half circles (scikit-learn's make_moons)."""
    from sklearn.datasets import make_moons  # lazy: scikit-learn adds seconds to every import

    tr = _tensors(*make_moons(n_train, noise=noise, random_state=_sk_seed(split_rng(seed, "train"))))
    te = _tensors(*make_moons(n_test, noise=noise, random_state=_sk_seed(split_rng(seed, "test"))))
    return DataSplits(*tr, *te, n_classes=2)


def annuli(seed: int, n_train: Count = 2000, n_test: Count = 1000, noise: Noise = 0.05,
           factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5) -> DataSplits:
    """Two concentric circles (scikit-learn's make_circles); ``factor`` is the inner/outer radius ratio."""
    from sklearn.datasets import make_circles

    kw = dict(noise=noise, factor=factor)
    tr = _tensors(*make_circles(n_train, random_state=_sk_seed(split_rng(seed, "train")), **kw))
    te = _tensors(*make_circles(n_test, random_state=_sk_seed(split_rng(seed, "test")), **kw))
    return DataSplits(*tr, *te, n_classes=2)


def sample_spirals(n: int, turns: float, noise: float, rng: np.random.Generator):
    # Not in scikit-learn: two Archimedean spirals, the second rotated by pi.
    m0 = n // 2
    labels = np.concatenate([np.zeros(m0, dtype=np.int64), np.ones(n - m0, dtype=np.int64)])
    s = np.sqrt(rng.random(n))  # uniform along the arc length, roughly
    theta = s * turns * 2 * np.pi
    radius = s
    phase = np.pi * labels
    x = np.stack([radius * np.cos(theta + phase), radius * np.sin(theta + phase)], axis=1)
    x += noise * rng.standard_normal(x.shape)
    order = rng.permutation(n)
    return x[order], labels[order]


def spirals(seed: int, n_train: Count = 2000, n_test: Count = 1000, noise: Noise = 0.02,
            turns: Annotated[float, Field(gt=0.0, le=10.0)] = 1.5) -> DataSplits:
    """Two interleaved spirals with ``turns`` turns each."""
    tr = _tensors(*sample_spirals(n_train, turns, noise, split_rng(seed, "train")))
    te = _tensors(*sample_spirals(n_test, turns, noise, split_rng(seed, "test")))
    return DataSplits(*tr, *te, n_classes=2)


TOY_DATASETS = {
    "sphere2": (sphere2, "three concentric rings in 2-D, classes 0/1/0, 2000/1000 points (Ott et al.)"),
    "spheres": (spheres, "concentric spheres in `dim` dimensions, Sphere2 generalised"),
    "moons": (moons, "two interleaving half circles, scikit-learn's make_moons"),
    "annuli": (annuli, "two concentric circles, scikit-learn's make_circles"),
    "spirals": (spirals, "two interleaved spirals"),
}
