"""The fixed-step integrator: an explicit Runge-Kutta tableau on N equal steps of (t1 - t0) / N.

Hand-written rather than torchdiffeq's fixed-grid path: the loop is a few lines, takes exactly N
steps with no shortened last step, avoids torchdiffeq's per-step overhead on the small models
this benchmark trains by the thousand, and lets classical RK4 and Heun sit beside torchdiffeq's
3/8-rule "rk4". The adjoint of a fixed-step solve is torchdiffeq's, on the same grid.
"""

from __future__ import annotations

import torch

from .base import Solver, VectorField
from .counted import Counted
from .solution import Solution, SolveStats, finite_status


def _combine(z: torch.Tensor, ks: list[torch.Tensor], terms: list[tuple[int, float]]) -> torch.Tensor:
    """z + sum of alpha * ks[j] over ``terms``; z itself when there are none."""
    if not terms:
        return z
    (j, alpha), rest = terms[0], terms[1:]
    out = torch.add(z, ks[j], alpha=alpha)
    for j, alpha in rest:
        out.add_(ks[j], alpha=alpha)
    return out


def integrate(solver: Solver, f: VectorField, z0: torch.Tensor, t_span: tuple[float, float], *,
              steps: int | None = None, rtol: float | None = None, atol: float | None = None,
              max_steps: int = 10_000, adjoint: bool = False) -> Solution:
    if steps is None or int(steps) < 1:
        raise ValueError(f"solver {solver.name!r} is fixed-step: give steps >= 1")
    if rtol is not None or atol is not None:
        raise ValueError(f"solver {solver.name!r} is fixed-step: it takes no tolerances")
    steps = int(steps)
    if adjoint:
        return _adjoint(solver, f, z0, t_span, steps)
    t0, t1 = float(t_span[0]), float(t_span[1])
    h = (t1 - t0) / steps
    tab = solver.tableau
    assert tab is not None
    # Drop zero coefficients once and fold h into them, so Euler costs one f call and one fused
    # add per step. Each stage input and the update start with one out-of-place
    # ``torch.add(z, k, alpha=...)`` and accumulate further terms in place into that fresh tensor:
    # safe under autograd (add's backward needs neither its inputs nor its output) and one
    # allocation per combination instead of one per term.
    rows = [[(j, h * aij) for j, aij in enumerate(row) if aij != 0.0] for row in tab.a]
    weights = [(i, h * bi) for i, bi in enumerate(tab.b) if bi != 0.0]
    nodes = [ci * h for ci in tab.c]
    z = z0
    for n in range(steps):
        t = t0 + n * h  # not accumulated: no drift in t over many steps
        ks: list[torch.Tensor] = []
        for i in range(tab.stages):
            ks.append(f(t + nodes[i], _combine(z, ks, rows[i])))
        z = _combine(z, ks, weights)
    return Solution(z, SolveStats(nfe=steps * tab.stages, steps=steps, status=finite_status(z)))


def _adjoint(solver: Solver, f: VectorField, z0: torch.Tensor, t_span: tuple[float, float],
             steps: int) -> Solution:
    import torchdiffeq

    if solver.torchdiffeq_method is None:
        raise ValueError(f"solver {solver.name!r} has no torchdiffeq equivalent for the adjoint")
    counted = Counted(f)
    # The grid handed to torchdiffeq's fixed-grid solver as its own (a step_size would be rounded
    # into N or N+1 steps); only the end point is an output, so the adjoint keeps one state for
    # the backward pass, not one per step. The adjoint solve runs the same grid backwards.
    grid = torch.linspace(t_span[0], t_span[1], steps + 1, dtype=z0.dtype, device=z0.device)
    t = grid[[0, -1]]
    zs = torchdiffeq.odeint_adjoint(
        counted, z0, t, method=solver.torchdiffeq_method,
        options={"grid_constructor": lambda _f, _y, ts: grid if ts[0] <= ts[-1] else grid.flip(0)})
    z = zs[-1]
    return Solution(z, SolveStats(nfe=counted.nfe, steps=steps, status=finite_status(z)))
