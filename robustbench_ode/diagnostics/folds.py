"""The fold test: does the train solver's discrete map fold the region the data occupy, and where?

A fold is a step whose one-step map has ``det dPsi_k <= 0`` (``logdet.py``); no ODE flow has one.
Testing the determinant at each sample's own point z_k alone misses the folds that matter: in a
pleat the triple-covered region has two orientation-preserving sheets and one reversed one, so a
sample moved across the decision boundary by the fold often has det > 0 itself (the pleat
``x -> x (1 - c exp(-x^2 / s^2))``, c = 2: half the samples it flips have det > 0;
``tests/test_fold_calibration.py``). So the test looks at the map around the data:

- **Probe segments.** Each diagnosed sample is joined, in the initial state z_0, to its 1st, 2nd,
  4th, 8th, ... nearest other sample, up to the rank ``reach * B`` (default 1/8 of the samples: a
  neighbourhood of the same share of the data whatever the sample size); each segment carries
  ``per_segment`` evenly spaced interior probe points (at most ``max_probes`` in all: fewer points
  per segment first, down to one, then a random subset of the segments). The probes
  are carried through the train map like samples, and at every step the determinant of the step's
  Jacobian is taken at each probe's own point: along each segment, a sign change of det on the
  image of the path.
- **A segment folds at step k** when det <= 0 at step k at one of its probes or at either end.
- **A sample is at a fold at step k** when it folds there itself or one of its segments does.

The verdict (``verdict.py``) counts flipped samples at a fold at their flip step; the map-level
numbers (share of segments that fold, the first step at which the map folds on the data) say
whether and where the map folds at all, flips or not. Limits (docs/diagnostics.md): a fold
narrower than the probe spacing that no sample sits in is missed; a sample flipped by a fold
farther away than its ``reach`` neighbourhood is not counted at it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .pieces import step_signs, train_points


@dataclass
class FoldTest:
    """What :func:`fold_test` returns (numpy arrays; B samples, S segments, N steps).

    ``sign``, ``log_det`` (B, N): det of the step map at each sample's own point;
    ``own`` (B, N): det <= 0 there; ``near`` (B, N): the sample is at a fold (own or a segment);
    ``pairs`` (S, 2): the segments' end samples; ``segment`` (S, N): the segment folds at step k;
    ``probes``: probe points carried through the map."""

    sign: np.ndarray
    log_det: np.ndarray
    own: np.ndarray
    near: np.ndarray
    pairs: np.ndarray
    segment: np.ndarray
    probes: int


def neighbour_ranks(n: int, reach: float) -> np.ndarray:
    """The neighbour ranks a sample is joined to among ``n`` samples: 1, 2, 4, ... up to
    ``reach * n`` (at least the nearest one): segments at every scale from the nearest-neighbour
    distance to the radius holding the ``reach`` share of the samples nearest to it."""
    top = max(1, min(n - 1, int(reach * n)))
    return 2 ** np.arange(int(np.log2(top)) + 1)


def neighbour_pairs(z: torch.Tensor, ok: np.ndarray, reach: float) -> np.ndarray:
    """(S, 2) unordered pairs (i < j): each sample of ``ok`` with its neighbours of the ranks
    :func:`neighbour_ranks` among the samples of ``ok`` (Euclidean distance of the flattened
    states ``z`` (B, D))."""
    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    ranks = neighbour_ranks(len(idx), reach)
    zz = z[torch.as_tensor(idx, device=z.device)]
    dist = torch.cdist(zz, zz)
    dist.fill_diagonal_(float("inf"))
    order = dist.topk(int(ranks[-1]), dim=1, largest=False).indices.cpu().numpy()
    near = order[:, ranks - 1]
    i = np.repeat(idx, len(ranks))
    j = idx[near.ravel()]
    pairs = np.unique(np.sort(np.stack([i, j], 1), axis=1), axis=0)
    return pairs[pairs[:, 0] != pairs[:, 1]]


def probe_states(z0: torch.Tensor, pairs: np.ndarray, per_segment: int) -> torch.Tensor:
    """(S * per_segment, *state) points ``z_i + s (z_j - z_i)``, ``s = l / (per_segment + 1)``,
    l = 1 ... per_segment, segment by segment."""
    s = torch.arange(1, per_segment + 1, dtype=z0.dtype, device=z0.device) / (per_segment + 1)
    a = z0[torch.as_tensor(pairs[:, 0], device=z0.device)]
    b = z0[torch.as_tensor(pairs[:, 1], device=z0.device)]
    shape = (-1,) + (1,) * (z0.dim() - 1)
    pts = a[:, None] + s.reshape(1, *shape) * (b - a)[:, None]
    return pts.reshape(-1, *z0.shape[1:])


def fold_test(field, z0: torch.Tensor, points: torch.Tensor, solver, spans, finite: np.ndarray, *,
              reach: float = 0.125, per_segment: int = 4, max_probes: int = 8192, seed: int = 0,
              chunk: int = 256) -> FoldTest:
    """The fold test of the train map (module docstring) for the train points ``points`` (B, N + 1, D)
    from ``z0`` over ``spans`` (one per step) with ``solver``; ``finite``: samples whose train
    solve is finite (the others take no part)."""
    state_shape = tuple(z0.shape[1:])
    n = len(spans)
    sign, log_det = step_signs(field, points, state_shape, solver, spans, chunk)
    own = (sign <= 0) & finite[:, None]
    pairs = neighbour_pairs(points[:, 0], finite, reach)
    per_segment = max(int(per_segment), 0)
    if per_segment and len(pairs) * per_segment > max_probes:  # fewer probes per segment first,
        per_segment = max(1, max_probes // len(pairs))             # then fewer segments
        if len(pairs) > max_probes:
            keep = np.random.default_rng(seed).choice(len(pairs), max_probes, replace=False)
            pairs = pairs[np.sort(keep)]
    segment = own[pairs[:, 0]] | own[pairs[:, 1]] if len(pairs) else np.zeros((0, n), dtype=bool)
    probes = 0
    if per_segment and len(pairs):
        z_probe = probe_states(z0, pairs, per_segment)
        probes = z_probe.shape[0]
        p_points = train_points(field, z_probe, solver, spans)
        p_ok = torch.isfinite(p_points.flatten(1)).all(1).cpu().numpy()
        p_sign, _ = step_signs(field, p_points, state_shape, solver, spans, chunk)
        p_fold = (p_sign <= 0) & p_ok[:, None]
        segment = segment | p_fold.reshape(len(pairs), per_segment, n).any(1)
    near = own.copy()
    for end in (0, 1):  # a segment's fold counts for both its end samples
        np.logical_or.at(near, pairs[:, end], segment)
    return FoldTest(sign, log_det, own, near & finite[:, None], pairs, segment, probes)
