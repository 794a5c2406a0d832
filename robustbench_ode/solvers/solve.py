"""The public solve function: one call, any registered solver, counters included."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import VectorField
from .catalog import SOLVERS
from .solution import Solution

if TYPE_CHECKING:
    import torch


def solve(f: VectorField, z0: torch.Tensor, solver: str = "dopri5", *, steps: int | None = None,
          rtol: float | None = None, atol: float | None = None,
          t_span: tuple[float, float] = (0.0, 1.0), max_steps: int = 10_000,
          adjoint: bool = False, control: str = "batch") -> Solution:
    """Integrate dz/dt = f(t, z) from ``t_span[0]`` to ``t_span[1]`` and return the final state.

    Fixed-step solvers take ``steps``: exactly that many equal steps. Adaptive solvers take
    ``rtol``/``atol`` (one given alone is used for both), or ``steps`` to run the same method on a
    fixed grid with error control off. ``f`` receives ``t`` as a float (fixed-step) or a 0-dim
    tensor (adaptive). The returned :class:`~robustbench_ode.solvers.Solution` holds ``z`` and
    ``stats`` (``nfe``, ``steps``, ``accepted``, ``rejected``, ``status``). A solve that ends in
    NaN/inf or hits ``max_steps`` returns a status, not an exception.

    ``control``: the step-size control of an adaptive solve, ``batch`` (one step for the whole
    batch, every backend) or ``per_sample`` (one step size per sample, where the solver's
    ``controls`` offer it: the torchode solvers); anything else is a one-line ValueError.
    """
    return SOLVERS.get(solver).solve(f, z0, t_span, steps=steps, rtol=rtol, atol=atol,
                                     max_steps=max_steps, adjoint=adjoint, control=control)
