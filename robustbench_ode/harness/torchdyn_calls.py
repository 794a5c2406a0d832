"""torchdyn under solver substitution (:mod:`.substitution`), where the optional ``torchdyn`` extra
is installed and already imported (this module imports torchdyn; :mod:`.substitution` imports it
only where ``torchdyn`` is in ``sys.modules``: a model holding a ``NeuralODE`` has imported it, and
torchdyn's import takes seconds that no other benchmark should pay).

Interception at torchdyn's dispatch: every solve of a ``NeuralODE`` (and of any torchdyn
``ODEProblem``) runs ``ODEProblem.odeint(self, x, t_span, save_at, args)``, whatever sensitivity
(autograd or adjoint) it was built with; ``NeuralODE.forward`` calls it through
``ODEProblem.forward``. While a substitution is open, :func:`install` wraps that method (and the
substitution takes it back on exit, also on an exception): a call the model makes (in the block's
thread, not from this package's code, not in a backward pass) is solved with the spec over each
interval of ``t_span`` (:func:`~.odeint_calls.solve_intervals`, as odeint's ``t``), the vector
field called as torchdyn calls it (``vf(t, x)``, t a 0-dim tensor of x's dtype; ``vf(t, x, args)``
where args are given). It returns
what torchdyn returns, ``(t_span, solution)`` with the solution ``(len(t_span), *x.shape)``.

Recorded (:class:`DynCall`): the solver's class name and the problem's ``atol``/``rtol``: a
fixed-step solver takes steps of ``t_span[1] - t_span[0]`` over the span, so the train
configuration is ``ceil(span / (t_span[1] - t_span[0]))`` steps of its method (``len(t_span) - 1``
for an evenly spaced one) (torchdyn's ``Euler``, ``Midpoint``, ``RungeKutta4`` (the classical one) are
this package's ``euler``, ``midpoint``, ``rk4``); an adaptive one (``DormandPrince45``,
``Tsitouras45``: ``dopri5``, ``tsit5``) its tolerances. Refused with a one-line ``ValueError``
(prefix ``substituted NeuralODE:``): ``save_at`` (torchdyn's own output-time selection), a state
that is not one floating tensor, a ``t_span`` that is not strictly monotone or requires gradient,
a solve nested in a substituted field.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torchdyn.core.problems as problems  # the optional dependency: imported only where installed
from torch import nn

from ..models.fields import prepared
from ..models.spec import SolveSpec
from .odeint_calls import (
    ClassAttributes,
    OdeintCall,
    Patch,
    Probe,
    check_times,
    from_package,
    graph_task_id,
    patch,
    refuse,
)

DYN_PREFIX = "substituted NeuralODE: "
# torchdyn's solver classes -> this package's solvers (torchdyn's RungeKutta4 is the classical rk4)
METHODS = {"Euler": "euler", "Midpoint": "midpoint", "RungeKutta4": "rk4", "DormandPrince45": "dopri5",
           "Tsitouras45": "tsit5"}
ADAPTIVE = frozenset({"DormandPrince45", "Tsitouras45"})


def dyn_refuse(message: str) -> ValueError:
    return refuse(message, DYN_PREFIX)


@dataclass
class DynCall(OdeintCall):
    """One substituted ``ODEProblem.odeint`` call (``entry`` "NeuralODE"): ``method`` is torchdyn's
    solver class name, ``rtol``/``atol`` the problem's."""

    def train_spec(self) -> SolveSpec:
        """The configuration the call asked for (module docstring); ValueError without an equivalent."""
        name = METHODS.get(self.method or "")
        if name is None:
            raise ValueError(f"torchdyn solver {self.method!r} has no equivalent among this package's "
                             f"solvers ({', '.join(METHODS)} have)")
        if self.method in ADAPTIVE:
            return SolveSpec(name, rtol=float(self.rtol), atol=float(self.atol))
        span, first = abs(self.t[-1] - self.t[0]), abs(self.t[1] - self.t[0])
        return SolveSpec(name, steps=max(1, math.ceil(span / first - 1e-9)))  # torchdyn's dt: the first


class DynField(nn.Module):
    """torchdyn's vector field as the package's solvers call it: ``vf(t, x, args)`` with t a 0-dim
    tensor of x's dtype; while it runs, a solve it starts is the model's again (refused)."""

    def __init__(self, probe: Probe, vf: Callable, args: Any) -> None:
        super().__init__()
        self.probe, self.vf, self.args = probe, vf, args

    def forward(self, t, z):
        t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
        with self.probe.model_code():  # torchdyn's steppers call f(t, x); args only where given
            return self.vf(t, z, self.args) if self.args else self.vf(t, z)


def install(probe: Probe, patches: list[Patch]) -> None:
    """Wrap ``ODEProblem.odeint`` (module docstring); appended to ``patches``."""
    patch(patches, ClassAttributes(problems.ODEProblem), "odeint",
          lambda original: dispatch(probe, original))


def dispatch(probe: Probe, odeint: Callable) -> Callable:
    """``ODEProblem.odeint``, substituting the model's solves."""

    @functools.wraps(odeint)
    def dispatched(self, x, t_span, save_at=(), args={}):  # noqa: B006 - torchdyn's own signature
        caller = sys._getframe(1)
        if not probe.intercepts() or graph_task_id() >= 0 or from_package(caller):
            with probe.pass_through():
                return odeint(self, x, t_span, save_at, args)
        return substitute(probe, self, x, t_span, save_at, args)

    return dispatched


def substitute(probe: Probe, problem: Any, x: Any, t_span: Any, save_at: Any, args: Any):
    """One model solve: checked, solved with the probe's spec, recorded, returned as torchdyn's."""
    probe.admit("NeuralODE", DYN_PREFIX)
    if save_at is not None and len(save_at):
        raise dyn_refuse("save_at (torchdyn's own choice of output times) is not supported: pass the "
                         "times you need as t_span")
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise dyn_refuse(f"the state must be one floating tensor, got {type(x).__name__}")
    times = check_times(t_span, DYN_PREFIX, "t_span")
    if probe.spec.adjoint and not isinstance(problem.vf, nn.Module):
        raise dyn_refuse("spec.adjoint needs the vector field to be an nn.Module")
    fld = DynField(probe, problem.vf, args)
    with probe.pass_through(), prepared(problem.vf, x):
        sol, stats, _ = probe.solve_intervals(fld, x, times)
    probe.record(DynCall("NeuralODE", type(problem.solver).__name__, {}, problem.rtol, problem.atol, times,
                         t_span.dtype, stats, sol.detach(), field=fld))
    return t_span, sol
