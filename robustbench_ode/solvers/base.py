"""Solver base: a frozen description of a method plus ``solve``.

Two kinds exist: :class:`FixedStepSolver` (a Butcher tableau run on a grid of equal steps) and
:class:`AdaptiveSolver` (torchdiffeq's embedded Runge-Kutta pairs with error control).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..status import Status
from .solution import Solution, SolveStats
from .tableau import ButcherTableau

VectorField = Callable[[torch.Tensor | float, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Solver:
    name: str
    order: int
    stages: int
    adaptive: bool
    reference: str
    # torchdiffeq's name for the same method, where it has one (used for the adjoint).
    torchdiffeq_method: str | None

    @property
    def description(self) -> str:
        kind = "adaptive" if self.adaptive else "fixed-step"
        stages = f"{self.stages} stage" + ("s" if self.stages != 1 else "")
        return f"order {self.order}, {stages}, {kind}; {self.reference}"

    def solve(self, f: VectorField, z0: torch.Tensor, t_span: tuple[float, float], *,
              steps: int | None = None, rtol: float | None = None, atol: float | None = None,
              max_steps: int = 10_000, adjoint: bool = False) -> Solution:
        raise NotImplementedError


class _Counted(nn.Module):
    """Wraps f to count evaluations. An ``nn.Module`` so that torchdiffeq's adjoint finds f's
    parameters through it."""

    def __init__(self, f: VectorField) -> None:
        super().__init__()
        self.f = f
        self.nfe = 0
        self.accepted = 0
        self.rejected = 0

    def forward(self, t, z):
        self.nfe += 1
        return self.f(t, z)


class _CountedSteps(_Counted):
    """Also counts accepted and rejected steps, through torchdiffeq's adaptive-step callbacks."""

    def callback_accept_step(self, t0, y0, dt) -> None:
        self.accepted += 1

    def callback_reject_step(self, t0, y0, dt) -> None:
        self.rejected += 1


def _finite_status(z: torch.Tensor) -> Status:
    return Status.OK if bool(torch.isfinite(z).all()) else Status.NON_FINITE


def _combine(z: torch.Tensor, ks: list[torch.Tensor], terms: list[tuple[int, float]]) -> torch.Tensor:
    """z + sum of alpha * ks[j] over ``terms``; z itself when there are none."""
    if not terms:
        return z
    (j, alpha), rest = terms[0], terms[1:]
    out = torch.add(z, ks[j], alpha=alpha)
    for j, alpha in rest:
        out.add_(ks[j], alpha=alpha)
    return out


@dataclass(frozen=True)
class FixedStepSolver(Solver):
    """An explicit Runge-Kutta method on N equal steps of (t1 - t0) / N.

    Hand-written rather than torchdiffeq's fixed-grid path: the loop is a few lines, takes
    exactly N steps with no shortened last step, avoids torchdiffeq's per-step overhead on the
    small models this benchmark trains by the thousand, and lets classical RK4 and Heun sit
    beside torchdiffeq's 3/8-rule "rk4".
    """

    tableau: ButcherTableau | None = None

    def solve(self, f, z0, t_span, *, steps=None, rtol=None, atol=None, max_steps=10_000,
              adjoint=False) -> Solution:
        if steps is None or int(steps) < 1:
            raise ValueError(f"solver {self.name!r} is fixed-step: give steps >= 1")
        if rtol is not None or atol is not None:
            raise ValueError(f"solver {self.name!r} is fixed-step: it takes no tolerances")
        steps = int(steps)
        if adjoint:
            return self._solve_adjoint(f, z0, t_span, steps)
        t0, t1 = float(t_span[0]), float(t_span[1])
        h = (t1 - t0) / steps
        tab = self.tableau
        assert tab is not None
        # Drop zero coefficients once and fold h into them, so Euler costs one f call and one
        # fused add per step. Each stage input and the update start with one out-of-place
        # ``torch.add(z, k, alpha=...)`` and accumulate further terms in place into that fresh
        # tensor: safe under autograd (add's backward needs neither its inputs nor its output)
        # and one allocation per combination instead of one per term.
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
        stats = SolveStats(nfe=steps * tab.stages, steps=steps, status=_finite_status(z))
        return Solution(z, stats)

    def _solve_adjoint(self, f, z0, t_span, steps) -> Solution:
        import torchdiffeq

        if self.torchdiffeq_method is None:
            raise ValueError(f"solver {self.name!r} has no torchdiffeq equivalent for the adjoint")
        counted = _Counted(f)
        # The grid handed to torchdiffeq's fixed-grid solver as its own (a step_size would be
        # rounded into N or N+1 steps); only the end point is an output, so the adjoint keeps one
        # state for the backward pass, not one per step. The adjoint solve runs the same grid
        # backwards.
        grid = torch.linspace(t_span[0], t_span[1], steps + 1, dtype=z0.dtype, device=z0.device)
        t = grid[[0, -1]]
        zs = torchdiffeq.odeint_adjoint(
            counted, z0, t, method=self.torchdiffeq_method,
            options={"grid_constructor": lambda _f, _y, ts: grid if ts[0] <= ts[-1] else grid.flip(0)})
        z = zs[-1]
        return Solution(z, SolveStats(nfe=counted.nfe, steps=steps, status=_finite_status(z)))


@dataclass(frozen=True)
class AdaptiveSolver(Solver):
    """An embedded Runge-Kutta pair from torchdiffeq, with its error control.

    Given ``steps`` instead of tolerances, the same method runs on a fixed grid with the error
    control switched off (every step accepted, steps forced onto the grid): that is how its
    order of convergence is checked, and it is a legitimate test configuration.
    """

    def solve(self, f, z0, t_span, *, steps=None, rtol=None, atol=None, max_steps=10_000,
              adjoint=False) -> Solution:
        import torchdiffeq

        counted = _CountedSteps(f)
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
                raise ValueError(f"solver {self.name!r} is adaptive: give rtol/atol or steps")
            rtol = atol if rtol is None else rtol
            atol = rtol if atol is None else atol
            # Land on both ends instead of stepping past t1 and returning the dense-output
            # interpolant there: torchdiffeq clips a step that would cross a ``step_t`` point
            # onto it, so z(t1) is the method's own solution (its interpolant at x = 1). The
            # interpolant is only 4th order: bosh3 and dopri8 lost orders of magnitude to it
            # (docs/solvers.md). t0 is listed for the adjoint, whose backward solve inherits
            # these options and ends on t0. Same NFE on the problems measured.
            options["step_t"] = t
        odeint = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
        try:
            z = odeint(counted, z0, t, method=self.torchdiffeq_method, rtol=rtol, atol=atol,
                       options=options)[-1]
        except (RuntimeError, AssertionError) as err:
            msg = str(err)
            if "max_num_steps" in msg:
                status = Status.MAX_STEPS
            elif "underflow" in msg or "nan" in msg.lower() or "inf" in msg.lower():
                status = Status.NON_FINITE
            else:
                raise
            stats = SolveStats(counted.nfe, counted.accepted, counted.accepted, counted.rejected,
                               status, msg.splitlines()[0][:200])
            return Solution(torch.full_like(z0, float("nan")), stats)
        stats = SolveStats(nfe=counted.nfe, steps=counted.accepted, accepted=counted.accepted,
                           rejected=counted.rejected, status=_finite_status(z))
        return Solution(z, stats)
