"""Three minima: a damped particle in a polynomial potential with three wells, labelled by the well
it settles in (a toy of the released work of Ott et al.; the construction here is ours).

The potential is V(x) = x^2 (x^2 - 1)^2, with minima at x = -1, 0, +1 (all V = 0) and maxima at
x = +-1/sqrt(3); the particle moves by x'' = -V'(x) - gamma x'. A sample is an initial state
(x0, v0), uniform in a box, and its label the minimum nearest to x(t_end) (class 0: -1, 1: 0,
2: +1). The final states come from the same tight solve as the time-series datasets (dopri8 at
1e-10 in float64), so a seed gives the same tensors bit for bit. The class boundaries in the
(x0, v0) plane are the interleaved spirals of the wells' basins of attraction.
"""

from __future__ import annotations

import numpy as np
import torch

from . import params as p
from .base import DataSplits, split_rng
from .timeseries import trajectories

WELLS = (-1.0, 0.0, 1.0)


def minima_field(gamma: float):
    """(x, v) -> (v, -V'(x) - gamma v) for V(x) = x^2 (x^2 - 1)^2."""

    def f(t, z):
        x, v = z[..., 0], z[..., 1]
        dv = -2.0 * x * (x * x - 1.0) * (3.0 * x * x - 1.0) - gamma * v
        return torch.stack([v, dv], -1)

    return f


def minima(seed: int, **params) -> DataSplits:
    """Initial states uniform in [-x_max, x_max] x [-v_max, v_max], labelled by their well."""
    q = p.MinimaParams(**params)
    field = minima_field(q.damping)
    times = np.array([0.0, q.t_end])
    tensors = []
    for split, n in (("train", q.n_train), ("test", q.n_test)):
        rng = split_rng(seed, split)
        y0 = rng.uniform((-q.x_max, -q.v_max), (q.x_max, q.v_max), (n, 2))
        final = trajectories(field, y0, times)[:, -1, 0]
        labels = np.abs(final[:, None] - np.asarray(WELLS)[None, :]).argmin(1)
        tensors += [torch.as_tensor(y0, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.long)]
    return DataSplits(*tensors, n_classes=len(WELLS))
