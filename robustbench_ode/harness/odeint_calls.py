"""What a model's torchdiffeq ``odeint`` call asked for, checked and recorded, for solver
substitution (:mod:`.substitution`): the record of one call (:class:`OdeintCall`), the train
configuration it implies (:func:`infer_spec`) and the checks of its arguments (one-line
``ValueError`` for anything the substituted solve cannot honour); also what the interceptions of
torchdiffeq (:mod:`.torchdiffeq_calls`) and torchode (:mod:`.torchode_calls`) share: the solve
over the intervals of the output times (:func:`solve_intervals`), the one-line refusal, and the
:class:`Patch` that puts an interception in place and takes it away again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..core.status import Status
from ..models.spec import SolveSpec
from ..models.trajectory import allocate_steps
from ..solvers import SOLVERS, SolveStats, solve

PREFIX = "substituted odeint: "
# odeint_adjoint's arguments that configure torchdiffeq's backward solve: recorded (as torchdiffeq
# filled them in), ignored. (adjoint_params, the tensors, is not kept.)
ADJOINT_KWARGS = ("adjoint_rtol", "adjoint_atol", "adjoint_method", "adjoint_options")
ABSENT = object()  # a Patch's original where the name did not exist before
# torchdiffeq 0.2.5 options that configure the model's own solver: recorded, superseded by spec.
SUPERSEDED = frozenset({
    "step_size", "grid_constructor", "interp",  # fixed grid
    "first_step", "min_step", "max_step", "safety", "ifactor", "dfactor", "max_num_steps",
    "dtype", "norm",  # adaptive Runge-Kutta
    "max_iters", "max_order",  # Adams
    "solver",  # scipy_solver
})
# Options that describe the problem (discontinuities of the field); honoured by torchdiffeq only.
REFUSED = {
    "step_t": "step_t (times the solver must step on)",
    "jump_t": "jump_t (discontinuity times of the field)",
    "perturb": "perturb=True (evaluating the field on either side of a discontinuity)",
}


class Probe(Protocol):
    """What a substituted solve needs of the probe it records into (harness/substitution.py's
    SubstitutionProbe; harness/torchdiffeq_calls.py and torchode_calls.py call only these)."""

    spec: SolveSpec

    def intercepts(self) -> bool: ...

    def pass_through(self) -> AbstractContextManager[Any]: ...

    def model_code(self) -> AbstractContextManager[Any]: ...

    def admit(self, entry: str, prefix: str = ...) -> None: ...

    def record(self, call: OdeintCall) -> None: ...

    def solve_intervals(self, f: Any, z0: torch.Tensor, times: tuple[float, ...]) -> Any: ...


def refuse(message: str, prefix: str = PREFIX) -> ValueError:
    """The one-line error of a call the substitution cannot honour (``prefix`` names the call)."""
    return ValueError(prefix + message.replace("\n", " "))


def from_package(frame: Any) -> bool:
    """Whether ``frame`` runs this package's own code (its solvers call torchdiffeq and torchode:
    never substituted)."""
    caller = frame.f_globals.get("__name__", "")
    return caller == "robustbench_ode" or caller.startswith("robustbench_ode.")


def combine_stats(stats: Iterable[SolveStats]) -> SolveStats:
    """Several solves' counters as one (:meth:`SolveStats.add`): NFE, steps, accepted and
    rejected summed (accepted and rejected stay ``None`` for fixed-step solves), the worst status
    with its message."""
    out = SolveStats()
    for s in stats:
        out = out.add(s)
    return out


@dataclass
class OdeintCall:
    """One odeint/odeint_adjoint call made inside a ``substituted`` block: what the model asked
    for (``method``, ``options``, ``rtol``, ``atol``, ``t``) and what the substituted solve did
    (``stats`` summed over the intervals of ``t``; ``solution``, the output handed back to the
    model, detached)."""

    entry: str  # "odeint" or "odeint_adjoint" ("solve_ivp": torchode_calls.SolveIvpCall)
    method: str | None  # as passed; None is torchdiffeq's default, dopri5
    options: dict[str, Any]  # a copy of what was passed ({} for None)
    rtol: Any
    atol: Any
    t: tuple[float, ...]
    t_dtype: torch.dtype
    stats: SolveStats
    solution: torch.Tensor | tuple[torch.Tensor, ...]  # (len(t), *y0.shape), or a tuple of those
    adjoint_kwargs: dict[str, Any] = field(default_factory=dict)  # odeint_adjoint's, ignored
    # the model's func as the substituted solve called it, f(t, z) (a tensor state's; None for a
    # tuple state): the captured field a plain model's diagnosis reads (harness/capture.py)
    field: Any = field(default=None, repr=False, compare=False)

    @property
    def step_size(self) -> Any:
        return self.options.get("step_size")

    @property
    def final_state(self) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """z(t[-1]) (a tuple for a tuple state)."""
        if isinstance(self.solution, tuple):
            return tuple(s[-1] for s in self.solution)
        return self.solution[-1]

    def drift_state(self) -> torch.Tensor:
        """The states this call contributes to drift, one row per sample (batch dimension 0 of
        y0): z(T) flattened for ``t = [t0, T]``; for more output times the trajectory at t[1:],
        (B, K, ...) flattened. Tuple parts are concatenated."""
        parts = self.solution if isinstance(self.solution, tuple) else (self.solution,)
        if len(self.t) == 2:
            return torch.cat([p[-1].flatten(1) for p in parts], 1)
        return torch.cat([p[1:].transpose(0, 1).flatten(1) for p in parts], 1)

    def train_spec(self) -> SolveSpec:
        """The configuration this call asked for, as a spec: see :func:`infer_spec`."""
        return infer_spec(self)


def package_solver(method: str) -> str:
    """The package's solver that runs torchdiffeq's ``method``."""
    for name in SOLVERS.names():
        if SOLVERS.get(name).torchdiffeq_method == method:
            return name
    raise ValueError(f"torchdiffeq method {method!r} has no equivalent among this package's solvers "
                     f"({', '.join(SOLVERS.names())})")


def _tolerance(name: str, value: Any) -> float:
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ValueError(f"{name} is a per-element tensor: no single tolerance to report")
        value = value.item()
    return float(value)


def infer_spec(call: OdeintCall) -> SolveSpec:
    """The :class:`SolveSpec` of the solver a call asked for, i.e. its train configuration.

    A fixed-grid method with ``step_size`` takes the steps torchdiffeq's grid has over
    t[0]..t[-1] (``ceil(span / step_size)`` in t's dtype, torchdiffeq's formula): euler with
    step_size 0.25 on [0, 1] is ``SolveSpec("euler", steps=4)``. Without step_size the grid is t
    itself: ``len(t) - 1`` steps. An adaptive method gives its tolerances (torchdiffeq's defaults
    1e-7 and 1e-9 when not passed), and ``max_num_steps`` if given. torchdiffeq's ``rk4`` is the
    3/8 rule, ``rk4_38`` here; ``heun2`` is ``heun``. Raises ValueError for a ``grid_constructor``,
    a method with no equivalent here (heun3, the Adams methods, scipy_solver) or per-element
    tolerances. A torchode ``solve_ivp`` call maps its own way (its ``train_spec``)."""
    if call.entry in ("solve_ivp", "NeuralODE"):  # torchode_calls / torchdyn_calls map their own
        return call.train_spec()
    name = package_solver(call.method or "dopri5")
    if SOLVERS.get(name).adaptive:
        max_steps = call.options.get("max_num_steps")
        return SolveSpec(name, rtol=_tolerance("rtol", call.rtol), atol=_tolerance("atol", call.atol),
                         **({"max_steps": int(max_steps)} if max_steps is not None else {}))
    if call.options.get("grid_constructor") is not None:
        raise ValueError("the call passed a grid_constructor: its number of steps is not known")
    step_size = call.options.get("step_size")
    if step_size is None:
        return SolveSpec(name, steps=len(call.t) - 1)
    span = abs(torch.tensor(call.t[-1], dtype=call.t_dtype) - torch.tensor(call.t[0], dtype=call.t_dtype))
    return SolveSpec(name, steps=int(torch.ceil(span / step_size + 1).item()) - 1)


def solve_intervals(f: Any, z0: torch.Tensor, times: tuple[float, ...], spec: SolveSpec,
                    ) -> tuple[torch.Tensor, SolveStats, int]:
    """z at each of ``times`` from ``z0`` = z(times[0]), stacked as torchdiffeq stacks its output:
    ``(len(times), *z0.shape)`` with out[0] = z0. Each interval is one
    :func:`~robustbench_ode.solve` of ``spec`` started from the previous end state (an adaptive
    spec restarts at every output time). A fixed-step spec's steps are those of the whole span,
    spread over the intervals in proportion to their lengths (:func:`allocate_steps`, at least one
    each). A solve that fails (NaN, step limit) stops there and the rest is NaN: a failure is a
    status, not an exception. Returns the output, the intervals' stats combined and how many
    times were reached (z0's included)."""
    k = len(times) - 1
    counts = None
    if spec.steps is not None:
        # allocate_steps wants increasing times; a decreasing t has the same interval lengths.
        counts = allocate_steps(times if times[-1] > times[0] else tuple(-v for v in times),
                                int(spec.steps))
    z, states, stats = z0, [], []
    for i in range(k):
        sol = solve(f, z, spec.solver, steps=counts[i] if counts else None, rtol=spec.rtol,
                    atol=spec.atol, t_span=(times[i], times[i + 1]), max_steps=spec.max_steps,
                    adjoint=spec.adjoint, control=spec.control)
        stats.append(sol.stats)
        z = sol.z
        states.append(z)
        if sol.stats.status is not Status.OK:
            break
    reached = 1 + len(states) - (stats[-1].status is not Status.OK)
    states += [torch.full_like(z0, math.nan)] * (k - len(states))
    return torch.stack([z0] + states), combine_stats(stats), reached


def split_state(z: torch.Tensor, shapes: list[torch.Size]) -> tuple[torch.Tensor, ...]:
    """A flat state (the last dimension the parts' elements, concatenated) back into its parts."""
    out, start = [], 0
    for shape in shapes:
        n = math.prod(shape)
        out.append(z[..., start:start + n].reshape(*z.shape[:-1], *shape))
        start += n
    return tuple(out)


def check_times(t: Any, prefix: str = PREFIX, name: str = "t") -> tuple[float, ...]:
    """The output times as numbers: a 1-D floating tensor of at least two finite, strictly
    monotone times (one-line refusals naming ``name``)."""
    if not torch.is_tensor(t):
        raise refuse(f"{name} must be a 1-D floating torch.Tensor, got {type(t).__name__}", prefix)
    if not t.is_floating_point() or t.dim() != 1:
        raise refuse(f"{name} must be a 1-D floating tensor, got dtype {t.dtype} with {t.dim()} "
                     "dimensions", prefix)
    if len(t) < 2:
        raise refuse(f"{name} must hold at least two times (start and end), got {len(t)}", prefix)
    if t.requires_grad and torch.is_grad_enabled():
        raise refuse(f"{name} requires gradient: the substituted solve takes the times as numbers, so "
                     f"no gradient reaches {name} (run under torch.no_grad() or detach {name})", prefix)
    times = tuple(float(v) for v in t.detach().cpu().tolist())
    if not all(math.isfinite(v) for v in times):
        raise refuse(f"{name} holds a non-finite time: {times}", prefix)
    steps = [b - a for a, b in zip(times[:-1], times[1:])]
    if not (all(d > 0 for d in steps) or all(d < 0 for d in steps)):
        raise refuse(f"{name} must be strictly increasing or decreasing, got {times}", prefix)
    return times


def check_state(y0: Any) -> tuple[torch.Tensor, list[torch.Size] | None]:
    """y0 as one tensor: itself, or a tuple's parts flattened and concatenated (shapes kept)."""
    if torch.is_tensor(y0):
        if not y0.is_floating_point():
            raise refuse(f"y0 must be a real floating tensor, got dtype {y0.dtype}")
        return y0, None
    if not isinstance(y0, tuple) or not y0 or not all(torch.is_tensor(y) for y in y0):
        raise refuse(f"y0 must be a tensor or a non-empty tuple of tensors, got {type(y0).__name__}")
    kinds = {(y.dtype, y.device) for y in y0}
    if len(kinds) != 1 or not y0[0].is_floating_point():
        raise refuse("a tuple y0 must hold real floating tensors of one dtype and device, got "
                     + ", ".join(f"{y.dtype} on {y.device}" for y in y0))
    return torch.cat([y.reshape(-1) for y in y0]), [y.shape for y in y0]


def check_options(method: Any, options: Any, event_fn: Any, methods: Iterable[str]) -> dict[str, Any]:
    if event_fn is not None:
        raise refuse("event_fn (solving until an event) is not supported: the substituted solve "
                     "integrates over t only")
    if method is not None and method not in methods:
        raise refuse(f"method {method!r} is not a torchdiffeq method ({', '.join(sorted(methods))})")
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise refuse(f"options must be a dict, got {type(options).__name__}")
    for key, value in options.items():
        if key in REFUSED:
            if value is None or value is False:  # torchdiffeq's own defaults: nothing asked
                continue
            raise refuse(f"option {REFUSED[key]} cannot be honoured by the substituted solve")
        if key not in SUPERSEDED:
            raise refuse(f"option {key!r} is not one torchdiffeq 0.2.5 takes, so it cannot be "
                         f"honoured (known: {', '.join(sorted(SUPERSEDED | set(REFUSED)))})")
    return dict(options)


def graph_task_id() -> int:
    """>= 0 while autograd runs a backward pass (torchdiffeq's adjoint backward solves there)."""
    current = getattr(torch._C, "_current_graph_task_id", None)
    return current() if current is not None else -1


class ClassAttributes:
    """A class's own attributes seen as a mapping (``get``, item assignment and deletion), so that
    a :class:`Patch` replaces a method as it replaces a module global."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def get(self, name: str, default: Any = None) -> Any:
        return vars(self.cls).get(name, default)

    def __setitem__(self, name: str, value: Any) -> None:
        setattr(self.cls, name, value)

    def __delitem__(self, name: str) -> None:
        delattr(self.cls, name)


@dataclass(frozen=True)
class Patch:
    """One interception in place: ``namespace[name]`` (a module's globals, a library's solver
    table, or :class:`ClassAttributes`) is ``ours`` until :meth:`undo` puts ``original`` back (or
    removes the name, where it was :data:`ABSENT`)."""

    namespace: Any
    name: str
    original: Any
    ours: Any

    def undo(self) -> None:
        if self.namespace.get(self.name, ABSENT) is not self.ours:
            return  # someone else replaced it since: theirs stays
        if self.original is ABSENT:
            del self.namespace[self.name]
        else:
            self.namespace[self.name] = self.original


def patch(patches: list[Patch], namespace: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Put ``make(original)`` at ``namespace[name]`` and append the :class:`Patch` to ``patches``
    (the caller's list, so that what is in place is undone even when a later patch fails)."""
    original = namespace.get(name, ABSENT)
    ours = make(original)
    namespace[name] = ours
    patches.append(Patch(namespace, name, original, ours))
