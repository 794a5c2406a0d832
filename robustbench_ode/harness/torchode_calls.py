"""torchode under solver substitution (:mod:`.substitution`), where the optional ``torchode`` extra
is installed (this module imports torchode; :mod:`.substitution` imports it only where torchode is
found).

Interception at torchode's dispatch: every torchode solve runs ``solve`` of one of its solver
classes (``AutoDiffAdjoint``, ``BacksolveAdjoint``, ``JointBacksolveAdjoint``): ``solve_ivp`` builds
an ``AutoDiffAdjoint`` and calls it, and a model may build and call one itself. While a
substitution is open, :func:`install` wraps the three ``solve`` methods (and takes them back on
exit): a call the model makes (in the block's thread, not from this package's code, not in a
backward pass, not a backsolve adjoint's own inner loop) is solved with the spec, whatever
reference to ``solve_ivp`` the model holds. A substituted solve (:func:`substitute`):

- reads the problem as torchode built it: ``y0`` of shape ``(batch, features)``, one grid for all
  samples (``t_eval`` with equal rows, or ``t_start``/``t_end`` the same for every sample); it is
  solved with ``spec`` by :func:`~robustbench_ode.solve` over each interval of ``t_eval``
  (:func:`~.odeint_calls.solve_intervals`, as odeint's ``t``);
- calls the term as torchode calls it: a plain ``ODETerm``'s ``f(t, y)`` (``f(t, y, args)`` with
  ``with_args``), a subclass's own ``vf``; ``t`` of shape ``(batch,)`` in the time dtype;
- records the stepper's name, the controller (its class name and ``atol``/``rtol``; ``solve_ivp``
  without one builds a PIDController at 1e-7), ``dt0`` and ``max_steps`` as a
  :class:`SolveIvpCall`; they describe the model's own solver and are superseded by ``spec``;
- returns a torchode ``Solution``: ``ys`` of shape ``(batch, n_t, features)``, ``ts`` the times,
  ``stats`` (``n_f_evals``, ``n_steps``, ``n_accepted``, ``n_initialized``: the substituted
  solve's counters, the same for every sample) and ``status`` (torchode's code of the worst
  status, for every sample).

Refused with a one-line ``ValueError`` (prefix ``substituted solve_ivp:``): per-sample evaluation
times or integration bounds, a ``t_span`` whose ends are not ``t_eval``'s, a ``y0`` that is not a
``(batch, features)`` floating tensor, a ``t_eval`` that is not strictly monotone or requires
gradient, a solve nested in a substituted field. What torchode itself rejects before its solver
runs (an unregistered method, a ``y0`` of the wrong rank for its problem) is torchode's own error,
as without the substitution.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torchode  # the optional dependency: this module is imported only where it is installed
from torch import nn
from torchode.interface import METHODS

from ..core.status import Status
from ..models.fields import prepared
from ..models.spec import SolveSpec
from ..solvers import SOLVERS, SolveStats
from .odeint_calls import (
    ClassAttributes,
    OdeintCall,
    Patch,
    Probe,
    from_package,
    graph_task_id,
    patch,
    refuse,
)

IVP_PREFIX = "substituted solve_ivp: "
DEFAULT_TOL = 1e-7  # torchode's solve_ivp without a controller: PIDController(atol=rtol=1e-7)
# project status -> torchode status code (torchode.status_codes)
CODES = {Status.OK: 0, Status.MAX_STEPS: 3, Status.NON_FINITE: 4}
SOLVER_CLASSES = (torchode.AutoDiffAdjoint, torchode.BacksolveAdjoint, torchode.JointBacksolveAdjoint)


def ivp_refuse(message: str) -> ValueError:
    return refuse(message, IVP_PREFIX)


@dataclass
class SolveIvpCall(OdeintCall):
    """One substituted ``solve_ivp`` call (``entry`` "solve_ivp"): ``method`` is torchode's name
    of the stepper, ``options`` holds ``controller`` (its class name, None for the default),
    ``dt0`` (a float, one for all samples) and ``max_steps``; ``solution`` is kept in odeint's
    layout, ``(n_t, batch, features)``, so that final and drift states read as an odeint call's."""

    def train_spec(self) -> SolveSpec:
        """The configuration the call asked for: a FixedStepController with ``dt0`` is
        ``ceil(span / dt0)`` steps of the method (what torchode takes, the last step clipped);
        otherwise the controller's tolerances, and ``max_steps`` if given. torchode's ``tsit5``,
        ``dopri5`` and ``heun`` are this package's ``tsit5``, ``dopri5_torchode`` and
        ``heun_torchode`` (with this package's integral controller, not a PID's coefficients).
        Raises ValueError where there is no equivalent."""
        name = package_method(self.method)
        if self.options.get("controller") == "FixedStepController":
            dt0 = self.options.get("dt0")
            if not isinstance(dt0, float) or dt0 == 0:
                raise ValueError("a FixedStepController without one nonzero dt0 for all samples")
            span = abs(torch.tensor(self.t[-1] - self.t[0], dtype=self.t_dtype))
            return SolveSpec(name, steps=int(torch.ceil(span / abs(dt0)).item()))
        if not isinstance(self.rtol, float) or not isinstance(self.atol, float):
            raise ValueError(f"controller {self.options.get('controller')} has no single atol/rtol")
        max_steps = self.options.get("max_steps")
        return SolveSpec(name, rtol=self.rtol, atol=self.atol,
                         **({"max_steps": int(max_steps)} if max_steps is not None else {}))


