"""Checking the diagnostics' arguments: every bad one is a one-line ValueError."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.registry import UnknownNameError
from ..solvers import SOLVERS


def one_line(msg: str) -> ValueError:
    return ValueError(" ".join(str(msg).split()))


def named_solver(name, role: str):
    if not isinstance(name, str):
        raise one_line(f"{role}: give a solver name, got {type(name).__name__}")
    try:
        return SOLVERS.get(name)
    except UnknownNameError as exc:
        raise one_line(f"{role}: {exc}") from None


def check_train(solver: str, steps, tol):
    s = named_solver(solver, "solver")
    if getattr(s, "gridless", False):
        raise one_line(f"solver {solver!r} takes no steps and cannot be a train configuration")
    if steps is not None and tol is not None:
        raise one_line("give the train configuration either steps or tol, not both")
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise one_line(f"steps must be an integer >= 1, got {steps!r}")
        return s, int(steps), None
    if not s.adaptive:
        raise one_line(f"solver {solver!r} is fixed-step: give steps >= 1")
    if tol is None:
        raise one_line(f"solver {solver!r} is adaptive: give steps (a fixed grid) or tol")
    if not (isinstance(tol, (int, float)) and tol > 0 and math.isfinite(tol)):
        raise one_line(f"tol must be a positive number, got {tol!r}")
    return s, None, float(tol)


def check_reference(reference: str, rtol, atol, field):
    s = named_solver(reference, "reference")
    if getattr(s, "gridless", False):
        if getattr(field, "exact_flow", None) is None:
            raise one_line(f"reference {reference!r} needs a field with exact_flow; "
                            f"{type(field).__name__} has none")
        return s, None, None
    if not s.adaptive:
        raise one_line(f"reference {reference!r} is fixed-step: give an adaptive solver with "
                        f"tolerances (default dopri5) or 'exact'")
    atol = rtol if atol is None else atol
    for name, v in (("ref_rtol", rtol), ("ref_atol", atol)):
        if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
            raise one_line(f"{name} must be a positive number, got {v!r}")
    return s, float(rtol), float(atol)


def positive_int(name: str, v, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise one_line(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def check_inputs(field, z0, head, y, t_span):
    if not callable(field):
        raise one_line(f"field must be callable f(t, z), got {type(field).__name__}")
    if not callable(head):
        raise one_line(f"head must be callable head(zT) -> logits, got {type(head).__name__}")
    if not isinstance(z0, torch.Tensor) or z0.dim() < 2 or z0.shape[0] < 1:
        shape = tuple(z0.shape) if isinstance(z0, torch.Tensor) else type(z0).__name__
        raise one_line(f"z0 must be a tensor (B, *state) with B >= 1, got {shape}")
    if not z0.is_floating_point():
        raise one_line(f"z0 must be floating point, got {z0.dtype}")
    if not bool(torch.isfinite(z0).all()):
        raise one_line("z0 contains NaN or inf")
    if y is not None:
        y = torch.as_tensor(y)
        if y.shape != (z0.shape[0],):
            raise one_line(f"y must have shape ({z0.shape[0]},) to match z0, got {tuple(y.shape)}")
    try:
        t0, t1 = (float(t) for t in t_span)
    except (TypeError, ValueError):
        raise one_line(f"t_span must be two numbers (t0, t1), got {t_span!r}") from None
    if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
        raise one_line(f"t_span must have t0 < t1, both finite, got {t_span!r}")
    return y, (t0, t1)
