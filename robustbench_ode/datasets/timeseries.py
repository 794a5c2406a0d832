"""Time-series regression datasets: trajectories of a known 2-D ODE, generated from the seed.

A sample is an initial state ``x = y(t0)`` (shape (2,)) and the trajectory at the observation
times ``y = (y(t_1), ..., y(t_K))`` (shape (K, 2)); ``DataSplits.times`` holds ``t0 = 0, t_1, ...,
t_K`` and is shared by every sample of both splits. Initial states are drawn uniformly in a box
from :func:`~robustbench_ode.datasets.base.split_rng` (train and test independent), and the
trajectories come from one tight-tolerance solve: torchdiffeq's ``dopri8`` in float64 at
rtol = atol = 1e-10, with a max-norm error test so that each trajectory, not their average, is held
to the tolerance. Everything is CPU float64 arithmetic, so a seed gives the same tensors bit for bit.

- ``sampling: regular``: ``t_k = k t_end / K``. ``irregular``: ``K - 1`` uniform draws on
  (0, t_end), sorted, plus ``t_end`` itself (so every dataset covers the same horizon), drawn from
  the seed's own stream; one set of times for the whole dataset (per-trajectory times are not
  offered: a batch would then need one solve per sample).
- ``noise``: Gaussian noise of that standard deviation on the *training* targets only. The
  initial states are exact and the test targets are the clean trajectories, so the test error is
  the error against the true dynamics.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from . import params as p
from .base import DataSplits, split_rng
from .params import Sampling

# The generating solve. dopri8 at 1e-10 in float64 is far below any error a float32 model or a
# test solver reaches, so the targets are the true dynamics for every purpose here.
GENERATOR_METHOD, GENERATOR_TOL = "dopri8", 1e-10

Field2 = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _max_norm(x: torch.Tensor) -> torch.Tensor:
    # torchdiffeq's default RMS norm averages the error over every trajectory of the batch
    return x.abs().max()


def observation_times(seed: int, n_points: int, t_end: float, sampling: Sampling) -> np.ndarray:
    """``t0 = 0`` followed by the K observation times, strictly increasing (float64)."""
    if sampling == "regular":
        return np.linspace(0.0, t_end, n_points + 1)
    draws = np.sort(split_rng(seed, "times").uniform(0.0, t_end, n_points - 1))
    times = np.concatenate([[0.0], draws, [t_end]])
    if not (np.diff(times) > 0).all():  # two equal draws: probability 0 in float64, but say so
        raise ValueError(f"irregular times of seed {seed} repeat a value; use another seed")
    return times


def trajectories(field: Field2, y0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The states at ``times[1:]`` of dy/dt = field(t, y) from ``y0`` (N, d): shape (N, K, d)."""
    import torchdiffeq  # lazy, as the solvers do

    ys = torchdiffeq.odeint(field, torch.as_tensor(y0, dtype=torch.float64),
                            torch.as_tensor(times, dtype=torch.float64), method=GENERATOR_METHOD,
                            rtol=GENERATOR_TOL, atol=GENERATOR_TOL,
                            options={"norm": _max_norm, "max_num_steps": 1_000_000})
    return ys[1:].permute(1, 0, 2).numpy()


def _splits(seed: int, field: Field2, low: tuple[float, ...], high: tuple[float, ...],
            n_train: int, n_test: int, n_points: int, t_end: float, sampling: Sampling,
            noise: float) -> DataSplits:
    times = observation_times(seed, n_points, t_end, sampling)
    tensors = []
    for split, n in (("train", n_train), ("test", n_test)):
        rng = split_rng(seed, split)
        y0 = rng.uniform(low, high, (n, len(low)))
        y = trajectories(field, y0, times)
        if split == "train" and noise > 0:
            y = y + noise * rng.standard_normal(y.shape)
        tensors += [torch.as_tensor(y0, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)]
    return DataSplits(*tensors, n_classes=0, task="regression",
                      times=torch.as_tensor(times, dtype=torch.float64))


def lotka_volterra_field(alpha: float, beta: float, gamma: float, delta: float) -> Field2:
    """Prey x, predator y: dx/dt = alpha x - beta x y, dy/dt = delta x y - gamma y."""

    def f(t, z):
        x, y = z[..., 0], z[..., 1]
        return torch.stack([alpha * x - beta * x * y, delta * x * y - gamma * y], -1)

    return f


def van_der_pol_field(mu: float) -> Field2:
    """x'' - mu (1 - x^2) x' + x = 0 as a first-order system in (x, x')."""

    def f(t, z):
        x, v = z[..., 0], z[..., 1]
        return torch.stack([v, mu * (1.0 - x * x) * v - x], -1)

    return f


def lotka_volterra(seed: int, **params) -> DataSplits:
    """Predator-prey trajectories; the defaults are the classic alpha = 1.5, beta = 1, gamma = 3,
    delta = 1 (equilibrium (3, 1.5), period about 3 near it). Initial populations uniform in
    [1, 5] x [0.5, 3]: positive and around the equilibrium, so every orbit stays in (0.2, 8)."""
    q = p.LotkaVolterraParams(**params)
    return _splits(seed, lotka_volterra_field(q.alpha, q.beta, q.gamma, q.delta), (1.0, 0.5),
                   (5.0, 3.0), q.n_train, q.n_test, q.n_points, q.t_end, q.sampling, q.noise)


def van_der_pol(seed: int, **params) -> DataSplits:
    """Van der Pol oscillator trajectories in (x, x'); initial states uniform in [-2.5, 2.5]^2,
    inside and outside the limit cycle (amplitude about 2). ``mu = 0`` is the harmonic oscillator."""
    q = p.VanDerPolParams(**params)
    return _splits(seed, van_der_pol_field(q.mu), (-2.5, -2.5), (2.5, 2.5), q.n_train, q.n_test,
                   q.n_points, q.t_end, q.sampling, q.noise)

