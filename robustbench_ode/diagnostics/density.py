"""What a trained flow's density and samples look like under a solve: a log-density grid on the
2-D window, the mass that grid holds, and an energy distance between generated and held-out
samples. Pure functions of a model, a :class:`~robustbench_ode.models.spec.SolveSpec` and
tensors; the density task's figures and sample metrics (docs/cnf.md, phase 2) are built on them.

The window is :data:`~robustbench_ode.datasets.density.WINDOW` squared, which every 2-D toy set
lies in. A solver-robust flow has a density grid that integrates to about 1 (the base Gaussian's
mass that the flow carries into the window) under every accurate solver, and samples whose
energy distance to the held-out set does not grow when the sampling solve is refined.
"""

from __future__ import annotations

import torch

from ..datasets.density import WINDOW
from ..models.cnf import CNF
from ..models.spec import SolveSpec
from ..solvers import SolveStats


def window_grid(n: int, window: tuple[float, float] = WINDOW) -> tuple[torch.Tensor, float]:
    """The centres (n * n, 2) of an n x n grid of equal cells on window x window, row-major with
    y the slow index (so ``values.reshape(n, n)[i, j]`` is at y_i, x_j), and one cell's area."""
    lo, hi = float(window[0]), float(window[1])
    width = (hi - lo) / n
    centres = lo + width * (torch.arange(n, dtype=torch.float64) + 0.5)
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], 1), width * width


@torch.no_grad()
def log_density_grid(model: CNF, spec: SolveSpec, n: int = 64, window: tuple[float, float] = WINDOW,
                     batch_size: int = 4096, device: str = "cpu"
                     ) -> tuple[torch.Tensor, float, SolveStats]:
    """log p(x) (n, n) of a 2-D flow on the grid of :func:`window_grid` under ``spec``, the cell
    area, and the solves' stats summed (the worst status wins; a failed batch leaves NaN)."""
    points, area = window_grid(n, window)
    was_training = model.training
    model.eval()
    stats, values = SolveStats(), []
    dtype = next(model.parameters()).dtype  # the grid in the model's own precision
    try:
        for chunk in points.split(batch_size):
            s, st = model.final_state(chunk.to(device=device, dtype=dtype), spec)
            stats = stats.add(st)
            values.append(model.log_likelihood(s).double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(values).reshape(n, n), area, stats


def window_mass(log_density: torch.Tensor, area: float) -> float:
    """The midpoint rule's integral of exp(log p) over the grid's cells."""
    return float(torch.exp(log_density.double()).sum() * area)


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """The energy distance 2 E||X - Y|| - E||X - X'|| - E||Y - Y'|| (Szekely and Rizzo) between
    the sample sets x (n, D) and y (m, D), the within-set means over distinct pairs (unbiased
    U-statistics): 0 in expectation for samples of one distribution, positive otherwise. Written
    by hand with ``torch.cdist``: scipy's ``energy_distance`` is for 1-D samples only."""
    x, y = x.double().flatten(1), y.double().flatten(1)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"energy distance needs at least 2 samples per set, got {n} and {m}")
    between = torch.cdist(x, y).mean()
    within_x = torch.cdist(x, x).sum() / (n * (n - 1))
    within_y = torch.cdist(y, y).sum() / (m * (m - 1))
    return float(2 * between - within_x - within_y)


def sample_energy_distance(model: CNF, spec: SolveSpec, held_out: torch.Tensor, n: int | None = None,
                           seed: int = 0, device: str = "cpu") -> tuple[float, SolveStats]:
    """The energy distance between ``n`` samples of the flow under ``spec`` (solved backwards
    from base draws of ``seed``; default: as many as held out) and the held-out samples; NaN
    when the sampling solve failed."""
    samples, stats = model.sample(n or len(held_out), spec, torch.Generator().manual_seed(seed), device)
    if not torch.isfinite(samples).all():
        return float("nan"), stats
    return energy_distance(samples.cpu(), held_out.cpu()), stats