def package_method(method: str | None) -> str:
    """The package's solver that runs torchode's ``method`` (the stepper class it registers)."""
    for name in SOLVERS.names():
        solver = SOLVERS.get(name)
        if solver.backend == "torchode" and (solver.method or "").lower() == method:
            return name
    raise ValueError(f"torchode method {method!r} has no equivalent among this package's solvers")


class IvpField(nn.Module):
    """``f(t, y)`` as the package's solvers call it (t a float, a 0-dim tensor, or one per sample),
    with torchode's calling convention: t of shape (batch,) in the time dtype. An ``nn.Module``
    with ``f`` as a submodule, so the package's adjoint finds its parameters."""

    def __init__(self, probe: Probe, f: Callable, t_dtype: torch.dtype) -> None:
        super().__init__()
        self.probe = probe
        self.f = f
        self.t_dtype = t_dtype

    def forward(self, t, y):
        t = torch.as_tensor(t, dtype=self.t_dtype, device=y.device)
        t = t.reshape(-1).expand(len(y)) if t.numel() == 1 else t.reshape(len(y))
        with self.probe.model_code():
            return self.f(t, y)


def install(probe: Probe, patches: list[Patch]) -> None:
    """Wrap ``solve`` of torchode's solver classes (module docstring); appended to ``patches``."""
    ivp_code = torchode.interface.solve_ivp.__code__
    for cls in SOLVER_CLASSES:
        patch(patches, ClassAttributes(cls), "solve",
              lambda original, cls=cls: dispatch(probe, cls, original, ivp_code))


def dispatch(probe: Probe, cls: type, solve: Callable, ivp_code: Any) -> Callable:
    """``cls.solve``, substituting the model's solves."""

    @functools.wraps(solve)
    def dispatched(self, problem, term=None, dt0=None, args=None, *rest, **kwargs):
        caller = sys._getframe(1)
        started_by = caller.f_back if caller.f_code is ivp_code else caller
        inner = caller.f_globals.get("__name__") == "torchode.adjoints"  # a backsolve's own loop
        if not probe.intercepts() or graph_task_id() >= 0 or inner or from_package(started_by):
            # Outside the block, another thread, a backward pass, or this package's own solves.
            with probe.pass_through():
                return solve(self, problem, term, dt0, args, *rest, **kwargs)
        entry = "solve_ivp" if caller.f_code is ivp_code else f"{cls.__name__}.solve"
        return substitute(probe, entry, self, problem, term, dt0, args)

    return dispatched


# -- one substituted call ---------------------------------------------------------------------

