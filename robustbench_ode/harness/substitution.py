"""Solver substitution: test an unmodified torchdiffeq (or torchode) model with any solver configuration.

Most neural ODEs call ``torchdiffeq.odeint(func, y0, t, method=..., options=...)`` (or
``odeint_adjoint``) inside their ``forward``. Inside :func:`substituted`, every such call is
replaced by this project's :func:`robustbench_ode.solve` of a test configuration
(:class:`~robustbench_ode.models.spec.SolveSpec`), and a probe records what each call asked for and
what the substituted solve did::

    with substituted(SolveSpec("euler", steps=64)) as probe:
        logits = model(x)
    probe.stats          # SolveStats summed over every odeint call of the forward pass
    probe.final_state    # z(t[-1]) of the last call
    probe.train_spec()   # the configuration the model itself asked for, e.g. euler, 4 steps

What is rebound (for the duration of the block, restored on exit, also on an exception):
every module global, in every module of ``sys.modules``, that *is* torchdiffeq's ``odeint`` or
``odeint_adjoint`` function object, whatever its name: ``torchdiffeq.odeint``,
``torchdiffeq._impl.odeint`` (the package attribute), the defining modules' attributes
(``sys.modules["torchdiffeq._impl.odeint"].odeint``, ``...adjoint.odeint_adjoint``), and a user
module's ``from torchdiffeq import odeint`` or ``... import odeint_adjoint as odeint``. Calls
written ``torchdiffeq.odeint(...)`` or through a module global are therefore covered, including a
module imported while the block is open (its globals are restored on exit too).

What is *not* rebound: a reference held anywhere but a module global, e.g. in a closure
(``solver = torchdiffeq.odeint`` captured by an inner function), a default argument
(``def f(..., ode=odeint)``), an instance or class attribute (``self.odeint = odeint``), a
container or a ``functools.partial``; also ``odeint_dense``/``odeint_event`` and TorchScript or
``torch.compile`` graphs that inlined the solver. Such a call is not run silently with the
model's own solver: every torchdiffeq solve starts with torchdiffeq's ``_check_inputs``, which is
rebound too (in ``torchdiffeq._impl.odeint`` and ``torchdiffeq._impl.adjoint``), and raises a
one-line ``ValueError`` when a solve starts in the block without passing through the substitution.
torchdiffeq's own internal references (``adjoint.py``'s ``odeint``, used by its forward and
backward passes) are left alone, and calls made by this package's code (its solvers call
torchdiffeq for the adaptive methods) and by other threads are never substituted.

Semantics of a substituted call ``odeint(func, y0, t, ...)``:

- ``method``, ``rtol``, ``atol`` and the solver-configuration options (``step_size``,
  ``grid_constructor``, ``first_step``, ``max_num_steps``, ``norm``, ...) describe the model's own
  solver: they are recorded (:attr:`SubstitutionProbe.requested`, :meth:`OdeintCall.train_spec`)
  and superseded by ``spec``. Options that describe the *problem* and that the substituted solve
  cannot honour (``step_t``, ``jump_t``, ``perturb=True``), ``event_fn``, and anything torchdiffeq
  0.2.5 does not accept are refused with a one-line ``ValueError``.
- ``t`` (a 1-D floating tensor of at least two strictly increasing or decreasing times) is solved
  interval by interval (:func:`~.odeint_calls.solve_intervals`), each a
  :func:`robustbench_ode.solve` over ``(t[k], t[k+1])`` from the previous end state, stacked as
  torchdiffeq does, ``(len(t), *y0.shape)`` with ``out[0] = y0``. A fixed-step spec's ``steps``
  are those of the whole span, spread over the intervals in proportion to their lengths (at least
  one each); an adaptive spec restarts at each output time (not torchdiffeq's dense output). A
  solve that fails (NaN, step limit) stops there and the rest is NaN: a status, not an exception.
- ``func`` is called as torchdiffeq calls it: ``func(t, y)`` with ``t`` a 0-dim tensor of y's dtype.
  A tuple state (a tuple of floating tensors of one dtype and device; ``func`` returns a tuple) is
  solved as the concatenation of its flattened parts, as torchdiffeq does; an adaptive spec's error
  norm is then the project's RMS over all parts, not torchdiffeq's default mixed norm.
  torchdiffeq callbacks on ``func`` (``callback_step`` ...) are not called.
- ``odeint_adjoint`` is substituted like ``odeint``; the gradient is taken as ``spec.adjoint`` says
  (direct backpropagation through the solve by default; the forward values are the same either
  way), and its ``adjoint_*`` arguments, which only configure torchdiffeq's backward solve, are
  recorded and ignored.

Several ODE blocks (several odeint calls per forward pass): by default each call is substituted
with the same test configuration, and :attr:`SubstitutionProbe.stats` sums their counters (NFE,
steps, accepted, rejected; worst status) -- the cost of the whole forward pass, which is what a
fixed budget per solve multiplies. ``strict=True`` refuses a second call (since the block opened or
the last :meth:`~SubstitutionProbe.reset`) with a one-line ``ValueError``, for a caller that needs
one block to be the one under test.

Only one substitution can be open at a time (a nested ``substituted`` is refused); a call made
from inside the vector field of a substituted solve (an ODE nested in a field) is refused too.

torchode's ``solve_ivp``, where the optional ``torchode`` extra is installed (imported on entry):
every module global that *is* it (``torchode.solve_ivp``, ``torchode.interface.solve_ivp``, ``from
torchode import solve_ivp``) is rebound and restored in the same way, and a call is solved with
``spec`` over ``t_eval``'s intervals as odeint's ``t`` is, ``f`` called as torchode calls it, a
torchode ``Solution`` returned, recorded in the same probe (:mod:`.torchode_calls`, which says what
is refused; ``solve`` of torchode's solver classes is its tripwire, as ``_check_inputs`` is here).
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager, nullcontext
from types import ModuleType
from typing import Any

import torch
from torch import nn

from ..models.fields import prepared
from ..models.spec import SolveSpec
from ..solvers import SOLVERS, SolveStats
from .odeint_calls import (
    ADJOINT_KWARGS,
    PREFIX,
    OdeintCall,
    Probe,
    check_options,
    check_state,
    check_times,
    combine_stats,
    from_package,
    graph_task_id,
    infer_spec,
    module_dicts,
    refuse,
    solve_intervals,
    split_state,
)

__all__ = ["OdeintCall", "SubstitutionProbe", "combine_stats", "infer_spec", "substituted"]

_ACTIVE: list[SubstitutionProbe] = []  # at most one open substitution per process
_ACTIVE_LOCK = threading.Lock()


class _Field(nn.Module):
    """``func`` as the package's solvers call it, with torchdiffeq's calling convention: t a 0-dim
    tensor of y's dtype, tuple states flattened. An ``nn.Module`` so the package's adjoint finds
    func's parameters through it. While func runs, odeint calls are not passed through (nested ODEs
    are refused)."""

    def __init__(self, probe: Probe, func: Callable, shapes: list[torch.Size] | None) -> None:
        super().__init__()
        self.probe = probe
        self.func = func  # a submodule when func is a module
        self.shapes = shapes

    def forward(self, t, z):
        if not torch.is_tensor(t):
            t = torch.tensor(t, dtype=z.dtype, device=z.device)
        elif t.dtype != z.dtype:
            t = t.to(z.dtype)
        with self.probe.model_code():
            if self.shapes is None:
                return self.func(t, z)
            out = self.func(t, split_state(z, self.shapes))
        if not isinstance(out, tuple) or len(out) != len(self.shapes):
            raise refuse(f"func returned {type(out).__name__} for a tuple state of {len(self.shapes)} "
                         "tensors: it must return a tuple of as many tensors")
        return torch.cat([o.reshape(-1) for o in out])


class SubstitutionProbe:
    """The context manager :func:`substituted` returns, and the record of what happened inside.

    Attributes and properties (all about the calls since the block opened or the last
    :meth:`reset`, except :attr:`requested`):

    - ``calls``: one :class:`OdeintCall` per substituted odeint/odeint_adjoint/solve_ivp call;
    - ``n_calls``: how many calls (ODE blocks run);
    - ``stats``: their :class:`~robustbench_ode.solvers.SolveStats` combined
      (:func:`combine_stats`: counters summed, worst status);
    - ``final_state`` / ``final_states``: z(t[-1]) of the last call / of each call;
    - ``drift_states()``: one row per sample, every call's :meth:`OdeintCall.drift_state`
      concatenated (for drift between two configurations);
    - ``requested``: the first call since the block opened (kept across :meth:`reset`): the
      method/options/step_size the model asked for; ``train_spec()`` turns it into a spec.
    """

    def __init__(self, spec: SolveSpec, strict: bool = False) -> None:
        SOLVERS.get(spec.solver)  # an unknown solver fails here, with the valid names
        self.spec = spec
        self.strict = bool(strict)
        self.calls: list[OdeintCall] = []
        self.requested: OdeintCall | None = None
        self._open = False
        self._owner: int | None = None
        self._tls = threading.local()
        # (globals, or a class's attributes (torchode_calls.ClassAttributes), name, original, ours)
        self._rebound: list[tuple[Any, str, Callable, Callable]] = []
        self._replacements: dict[int, tuple[Callable, Callable]] = {}  # id(ours) -> (ours, original)

    # -- the record -------------------------------------------------------------------------

    @property
    def n_calls(self) -> int:
        return len(self.calls)

    @property
    def stats(self) -> SolveStats:
        return combine_stats(c.stats for c in self.calls)

    @property
    def final_states(self) -> list[torch.Tensor | tuple[torch.Tensor, ...]]:
        return [c.final_state for c in self.calls]

    @property
    def final_state(self) -> torch.Tensor | tuple[torch.Tensor, ...] | None:
        return self.calls[-1].final_state if self.calls else None

    def drift_states(self) -> torch.Tensor:
        if not self.calls:
            raise ValueError("no odeint call was made: there are no final states")
        return torch.cat([c.drift_state() for c in self.calls], 1)

    def train_spec(self) -> SolveSpec:
        """The train configuration inferred from the first call (:meth:`OdeintCall.train_spec`)."""
        if self.requested is None:
            raise ValueError("no odeint call was made: nothing to infer the train configuration from")
        return self.requested.train_spec()

    def reset(self) -> None:
        """Forget the calls recorded so far (e.g. between batches); ``requested`` is kept."""
        self.calls = []

    # -- state of the current thread (also used by torchode_calls) -----------------------------

    def intercepts(self) -> bool:
        """Whether a call made now, in this thread, is the model's (to substitute or refuse)."""
        return self._open and threading.get_ident() == self._owner and getattr(self._tls, "passing", 0) == 0

    @contextmanager
    def pass_through(self):
        """Calls made now go to torchdiffeq / torchode unchanged (this package's own solves)."""
        tls = self._tls
        tls.passing = getattr(tls, "passing", 0) + 1
        try:
            yield
        finally:
            tls.passing -= 1

    @contextmanager
    def model_code(self):
        """The model's vector field runs: its calls are the model's again (a nested ODE, refused)."""
        tls = self._tls
        saved, tls.passing = getattr(tls, "passing", 0), 0
        tls.in_field = getattr(tls, "in_field", 0) + 1
        try:
            yield
        finally:
            tls.passing = saved
            tls.in_field -= 1

    def admit(self, entry: str, prefix: str = PREFIX) -> None:
        """Refuse a call made from inside a substituted solve's field, or a second one under strict."""
        if getattr(self._tls, "in_field", 0):
            raise refuse(f"{entry} called from inside the vector field of a substituted solve (a "
                         "nested ODE) is not supported", prefix)
        if self.strict and self.calls:
            raise refuse(f"strict substitution allows one ODE call per forward pass, and the model made "
                         f"more than one (a second {entry}); several ODE blocks need strict=False, "
                         "which substitutes each and sums their counters", prefix)

    def record(self, call: OdeintCall) -> None:
        """Keep a substituted call (the first since the block opened is also ``requested``)."""
        self.calls.append(call)
        if self.requested is None:
            self.requested = call

    # -- rebinding --------------------------------------------------------------------------

    def __enter__(self) -> SubstitutionProbe:
        with _ACTIVE_LOCK:
            if _ACTIVE:
                raise ValueError(PREFIX + "a substitution is already open; substituted() blocks do not nest")
            _ACTIVE.append(self)
        try:
            self._rebind()
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _rebind(self) -> None:
        impl_odeint = importlib.import_module("torchdiffeq._impl.odeint")
        impl_adjoint = importlib.import_module("torchdiffeq._impl.adjoint")
        pairs = {entry: (fn, self._replacement(entry, fn, impl_odeint.SOLVERS)) for entry, fn in
                 (("odeint", impl_odeint.odeint), ("odeint_adjoint", impl_adjoint.odeint_adjoint))}
        torchode_calls = _torchode_calls()
        if torchode_calls is not None:
            pairs["solve_ivp"] = torchode_calls.replacement(self)
        by_id = {id(original): entry for entry, (original, _) in pairs.items()}
        self._replacements = {id(ours): (ours, original) for original, ours in pairs.values()}
        self._owner = threading.get_ident()
        self._open = True
        for modname, d in module_dicts():
            internal = modname == "torchdiffeq" or modname.startswith("torchdiffeq.")
            for name, value in list(d.items()):
                entry = by_id.get(id(value))
                if entry is None or value is not pairs[entry][0]:
                    continue
                # torchdiffeq's own uses (adjoint.py's odeint, run by its forward and backward
                # passes) stay; its public spellings are rebound (torchode's: all of them).
                public = modname in ("torchdiffeq", "torchdiffeq._impl") or (
                    modname == value.__module__ and name == value.__name__)
                if internal and not public:
                    continue
                d[name] = pairs[entry][1]
                self._rebound.append((d, name, value, pairs[entry][1]))
        # The tripwire: a solve that starts without passing through the substitution.
        for module in (impl_odeint, impl_adjoint):
            d = vars(module)
            original = d["_check_inputs"]
            wire = self._tripwire(original)
            d["_check_inputs"] = wire
            self._rebound.append((d, "_check_inputs", original, wire))
        if torchode_calls is not None:
            self._rebound += torchode_calls.tripwires(self)

    def _restore(self) -> None:
        self._open = False
        for d, name, original, ours in reversed(self._rebound):
            if d.get(name) is ours:
                d[name] = original
        self._rebound = []
        # A module imported inside the block may have bound a replacement: put the original back.
        if self._replacements:
            for _, d in module_dicts():
                for name, value in list(d.items()):
                    pair = self._replacements.get(id(value))
                    if pair is not None and value is pair[0]:
                        d[name] = pair[1]
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)

    def _tripwire(self, check_inputs: Callable) -> Callable:
        @functools.wraps(check_inputs)
        def _check_inputs(*args, **kwargs):
            if self.intercepts() and graph_task_id() < 0:
                raise refuse(
                    "a torchdiffeq solve started inside substituted() without passing through the "
                    "substitution, so it would run the model's own solver: a reference to "
                    "odeint/odeint_adjoint held in a closure, default argument, attribute or container "
                    "(or odeint_dense/odeint_event, or a call from inside the vector field); bind it "
                    "at call time, e.g. torchdiffeq.odeint(...) or a module global")
            return check_inputs(*args, **kwargs)
        return _check_inputs

    def _replacement(self, entry: str, original: Callable, methods: Iterable[str]) -> Callable:
        methods = frozenset(methods)
        allowed = ADJOINT_KWARGS if entry == "odeint_adjoint" else ()

        @functools.wraps(original)
        def substitute(func, y0, t, *, rtol=1e-7, atol=1e-9, method=None, options=None, event_fn=None,
                       **kwargs):
            if not self.intercepts() or from_package(sys._getframe(1)):
                # Outside the block, another thread, or this package's own solvers: torchdiffeq.
                with self.pass_through() if self._open else nullcontext():
                    return original(func, y0, t, rtol=rtol, atol=atol, method=method, options=options,
                                    event_fn=event_fn, **kwargs)
            unknown = sorted(set(kwargs) - set(allowed))
            if unknown:
                raise TypeError(f"{entry}() got unexpected keyword arguments {', '.join(unknown)}")
            return self._substitute(entry, func, y0, t, rtol, atol, method, options, event_fn,
                                    methods, kwargs)

        return substitute

    # -- one substituted call ---------------------------------------------------------------

    def _substitute(self, entry, func, y0, t, rtol, atol, method, options, event_fn, methods,
                    adjoint_kwargs):
        self.admit(entry)
        options = check_options(method, options, event_fn, methods)
        times = check_times(t)
        z0, shapes = check_state(y0)
        spec = self.spec
        if spec.adjoint and not isinstance(func, nn.Module):
            raise refuse("spec.adjoint needs func to be an nn.Module (its parameters are found through "
                         "it; adjoint_params cannot be passed on)")
        with self.pass_through(), prepared(func, y0):
            flat, total, _ = solve_intervals(_Field(self, func, shapes), z0, times, spec)
        if shapes is None:
            out = flat
        else:
            parts = split_state(flat, shapes)
            out = tuple(s.reshape(len(times), *shape) for s, shape in zip(parts, shapes))
        detached = out.detach() if shapes is None else tuple(o.detach() for o in out)
        self.record(OdeintCall(entry, method, options, rtol, atol, times, t.dtype, total, detached,
                               dict(adjoint_kwargs)))
        return out


def _torchode_calls() -> ModuleType | None:
    """:mod:`.torchode_calls` where torchode is installed and importable; None elsewhere."""
    try:
        from . import torchode_calls  # optional dependency torchode: imported only where installed
    except ImportError:  # torchode is not installed: no model can call it either
        return None
    return torchode_calls


def substituted(spec: SolveSpec, *, strict: bool = False) -> SubstitutionProbe:
    """A context manager: inside it, every torchdiffeq ``odeint``/``odeint_adjoint`` call (bound as
    a module global or an attribute of torchdiffeq; see the module docstring for what is and is not
    covered) is solved with ``spec`` by :func:`robustbench_ode.solve`, over each interval of the
    call's ``t``. ``with substituted(spec) as probe: logits = model(x)``; ``probe`` then holds every
    call's counters, final states and what the model asked for (:class:`SubstitutionProbe`).
    ``strict``: refuse a second odeint call (one ODE block expected) instead of substituting each
    and summing. Everything rebound is restored on exit, also when the model raises."""
    return SubstitutionProbe(spec, strict=strict)
