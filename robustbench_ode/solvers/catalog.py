"""The built-in solvers, registered in :data:`SOLVERS` when the package is imported.

A solver is data (:class:`~.base.Solver`): adding an explicit Runge-Kutta method is a tableau in
:mod:`.tableau` and one entry here.

The torchode solvers (``tsit5``, ``dopri5_torchode``, ``heun_torchode``) are registered whether or
not torchode is installed: their metadata needs neither torch nor torchode, so ``list solvers``
shows them (backend ``torchode``) and suites validate the same everywhere. Where torchode is
missing, a suite that names one is refused at validation (one line, exit 2) and a direct solve
raises an ImportError with the install hint (a ``failed`` row in a table).
"""

from __future__ import annotations

from ..core.registry import Registry
from . import tableau as tb
from .base import Kind, Solver

SOLVERS: Registry[Solver] = Registry("solver")

_TD = "torchdiffeq"
_ADAPTIVE = "robustbench_ode.solvers.adaptive:integrate"
_TO = "torchode"
_TORCHODE = "robustbench_ode.solvers.torchode_backend:integrate"
_BOTH = ("batch", "per_sample")

BUILTIN = [
    Solver("euler", 1, 1, Kind.FIXED, "explicit Euler", "euler", tb.EULER, check_solver="midpoint"),
    Solver("midpoint", 2, 2, Kind.FIXED, "explicit midpoint rule", "midpoint", tb.MIDPOINT),
    Solver("heun", 2, 2, Kind.FIXED, "Heun's method (explicit trapezoidal)", "heun2", tb.HEUN),
    Solver("rk4", 4, 4, Kind.FIXED, "classical Runge-Kutta (Kutta 1901)", None, tb.RK4),
    Solver("rk4_38", 4, 4, Kind.FIXED, "Kutta's 3/8 rule (torchdiffeq's 'rk4')", "rk4", tb.RK4_38),
    # Stages counted as distinct f evaluations per attempted step (FSAL pairs reuse the last one).
    # torchdiffeq's "adaptive_heun" is not Heun-Euler: its solver reuses the last stage as the next
    # step's first (FSAL) although Heun's tableau lacks that property (the last stage is f at the
    # Euler predictor, not at the solution), so each step costs 1 new evaluation and starts from a
    # wrong slope (issue 27; docs/solvers.md). Registered under its own name as what it computes;
    # heun_torchode is the real Heun-Euler pair.
    Solver("adaptive_heun", 2, 1, Kind.ADAPTIVE,
           "torchdiffeq's adaptive_heun: Heun-Euler tableau with an invalid FSAL reuse (1 f per step)",
           "adaptive_heun", backend=_TD, integrator=_ADAPTIVE),
    Solver("fehlberg2", 2, 3, Kind.ADAPTIVE, "Runge-Kutta-Fehlberg 2(1)", "fehlberg2",
           backend=_TD, integrator=_ADAPTIVE, check_tol_ratio=0.2),
    Solver("bosh3", 3, 4, Kind.ADAPTIVE, "Bogacki-Shampine 3(2), FSAL", "bosh3",
           backend=_TD, integrator=_ADAPTIVE),
    Solver("dopri5", 5, 7, Kind.ADAPTIVE, "Dormand-Prince 5(4), FSAL", "dopri5",
           backend=_TD, integrator=_ADAPTIVE),
    Solver("dopri8", 8, 14, Kind.ADAPTIVE, "Dormand-Prince 8(7)", "dopri8",
           backend=_TD, integrator=_ADAPTIVE),
    # torchode (Lienen & Guennemann 2022): batch or per-sample step control, backsolve adjoints.
    Solver("tsit5", 5, 7, Kind.ADAPTIVE, "Tsitouras 5(4), FSAL", backend=_TO, integrator=_TORCHODE,
           adjoint=True, controls=_BOTH, requires=_TO, method="Tsit5"),
    Solver("dopri5_torchode", 5, 7, Kind.ADAPTIVE, "Dormand-Prince 5(4), FSAL", backend=_TO,
           integrator=_TORCHODE, adjoint=True, controls=_BOTH, requires=_TO, method="Dopri5"),
    Solver("heun_torchode", 2, 2, Kind.ADAPTIVE, "Heun-Euler 2(1) pair", backend=_TO,
           integrator=_TORCHODE, adjoint=True, controls=_BOTH, requires=_TO, method="Heun"),
    # order 0 by convention: there is no step to converge in
    Solver("exact", 0, 0, Kind.REFERENCE, "closed-form flow map f.exact_flow (reference)",
           integrator="robustbench_ode.solvers.exact:integrate"),
]


def register_all() -> None:
    for solver in BUILTIN:
        if solver.name not in SOLVERS:
            SOLVERS.register(solver.name, solver, solver.description, meta=solver)