def substitute(probe: Probe, entry: str, solver: Any, problem: Any, term: Any, dt0: Any,
               args: Any) -> torchode.Solution:
    """One model solve: checked (one-line refusals), solved with the probe's spec, recorded in the
    probe, and handed back shaped as torchode hands back its own solution."""
    probe.admit(entry, IVP_PREFIX)
    loop = stepping_loop(solver)
    y0 = problem.y0
    batch = check_y0(y0)
    func = term_field(own_term(solver, loop) if term is None else term, args, problem)
    times, t_dtype, evaluated = check_t_eval(problem.t_eval, (problem.t_start, problem.t_end), batch)
    name = method_name(loop.step_method)
    if probe.spec.adjoint and not isinstance(func, nn.Module):
        raise ivp_refuse("spec.adjoint needs f to be an nn.Module (its parameters are found through it)")
    with probe.pass_through(), prepared(func, y0):
        flat, stats, reached = probe.solve_intervals(IvpField(probe, func, t_dtype), y0, times)
    controller = loop.step_size_controller
    rtol, atol = tolerances(controller)
    options = {"controller": type(controller).__name__, "dt0": recorded_dt0(dt0),
               "max_steps": getattr(loop, "max_steps", None)}
    probe.record(SolveIvpCall(entry, name, options, rtol, atol, times, t_dtype, stats, flat.detach()))
    shown = flat if evaluated else flat[-1:]
    ts = torch.tensor(times if evaluated else times[-1:], dtype=t_dtype, device=y0.device)
    return torchode.Solution(ts.expand(batch, -1), shown.transpose(0, 1),
                             counters(stats, batch, reached if evaluated else int(reached == len(times))),
                             torch.full((batch,), CODES.get(stats.status, 1), device=y0.device))


def stepping_loop(solver: Any) -> Any:
    """The AutoDiffAdjoint that holds the stepper and controller (a backsolve adjoint's forward one)."""
    for name in ("forward_adjoint", "forward_loop"):
        loop = getattr(solver, name, None)
        if isinstance(loop, torchode.AutoDiffAdjoint):
            return loop
    return solver


def own_term(solver: Any, loop: Any) -> Any:
    """The term a solve without one runs: a backsolve adjoint's (unwrapped), else the stepper's."""
    term = getattr(solver, "term", None)
    term = getattr(term, "term", term) if not isinstance(term, torchode.ODETerm) else term
    term = term if term is not None else getattr(loop.step_method, "term", None)
    if term is None:
        raise ivp_refuse("the solve was given no term and its stepper holds none")
    return term


class TermField(nn.Module):
    """A subclass of torchode's ODETerm, called through its own ``vf`` as torchode calls it."""

    def __init__(self, term: torchode.ODETerm, problem: Any, args: Any) -> None:
        super().__init__()
        self.term, self.args = term, args
        self.stats: dict[str, Any] = {}
        term.init(problem, self.stats)  # its counters: vf adds to them

    def forward(self, t, y):
        return self.term.vf(t, y, self.stats, self.args)


def term_field(term: Any, args: Any, problem: Any) -> Callable:
    """``f(t, y)`` as torchode evaluates the term: a plain ODETerm's ``f`` (with ``args`` where the
    term takes them), a subclass through its own ``vf``."""
    if not isinstance(term, torchode.ODETerm):
        raise ivp_refuse(f"the term must be a torchode ODETerm, got {type(term).__name__}")
    if type(term) is not torchode.ODETerm:
        return TermField(term, problem, args)
    return ArgsField(term.f, args) if term.with_args else term.f


class ArgsField(nn.Module):
    """``f(t, y, args)`` called as ``f(t, y)`` (an ``nn.Module`` holding f, for the adjoint)."""

    def __init__(self, f: Callable, args: Any) -> None:
        super().__init__()
        self.f, self.args = f, args

    def forward(self, t, y):
        return self.f(t, y, self.args)


def counters(stats: SolveStats, batch: int, initialized: int) -> dict[str, torch.Tensor]:
    """torchode's per-sample stats (on the CPU, as torchode keeps them): the substituted solve's."""
    values = {"n_f_evals": stats.nfe, "n_steps": stats.steps,
              "n_accepted": stats.steps if stats.accepted is None else stats.accepted,
              "n_initialized": initialized}
    return {k: torch.full((batch,), int(v), dtype=torch.long) for k, v in values.items()}


def recorded_dt0(dt0: Any) -> Any:
    """dt0 as one float when it is the same for all samples (else a copy of what was passed)."""
    if dt0 is None:
        return None
    v = torch.as_tensor(dt0).detach().reshape(-1)
    return float(v[0]) if len(v) and bool((v == v[0]).all()) else v.clone()


def check_y0(y0: Any) -> int:
    """The batch size of y0, which must be what torchode solves: (batch, features), floating."""
    if not torch.is_tensor(y0) or y0.ndim != 2 or not y0.is_floating_point():
        shown = f"{y0.dtype} of shape {tuple(y0.shape)}" if torch.is_tensor(y0) else type(y0).__name__
        raise ivp_refuse(f"y0 must be a floating tensor of shape (batch, features), as torchode "
                         f"requires, got {shown}")
    return len(y0)


