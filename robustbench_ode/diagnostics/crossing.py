"""Crossing of discrete trajectories in a 2-D state space.

Two samples' trajectories cross when, at some step k, their segments ``z_k -> z_{k+1}`` (the same
step for both: the straight line the discrete map is drawn as over [t_k, t_{k+1}]) intersect
properly: each segment has the other's end points strictly on opposite sides. Touching and
collinear overlaps are not counted (a measure-zero event for data in general position).

The trajectories of an autonomous ODE never meet in state space; its chords between grid points
can still cross where the step is coarse compared with the curvature and shear of the flow, which
is why the same number is reported for the reference trajectory as a baseline.
"""

from __future__ import annotations

import numpy as np
import torch


def sample_pairs(n: int, max_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, bool]:
    """Index pairs (i, j), i != j: all ``n (n - 1) / 2`` unordered pairs if that is at most
    ``max_pairs``; otherwise ``max_pairs`` ordered pairs drawn uniformly with replacement from all
    i != j by ``numpy.random.default_rng(seed)``. Returns ``(i, j, subsampled)``."""
    total = n * (n - 1) // 2
    if total <= max_pairs:
        i, j = np.triu_indices(n, 1)
        return i, j, False
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, max_pairs)
    j = rng.integers(0, n - 1, max_pairs)
    j = j + (j >= i)  # uniform over the n - 1 others
    return i, j, True


def _orient(p: torch.Tensor, q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Twice the signed area of (p, q, r); > 0 when r is left of p -> q."""
    return ((q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1])
            - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0]))


def segments_cross(a1: torch.Tensor, b1: torch.Tensor, a2: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """Whether segments a1-b1 and a2-b2 (tensors (..., 2)) cross properly."""
    d1, d2 = _orient(a2, b2, a1), _orient(a2, b2, b1)
    d3, d4 = _orient(a1, b1, a2), _orient(a1, b1, b2)
    return (d1 * d2 < 0) & (d3 * d4 < 0)


def crossing_pairs(points: torch.Tensor, i: np.ndarray, j: np.ndarray, chunk: int = 4096) -> torch.Tensor:
    """For trajectories ``points`` (B, N + 1, 2): per pair (i, j), whether they cross at any step."""
    out = []
    ii, jj = torch.as_tensor(i, device=points.device), torch.as_tensor(j, device=points.device)
    for s in range(0, len(ii), chunk):
        p, q = points[ii[s:s + chunk]], points[jj[s:s + chunk]]
        hit = segments_cross(p[:, :-1], p[:, 1:], q[:, :-1], q[:, 1:])  # (P, N)
        out.append(hit.any(1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool, device=points.device)


def crossing_fraction(points: torch.Tensor, max_pairs: int = 20_000,
                      seed: int = 0) -> tuple[float, int, bool]:
    """Share of sample pairs whose discrete trajectories (B, N + 1, 2) cross; also the number of
    pairs checked and whether they were a random subsample (:func:`sample_pairs`)."""
    if points.shape[0] < 2:
        return float("nan"), 0, False
    i, j, sub = sample_pairs(points.shape[0], max_pairs, seed)
    hit = crossing_pairs(points, i, j)
    return float(hit.double().mean()), len(i), sub
