"""The adaptive integrator: torchdiffeq's embedded Runge-Kutta pairs with their error control.

Given ``steps`` instead of tolerances, the same method runs on a fixed grid with the error
control switched off (every step accepted, steps forced onto the grid): that is how its order of
convergence is checked, and it is a legitimate test configuration.
"""

from __future__ import annotations

import torch

from ..core.status import Status
from .base import Solver, VectorField
from .counted import CountedSteps
from .solution import Solution, SolveStats, finite_status


def integrate(solver: Solver, f: VectorField, z0: torch.Tensor, t_span: tuple[float, float], *,
              steps: int | None = None, rtol: float | None = None, atol: float | None = None,
              max_steps: int = 10_000, adjoint: bool = False) -> Solution:
    import torchdiffeq

    counted = CountedSteps(f)
    t = torch.tensor([float(t_span[0]), float(t_span[1])], dtype=z0.dtype, device=z0.device)
    options: dict = {"max_num_steps": int(max_steps)}
    if steps is not None:
        if rtol is not None or atol is not None:
            raise ValueError("give either steps or tolerances, not both")
        steps = int(steps)
        h = (float(t_span[1]) - float(t_span[0])) / steps
        grid = torch.linspace(float(t_span[0]), float(t_span[1]), steps + 1, dtype=z0.dtype)
        # Steps slightly above h, clipped back onto the grid by step_t; min_step forces
        # acceptance. The end point is on the grid, so no dense-output interpolation.
        h_cap = h * (1 + 1e-6)
        options.update(step_t=grid[1:], first_step=h_cap, min_step=h_cap, max_step=h_cap)
        rtol = atol = 1e30  # every step passes the error test; step_t clips steps to the grid
    else:
        if rtol is None and atol is None:
            raise ValueError(f"solver {solver.name!r} is adaptive: give rtol/atol or steps")
        rtol = atol if rtol is None else rtol
        atol = rtol if atol is None else atol
        # Land on both ends instead of stepping past t1 and returning the dense-output
        # interpolant there: torchdiffeq clips a step that would cross a ``step_t`` point onto
        # it, so z(t1) is the method's own solution (its interpolant at x = 1). The interpolant
        # is only 4th order: bosh3 and dopri8 lost orders of magnitude to it (docs/solvers.md).
        # t0 is listed for the adjoint, whose backward solve inherits these options and ends on
        # t0. Same NFE on the problems measured.
        options["step_t"] = t
    odeint = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
    try:
        z = odeint(counted, z0, t, method=solver.torchdiffeq_method, rtol=rtol, atol=atol,
                   options=options)[-1]
    except AssertionError as err:
        # torchdiffeq asserts on its step limit, on an underflowing step size and on a
        # non-finite state; our own step counters tell the first from the others.
        status = Status.MAX_STEPS if counted.attempted >= int(max_steps) else Status.NON_FINITE
        stats = SolveStats(counted.nfe, counted.accepted, counted.accepted, counted.rejected,
                           status, str(err).splitlines()[0][:200] if str(err) else status.message)
        return Solution(torch.full_like(z0, float("nan")), stats)
    stats = SolveStats(nfe=counted.nfe, steps=counted.accepted, accepted=counted.accepted,
                       rejected=counted.rejected, status=finite_status(z))
    return Solution(z, stats)
