"""Low-dimensional toy datasets, generated from the seed (bit-identical on every run)."""

from __future__ import annotations

import numpy as np
import torch

from . import params as p
from .base import DataSplits, split_rng

# Sphere2 rings (Ott et al. 2021, after Dupont et al. 2019): (r_min, r_max, label, share of the points).
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


def sphere2(seed: int, **params) -> DataSplits:
    """Three rings in 2-D (inner and outer: class 0, middle: class 1), as in Ott et al."""
    q = p.Sphere2Params(**params)
    return spheres(seed, dim=2, n_train=q.n_train, n_test=q.n_test)


def spheres(seed: int, **params) -> DataSplits:
    """Concentric spheres in ``dim`` dimensions (Sphere2 generalised; the protocol also uses 3, 10, 900)."""
    q = p.SpheresParams(**params)
    tr = _tensors(*sample_spheres(q.n_train, q.dim, split_rng(seed, "train")))
    te = _tensors(*sample_spheres(q.n_test, q.dim, split_rng(seed, "test")))
    return DataSplits(*tr, *te, n_classes=2)


def _sk_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def moons(seed: int, **params) -> DataSplits:
    """Two interleaving half circles (scikit-learn's make_moons)."""
    from sklearn.datasets import make_moons  # lazy: scikit-learn adds seconds to every import

    q = p.MoonsParams(**params)
    tr = _tensors(*make_moons(q.n_train, noise=q.noise, random_state=_sk_seed(split_rng(seed, "train"))))
    te = _tensors(*make_moons(q.n_test, noise=q.noise, random_state=_sk_seed(split_rng(seed, "test"))))
    return DataSplits(*tr, *te, n_classes=2)


def annuli(seed: int, **params) -> DataSplits:
    """Two concentric circles (scikit-learn's make_circles); ``factor`` is the inner/outer radius ratio."""
    from sklearn.datasets import make_circles

    q = p.AnnuliParams(**params)
    kw = dict(noise=q.noise, factor=q.factor)
    tr = _tensors(*make_circles(q.n_train, random_state=_sk_seed(split_rng(seed, "train")), **kw))
    te = _tensors(*make_circles(q.n_test, random_state=_sk_seed(split_rng(seed, "test")), **kw))
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


def spirals(seed: int, **params) -> DataSplits:
    """Two interleaved spirals with ``turns`` turns each."""
    q = p.SpiralsParams(**params)
    tr = _tensors(*sample_spirals(q.n_train, q.turns, q.noise, split_rng(seed, "train")))
    te = _tensors(*sample_spirals(q.n_test, q.turns, q.noise, split_rng(seed, "test")))
    return DataSplits(*tr, *te, n_classes=2)

