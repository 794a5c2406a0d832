"""The built-in solvers, registered by :func:`register_all`."""

from __future__ import annotations

from ..registry import Registry
from . import tableau as tb
from .base import AdaptiveSolver, FixedStepSolver, Solver
from .exact import EXACT

SOLVERS: Registry[Solver] = Registry("solver")

_FIXED = [
    FixedStepSolver("euler", 1, 1, False, "explicit Euler", "euler", tb.EULER),
    FixedStepSolver("midpoint", 2, 2, False, "explicit midpoint rule", "midpoint", tb.MIDPOINT),
    FixedStepSolver("heun", 2, 2, False, "Heun's method (explicit trapezoidal)", "heun2", tb.HEUN),
    FixedStepSolver("rk4", 4, 4, False, "classical Runge-Kutta (Kutta 1901)", None, tb.RK4),
    FixedStepSolver("rk4_38", 4, 4, False, "Kutta's 3/8 rule (torchdiffeq's 'rk4')", "rk4",
                    tb.RK4_38),
]
# Stages counted as distinct f evaluations per attempted step (FSAL pairs reuse the last one).
_ADAPTIVE = [
    AdaptiveSolver("adaptive_heun", 2, 2, True, "Heun-Euler 2(1) pair, torchdiffeq",
                   "adaptive_heun"),
    AdaptiveSolver("fehlberg2", 2, 3, True, "Runge-Kutta-Fehlberg 2(1), torchdiffeq", "fehlberg2"),
    AdaptiveSolver("bosh3", 3, 4, True, "Bogacki-Shampine 3(2), FSAL, torchdiffeq", "bosh3"),
    AdaptiveSolver("dopri5", 5, 7, True, "Dormand-Prince 5(4), FSAL, torchdiffeq", "dopri5"),
    AdaptiveSolver("dopri8", 8, 14, True, "Dormand-Prince 8(7), torchdiffeq", "dopri8"),
]


def register_all() -> None:
    for solver in _FIXED + _ADAPTIVE + [EXACT]:
        if solver.name not in SOLVERS:
            SOLVERS.register(solver.name, solver, solver.description)