def uniform(name: str, value: Any, batch: int) -> float:
    """A time given as a number, a 0-dim tensor or one per sample, as one float for all samples."""
    v = torch.as_tensor(value).detach()
    if v.ndim > 1 or (v.ndim == 1 and len(v) not in (1, batch)) or not v.is_floating_point():
        raise ivp_refuse(f"{name} must be a floating scalar or one value per sample, got {tuple(v.shape)}")
    flat = v.reshape(-1)
    if not bool((flat == flat[0]).all()):
        raise ivp_refuse(f"{name} differs between samples: the substituted solve takes one grid for "
                         "the whole batch")
    return float(flat[0])


def check_t_eval(t_eval: Any, t_span: Any, batch: int) -> tuple[tuple[float, ...], torch.dtype, bool]:
    """(the times to solve between, their dtype, whether t_eval was given): one grid for all."""
    if t_span is not None and (not isinstance(t_span, (tuple, list)) or len(t_span) != 2):
        raise ivp_refuse("t_span must be a pair (t_start, t_end)")
    evaluated = None if t_eval is None else eval_times(t_eval, batch)  # its refusals come first
    ends = None if t_span is None else (uniform("t_start", t_span[0], batch),
                                        uniform("t_end", t_span[1], batch))
    if t_eval is None:
        if ends is None:
            raise ivp_refuse("t_eval is None and no t_span is given: nothing says where to integrate")
        times, dtype = ends, torch.as_tensor(t_span[0]).dtype
    else:
        times, dtype = evaluated, t_eval.dtype
        if ends is not None and ends != (times[0], times[-1]):
            raise ivp_refuse(f"t_span {ends} differs from t_eval's ends {(times[0], times[-1])}: only "
                             "a solve from the first to the last evaluation time is supported")
    if not all(math.isfinite(v) for v in times) or times[0] == times[-1]:
        raise ivp_refuse(f"the times {times} must be finite and span a nonzero interval")
    return times, dtype, t_eval is not None


def eval_times(t_eval: Any, batch: int) -> tuple[float, ...]:
    """t_eval's one grid, as numbers (the package's solvers take the times as floats)."""
    if not torch.is_tensor(t_eval) or not t_eval.is_floating_point() or t_eval.ndim not in (1, 2):
        raise ivp_refuse("t_eval must be a floating tensor of shape (n_t,) or (batch, n_t)")
    if t_eval.requires_grad and torch.is_grad_enabled():
        raise ivp_refuse("t_eval requires gradient: the substituted solve takes the times as numbers, "
                         "so no gradient reaches them (run under torch.no_grad() or detach t_eval)")
    if t_eval.ndim == 2:
        if len(t_eval) != batch or not torch.equal(t_eval, t_eval[:1].expand_as(t_eval)):
            raise ivp_refuse("per-sample evaluation times (rows of t_eval that differ, or not one row "
                             "per sample) are not supported: the substituted solve takes one grid")
        t_eval = t_eval[0]
    times = tuple(float(v) for v in t_eval.detach().cpu().tolist())
    steps = [b - a for a, b in zip(times[:-1], times[1:])]
    if len(times) < 2 or not (all(d > 0 for d in steps) or all(d < 0 for d in steps)):
        raise ivp_refuse(f"t_eval must hold at least two strictly increasing or decreasing times, got "
                         f"{times}")
    return times


def method_name(method: Any) -> str:
    """torchode's registered name of ``method`` (a name, or a stepper object)."""
    if isinstance(method, str):
        if method not in METHODS:
            raise ivp_refuse(f"method {method!r} is not a registered torchode method "
                             f"({', '.join(sorted(METHODS))})")
        return method
    if isinstance(method, nn.Module):  # a stepper object (torchode's steppers are modules)
        names = [name for name, cls in METHODS.items() if type(method) is cls]
        return names[0] if names else type(method).__name__.lower()
    raise ivp_refuse(f"method must be a torchode method name or stepper, got {type(method).__name__}")


def tolerances(controller: Any) -> tuple[Any, Any]:
    """(rtol, atol) the model's controller asked for: floats where it has one value each."""
    if controller is None:
        return DEFAULT_TOL, DEFAULT_TOL

    def value(v: Any) -> Any:
        if not torch.is_tensor(v) or v.numel() != 1:
            return v
        # the shortest decimal of the buffer's dtype: 1e-3 as given, not float32's 0.0010000000474974513
        return float(str(v.detach().cpu().reshape(()).numpy()))

    return value(getattr(controller, "rtol", None)), value(getattr(controller, "atol", None))
