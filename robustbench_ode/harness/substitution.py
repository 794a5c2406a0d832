"""Solver substitution: test an unmodified torchdiffeq (or torchode) model with any
solver configuration.

Most neural ODEs call ``torchdiffeq.odeint(func, y0, t, method=..., options=...)`` (or
``odeint_adjoint``) inside their ``forward``. Inside :func:`substituted`, every such solve is
replaced by this project's :func:`robustbench_ode.solve` of a test configuration
(:class:`~robustbench_ode.models.spec.SolveSpec`), and a probe records what each call asked for and
what the substituted solve did::

    with substituted(SolveSpec("euler", steps=64)) as probe:
        logits = model(x)
    probe.stats          # SolveStats summed over every solve of the forward pass
    probe.final_state    # z(t[-1]) of the last call
    probe.train_spec()   # the configuration the model itself asked for, e.g. euler, 4 steps

**Where the solves are intercepted: at each library's own dispatch**, not at the names the model
uses, so every solve that starts in the block is reached whatever reference the model holds (a
module global, ``self.odeint = odeint_adjoint if adjoint else odeint`` set in ``__init__``, a
closure, a default argument, a container, a ``functools.partial``, a helper of its own):

- torchdiffeq (:mod:`.torchdiffeq_calls`): ``_check_inputs``, with which ``odeint`` and
  ``odeint_adjoint`` start, and the solver table ``SOLVERS``;
- torchode (:mod:`.torchode_calls`, where the optional extra is installed): ``solve`` of its
  solver classes (``AutoDiffAdjoint``, ``BacksolveAdjoint``, ``JointBacksolveAdjoint``), which
  ``solve_ivp`` and a model's own solver object both call;
- torchdyn (:mod:`.torchdyn_calls`, where the optional extra is installed and imported):
  ``ODEProblem.odeint``, which every ``NeuralODE`` solve runs;

Everything put in place is taken away on exit, also on an exception; the library functions
themselves are never replaced, so a reference kept past the block is the library's own. Solves made
by this package's code (its solvers call torchdiffeq and torchode), by other threads and by
autograd's backward passes are never substituted.

Refused with a one-line ``ValueError``, because the substituted solve cannot make what they return:
torchdiffeq's ``odeint_dense`` (dopri5's dense interpolant) and events (``event_fn``,
``odeint_event``). Not reached: solvers compiled into TorchScript or ``torch.compile`` graphs
before the block, and a torchdyn ``NeuralODE`` whose module torchdyn is first imported inside
the block.

Semantics of a substituted call ``odeint(func, y0, t, ...)``:

- ``method``, ``rtol``, ``atol`` and the solver-configuration options (``step_size``,
  ``grid_constructor``, ``first_step``, ``max_num_steps``, ``norm``, ...) describe the model's own
  solver: they are recorded (:attr:`SubstitutionProbe.requested`, :meth:`OdeintCall.train_spec`)
  and superseded by ``spec``. Options that describe the *problem* and that the substituted solve
  cannot honour (``step_t``, ``jump_t``, ``perturb=True``) and anything torchdiffeq 0.2.5 does not
  accept are refused with a one-line ``ValueError``.
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

Several ODE blocks (several solves per forward pass): by default each call is substituted with the
same test configuration, and :attr:`SubstitutionProbe.stats` sums their counters (NFE, steps,
accepted, rejected; worst status) -- the cost of the whole forward pass, which is what a fixed
budget per solve multiplies. ``strict=True`` refuses a second call (since the block opened or the
last :meth:`~SubstitutionProbe.reset`) with a one-line ``ValueError``, for a caller that needs one
block to be the one under test.

Only one substitution can be open at a time (a nested ``substituted`` is refused); a call made
from inside the vector field of a substituted solve (an ODE nested in a field) is refused too.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from types import ModuleType

import torch

from ..models.spec import SolveSpec
from ..solvers import SOLVERS, SolveStats
from . import torchdiffeq_calls
from .odeint_calls import PREFIX, OdeintCall, Patch, combine_stats, infer_spec, refuse, solve_intervals

__all__ = ["OdeintCall", "SubstitutionProbe", "combine_stats", "infer_spec", "substituted"]

_ACTIVE: list[SubstitutionProbe] = []  # at most one open substitution per process
_ACTIVE_LOCK = threading.Lock()


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

    def __init__(self, spec: SolveSpec, strict: bool = False, keep: bool = True) -> None:
        SOLVERS.get(spec.solver)  # an unknown solver fails here, with the valid names
        self.spec = spec
        self.strict = bool(strict)
        self.keep = bool(keep)  # False: count the calls, keep only the first (``requested``)
        self.solves = 0  # calls substituted since the block opened (kept across reset())
        self.calls: list[OdeintCall] = []
        self.requested: OdeintCall | None = None
        self._open = False
        self._owner: int | None = None
        self._tls = threading.local()
        self._patches: list[Patch] = []  # the interceptions in place while the block is open

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

    def solve_intervals(self, f, z0: torch.Tensor, times: tuple[float, ...]):
        """The substituted solve of one call: :func:`~.odeint_calls.solve_intervals` with the spec
        (a subclass may hand back other states: harness/capture.py's replay of a model's head)."""
        return solve_intervals(f, z0, times, self.spec)

    def record(self, call: OdeintCall) -> None:
        """Keep a substituted call (the first since the block opened is also ``requested``)."""
        self.solves += 1
        if self.keep:
            self.calls.append(call)
        if self.requested is None:
            self.requested = call

    # -- the interceptions ---------------------------------------------------------------------

    def __enter__(self) -> SubstitutionProbe:
        with _ACTIVE_LOCK:
            if _ACTIVE:
                raise ValueError(PREFIX + "a substitution is already open; substituted() blocks do not nest")
            _ACTIVE.append(self)
        try:
            self._owner = threading.get_ident()
            self._open = True
            for backend in _backends():
                backend.install(self, self._patches)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        self._open = False
        for p in reversed(self._patches):
            p.undo()
        self._patches = []
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)


def _backends() -> list[ModuleType]:
    """The interceptions to install: torchdiffeq's always; torchode's where torchode is installed
    (imported here, so that a model importing it later is covered too); torchdyn's where torchdyn
    is imported already (its import takes seconds; a NeuralODE model has imported it)."""
    out: list[ModuleType] = [torchdiffeq_calls]
    try:
        from . import torchode_calls  # optional dependency torchode: imported only where installed
    except ImportError:  # torchode is not installed: no model can call it either
        pass
    else:
        out.append(torchode_calls)
    if "torchdyn" in sys.modules:  # a model holding a NeuralODE has imported it (torchdyn_calls)
        from . import torchdyn_calls  # optional dependency torchdyn
        out.append(torchdyn_calls)
    return out


def substituted(spec: SolveSpec, *, strict: bool = False, keep: bool = True) -> SubstitutionProbe:
    """A context manager: inside it, every torchdiffeq ``odeint``/``odeint_adjoint`` solve the model
    starts, whatever reference it holds (and torchode's where installed; the module
    docstring says what is refused), is solved with ``spec`` by :func:`robustbench_ode.solve`, over
    each interval of the call's ``t``. ``with substituted(spec) as probe: logits = model(x)``;
    ``probe`` then holds every call's counters, final states and what the model asked for
    (:class:`SubstitutionProbe`). ``strict``: refuse a second solve (one ODE block expected)
    instead of substituting each and summing. ``keep=False``: count the calls (``probe.solves``)
    and keep only the first (``requested``), not every call's states: a training run of thousands
    of solves (robustbench_ode/sweeping.py). Everything put in place is taken away on exit, also
    when the model raises."""
    return SubstitutionProbe(spec, strict=strict, keep=keep)
