"""torchdiffeq under solver substitution (:mod:`.substitution`): the interception at torchdiffeq's
own dispatch, so that every solve is reached whatever reference to ``odeint`` the model holds.

Every torchdiffeq solve, ``odeint`` and ``odeint_adjoint`` alike, starts with
``_check_inputs(func, y0, t, rtol, atol, method, options, event_fn, SOLVERS)`` (a global of the
modules ``torchdiffeq._impl.odeint`` and ``torchdiffeq._impl.adjoint``), then looks its method up
in the solver table ``SOLVERS``. While a substitution is open, :func:`install` puts three things in
place (and the substitution takes them away on exit, also on an exception):

- ``_check_inputs`` in both modules is wrapped: called by ``odeint`` or ``odeint_adjoint`` for
  the model (in the block's thread, not from this package's code, not in a backward pass), it
  solves the call with the spec right there (:func:`substitute`: the checks, the solve, the
  record) and hands back the inputs with the method :data:`MARKER` and the solution in the
  options;
- :data:`MARKER` is a solver in ``SOLVERS`` (:class:`HandBack`) whose ``integrate`` returns that
  solution, so ``odeint`` returns it as it returns its own (a tuple state's tuple as it is);
- ``odeint_adjoint`` then calls ``OdeintAdjointMethod.apply``: the adjoint module's global is
  wrapped (:class:`AdjointHandBack`) so that a marked call returns the solution, with the gradient
  of the substituted solve (``spec.adjoint`` decides which), instead of running torchdiffeq's
  adjoint.

The function objects themselves are not replaced, so a reference to them anywhere (a module
global, ``self.odeint`` set in ``__init__``, a closure, a default argument, a container, a
``functools.partial``, a helper of the model's own) reaches the same dispatch. The one caller of
``_check_inputs`` that is refused: ``odeint_dense``, whose result is a dense-output function of
dopri5's own interpolant. An event (``event_fn``, ``odeint_event``) is refused by the checks.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..models.fields import prepared
from .odeint_calls import (
    ADJOINT_KWARGS,
    OdeintCall,
    Patch,
    Probe,
    check_options,
    check_state,
    check_times,
    from_package,
    graph_task_id,
    patch,
    refuse,
    split_state,
)

MARKER = "robustbench_ode_substituted"  # the solver name a substituted call hands to odeint


class HandBack:
    """The solver :data:`MARKER` names in torchdiffeq's table while a substitution is open: it
    returns the solution the substitution computed (odeint builds it as it builds any solver)."""

    def __init__(self, *, solution: Any, **_: Any) -> None:
        self.solution = solution

    def integrate(self, t: torch.Tensor) -> Any:
        return self.solution


class AdjointHandBack:
    """torchdiffeq's ``OdeintAdjointMethod`` as ``odeint_adjoint`` calls it (``apply``), except
    that a call the substitution solved returns that solution instead of running the adjoint."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def apply(self, shapes, func, y0, t, rtol, atol, method, options, *rest):
        if method == MARKER:
            return options["solution"]
        return self.original.apply(shapes, func, y0, t, rtol, atol, method, options, *rest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class Field(nn.Module):
    """``func`` as the package's solvers call it, with torchdiffeq's calling convention: t a 0-dim
    tensor of y's dtype, tuple states flattened. An ``nn.Module`` so the package's adjoint finds
    func's parameters through it. While func runs, a solve it starts is the model's again (a
    nested ODE, refused)."""

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


def install(probe: Probe, patches: list[Patch]) -> None:
    """Put the interception in place (module docstring); each step is appended to ``patches``."""
    impl_odeint = importlib.import_module("torchdiffeq._impl.odeint")
    impl_adjoint = importlib.import_module("torchdiffeq._impl.adjoint")
    table = impl_odeint.SOLVERS  # the one table both modules pass to _check_inputs
    methods = frozenset(name for name in table if name != MARKER)
    entries = {impl_odeint.odeint.__code__: "odeint", impl_adjoint.odeint_adjoint.__code__: "odeint_adjoint"}
    patch(patches, table, MARKER, lambda _: HandBack)
    for module in (impl_odeint, impl_adjoint):
        patch(patches, vars(module), "_check_inputs",
              lambda original: dispatch(probe, original, entries, methods))
    patch(patches, vars(impl_adjoint), "OdeintAdjointMethod", AdjointHandBack)


def dispatch(probe: Probe, check_inputs: Callable, entries: dict[Any, str],
             methods: frozenset[str]) -> Callable:
    """torchdiffeq's ``_check_inputs``, substituting the model's solves (module docstring)."""

    @functools.wraps(check_inputs)
    def _check_inputs(func, y0, t, rtol, atol, method, options, event_fn, SOLVERS):  # noqa: N803
        caller = sys._getframe(1)  # odeint, odeint_adjoint or odeint_dense
        if not probe.intercepts() or graph_task_id() >= 0 or from_package(caller.f_back):
            # Outside the block, another thread, a backward pass, or this package's own solvers.
            return check_inputs(func, y0, t, rtol, atol, method, options, event_fn, SOLVERS)
        entry = entries.get(caller.f_code)
        if entry is None:
            raise refuse(f"{caller.f_code.co_name} cannot be substituted: it returns torchdiffeq's own "
                         "dense output (dopri5's interpolant), which the substituted solve does not "
                         "make; call odeint at the times you need")
        recorded = {}
        if entry == "odeint_adjoint":  # as torchdiffeq filled them in (copies: it goes on editing)
            found = caller.f_locals
            recorded = {k: dict(v) if isinstance(v, dict) else v for k in ADJOINT_KWARGS
                        if (v := found.get(k)) is not None or k in found}
        out = substitute(probe, entry, func, y0, t, rtol, atol, method, options, event_fn, methods,
                         recorded)
        # odeint_adjoint reads options["norm"] before it hands on: a placeholder it never calls.
        return None, func, y0, t, rtol, atol, MARKER, {"solution": out, "norm": None}, None, False

    return _check_inputs


def substitute(probe: Probe, entry: str, func, y0, t, rtol, atol, method, options,
               event_fn, methods: frozenset[str], adjoint_kwargs: dict[str, Any]):
    """One model call: checked (one-line refusals), solved with the probe's spec over the
    intervals of ``t``, recorded in the probe; returned shaped as torchdiffeq returns it."""
    probe.admit(entry)
    options = check_options(method, options, event_fn, methods)
    times = check_times(t)
    z0, shapes = check_state(y0)
    spec = probe.spec
    if spec.adjoint and not isinstance(func, nn.Module):
        raise refuse("spec.adjoint needs func to be an nn.Module (its parameters are found through "
                     "it; adjoint_params cannot be passed on)")
    fld = Field(probe, func, shapes)
    with probe.pass_through(), prepared(func, y0):
        flat, total, _ = probe.solve_intervals(fld, z0, times)
    if shapes is None:
        out = flat
    else:
        parts = split_state(flat, shapes)
        out = tuple(s.reshape(len(times), *shape) for s, shape in zip(parts, shapes))
    detached = out.detach() if shapes is None else tuple(o.detach() for o in out)
    probe.record(OdeintCall(entry, method, options, rtol, atol, times, t.dtype, total, detached,
                            adjoint_kwargs, field=fld if shapes is None else None))
    return out
