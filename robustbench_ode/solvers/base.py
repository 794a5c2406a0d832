"""Solver base: a frozen description of a method plus ``solve``.

A :class:`Solver` is data (name, order, stages, kind, tableau, backend) and importable without
torch; its ``integrator`` names the function that runs it, loaded on the first solve. Three
kinds exist (:class:`Kind`): fixed-step tableaux run on a grid of equal steps
(:mod:`.fixed`), adaptive embedded pairs with error control (:mod:`.adaptive`, torchdiffeq;
:mod:`.torchode_backend`, torchode) and gridless references such as the closed-form flow
(:mod:`.exact`).

Metadata the harness and the config read instead of probing the integrator: ``adjoint`` (the
backend has an adjoint gradient), ``controls`` (the step-size controls an adaptive solve offers:
``batch``, one step for the whole batch, and for some backends ``per_sample``), ``requires``
(an optional module the integrator needs; :meth:`Solver.missing` says whether it is installed
without importing it) and the check solver step and tolerance adaptation compare a train
solve with (``check_solver``, ``check_tol_ratio``; training/adaptation.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..core.registry import load
from .solution import Solution
from .tableau import ButcherTableau

if TYPE_CHECKING:
    import torch

VectorField = Callable[[Any, Any], Any]  # f(t, z) -> dz/dt on torch tensors


class Kind(str, Enum):
    FIXED = "fixed"  # N equal steps; given ``steps``
    ADAPTIVE = "adaptive"  # error control; given tolerances (or ``steps`` for a fixed grid)
    REFERENCE = "reference"  # gridless (no steps, no tolerances); a test reference only


@dataclass(frozen=True)
class Solver:
    name: str
    order: int
    stages: int
    kind: Kind
    reference: str
    # torchdiffeq's name for the same method, where it has one (the adjoint and adaptive pairs).
    torchdiffeq_method: str | None = None
    tableau: ButcherTableau | None = None
    backend: str = "robustbench_ode"  # who implements the method: robustbench_ode, torchdiffeq, ...
    integrator: str = "robustbench_ode.solvers.fixed:integrate"  # import path, loaded on first use
    # Whether the backend offers an adjoint gradient; None: torchdiffeq's, where it has the method.
    adjoint: bool | None = None
    # Step-size controls of an adaptive solve; an integrator offering more than batch takes ``control``.
    controls: tuple[str, ...] = ("batch",)
    requires: str | None = None  # an optional module the integrator imports (e.g. "torchode")
    method: str | None = None  # the backend's own name for the method (e.g. torchode's stepper class)
    # The more accurate solver a train solve with this one is checked against during adaptation
    # (Ott et al. 2021): a higher order at the same steps or, where none is registered, the same
    # order at finer steps; an adaptive one at ``check_tol_ratio`` x its tolerance. None: rk4 for
    # a fixed-step solver, dopri5 for an adaptive one.
    check_solver: str | None = None
    check_tol_ratio: float = 0.1

    def __post_init__(self) -> None:
        if self.adjoint is None:
            object.__setattr__(self, "adjoint", self.torchdiffeq_method is not None)
        if self.check_solver is None and self.kind is not Kind.REFERENCE:
            object.__setattr__(self, "check_solver", "dopri5" if self.kind is Kind.ADAPTIVE else "rk4")

    @property
    def adaptive(self) -> bool:
        return self.kind is Kind.ADAPTIVE

    @property
    def gridless(self) -> bool:
        return self.kind is Kind.REFERENCE

    def missing(self) -> str | None:
        """None when the integrator can run here; else a one-line install hint (the optional
        module is looked up, not imported)."""
        if self.requires is None:
            return None
        try:
            found = importlib.util.find_spec(self.requires) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return None
        return (f"solver {self.name!r} needs {self.requires}, which is not installed: "
                f"pip install {self.requires} (or the package's [{self.requires}] extra)")

    @property
    def description(self) -> str:
        if self.gridless:
            return f"no steps, no tolerances; {self.reference}"
        kind = "adaptive" if self.adaptive else "fixed-step"
        stages = f"{self.stages} stage" + ("s" if self.stages != 1 else "")
        extras = [f"{' or '.join(self.controls)} step control"] if len(self.controls) > 1 else []
        extras += ["adjoint"] if self.adjoint else []
        return ", ".join([f"order {self.order}", stages, kind, *extras]) + f"; {self.reference}"

    def solve(self, f: VectorField, z0: torch.Tensor, t_span: tuple[float, float], *,
              steps: int | None = None, rtol: float | None = None, atol: float | None = None,
              max_steps: int = 10_000, adjoint: bool = False, control: str = "batch") -> Solution:
        """Run the integrator. ``control`` must be one of :attr:`controls`; it is passed on only
        to integrators that offer more than batch control (the extension contract stays
        ``integrate(solver, f, z0, t_span, *, steps, rtol, atol, max_steps, adjoint)``)."""
        if control not in self.controls:
            raise ValueError(f"solver {self.name!r} ({self.backend}) supports only "
                             f"{' and '.join(self.controls)} step control, not {control!r}")
        why = self.missing()
        if why is not None:
            raise ImportError(why)
        extra = {"control": control} if len(self.controls) > 1 else {}
        return load(self.integrator)(self, f, z0, t_span, steps=steps, rtol=rtol, atol=atol,
                                     max_steps=max_steps, adjoint=adjoint, **extra)
