"""``exact``: the reference row of a test grid, for vector fields whose flow is known in closed form.

Not a discretisation: it calls ``f.exact_flow(z0, t0, t1)`` and takes no steps and no tolerances.
A field without ``exact_flow`` (any learned network) gets a ``failed`` status, never an exception,
so a suite that tests such a model against ``exact`` still finishes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..status import Status
from .base import Solver, _finite_status
from .solution import Solution, SolveStats


@dataclass(frozen=True)
class ExactFlowSolver(Solver):
    """The closed-form flow map. ``order`` is 0 by convention: there is no step to converge in.

    ``gridless`` tells the suite config that a test entry names no steps or tolerances.
    """

    gridless: bool = True

    @property
    def description(self) -> str:
        return f"no steps, no tolerances; {self.reference}"

    def solve(self, f, z0, t_span, *, steps=None, rtol=None, atol=None, max_steps=10_000,
              adjoint=False) -> Solution:
        flow = getattr(f, "exact_flow", None)
        if flow is None:
            msg = f"{type(f).__name__} has no exact_flow: no closed-form reference for this field"
            return Solution(torch.full_like(z0, float("nan")),
                            SolveStats(status=Status.FAILED, message=msg))
        # adjoint and steps are irrelevant: autograd differentiates the closed form directly
        z = flow(z0, float(t_span[0]), float(t_span[1]))
        return Solution(z, SolveStats(nfe=0, steps=0, status=_finite_status(z)))


EXACT = ExactFlowSolver("exact", 0, 0, False, "closed-form flow map f.exact_flow (reference)", None)
