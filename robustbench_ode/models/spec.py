"""How to run an ODE block: a solver and either ``steps`` or tolerances (plain values, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from ..solvers import SOLVERS


@dataclass(frozen=True)
class SolveSpec:
    """One way to run the ODE block: a solver and either ``steps`` or tolerances."""

    solver: str
    steps: int | None = None
    rtol: float | None = None
    atol: float | None = None
    max_steps: int = 10_000
    adjoint: bool = False
    control: str = "batch"  # step-size control of an adaptive solve: batch or per_sample

    @property
    def adaptive(self) -> bool:
        return SOLVERS.get(self.solver).adaptive and self.steps is None

    @property
    def tol(self) -> float | None:
        return self.rtol

    def label(self) -> str:
        if self.steps is None and self.rtol is None:  # a gridless reference such as exact
            return self.solver
        if self.steps is not None:
            return f"{self.solver}@{self.steps}"
        control = "" if self.control == "batch" else f"/{self.control}"
        return f"{self.solver}@tol{self.rtol:g}{control}"
