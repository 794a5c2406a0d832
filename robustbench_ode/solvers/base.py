"""Solver base: a frozen description of a method plus ``solve``.

A :class:`Solver` is data (name, order, stages, kind, tableau, backend) and importable without
torch; its ``integrator`` names the function that runs it, loaded on the first solve. Three
kinds exist (:class:`Kind`): fixed-step tableaux run on a grid of equal steps
(:mod:`.fixed`), adaptive embedded pairs with error control (:mod:`.adaptive`, torchdiffeq) and
gridless references such as the closed-form flow (:mod:`.exact`).
"""

from __future__ import annotations

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

    @property
    def adaptive(self) -> bool:
        return self.kind is Kind.ADAPTIVE

    @property
    def gridless(self) -> bool:
        return self.kind is Kind.REFERENCE

    @property
    def description(self) -> str:
        if self.gridless:
            return f"no steps, no tolerances; {self.reference}"
        kind = "adaptive" if self.adaptive else "fixed-step"
        stages = f"{self.stages} stage" + ("s" if self.stages != 1 else "")
        return f"order {self.order}, {stages}, {kind}; {self.reference} [{self.backend}]"

    def solve(self, f: VectorField, z0: torch.Tensor, t_span: tuple[float, float], *,
              steps: int | None = None, rtol: float | None = None, atol: float | None = None,
              max_steps: int = 10_000, adjoint: bool = False) -> Solution:
        return load(self.integrator)(self, f, z0, t_span, steps=steps, rtol=rtol, atol=atol,
                                     max_steps=max_steps, adjoint=adjoint)
