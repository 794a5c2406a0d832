"""``exact``: the reference row of a test grid, for vector fields whose flow is known in closed form.

Not a discretisation: it calls ``f.exact_flow(z0, t0, t1)`` and takes no steps and no tolerances.
A field without ``exact_flow`` (any learned network) gets a ``failed`` status, never an exception,
so a suite that tests such a model against ``exact`` still finishes.
"""

from __future__ import annotations

import torch

from ..core.status import Status
from .base import Solver, VectorField
from .solution import Solution, SolveStats, finite_status


def integrate(solver: Solver, f: VectorField, z0: torch.Tensor, t_span: tuple[float, float], *,
              steps: int | None = None, rtol: float | None = None, atol: float | None = None,
              max_steps: int = 10_000, adjoint: bool = False) -> Solution:
    flow = getattr(f, "exact_flow", None)  # the field's own optional method, part of its interface
    if flow is None:
        msg = f"{type(f).__name__} has no exact_flow: no closed-form reference for this field"
        return Solution(torch.full_like(z0, float("nan")), SolveStats(status=Status.FAILED, message=msg))
    # adjoint and steps are irrelevant: autograd differentiates the closed form directly
    z = flow(z0, float(t_span[0]), float(t_span[1]))
    return Solution(z, SolveStats(nfe=0, steps=0, status=finite_status(z)))
