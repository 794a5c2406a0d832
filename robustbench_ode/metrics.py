"""Per-model robustness measurements that need the trained model, not only the tables.

Most robustness metrics are read off the results table (see :mod:`robustbench_ode.summary`). Drift
needs the final states themselves, so it is measured here, once per trained model, right after
training, and stored as a column of the train-configuration row.

Drift: the mean over test samples of ``||z_train(T) - z_ref(T)|| / ||z_ref(T)||``, where
``z_train`` is the ODE block's final state under the train configuration and ``z_ref`` under the
reference solve. A model that learned an ODE has drift near 0; one that learned the discrete map
(a ResNet) has drift of order 1.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from .datasets import DataSplits
from .evaluation import evaluate
from .models import SolveSpec
from .status import Status

# Guards the relative distance against a final state of (near) zero norm.
_EPS = 1e-12


def reference_spec(solver: str, tol: float, max_steps: int) -> SolveSpec:
    return SolveSpec(solver, rtol=tol, atol=tol, max_steps=max_steps)


def mark_reference(points: list, spec: SolveSpec) -> list:
    """Flag the test point equal to the reference solve, appending one if the grid lacks it.

    ``points`` are :class:`robustbench_ode.cell.TestPoint`; a list in, a new list out.
    """
    key = (spec.solver, spec.steps, spec.rtol)
    out, found = [], False
    for p in points:
        if (p.spec.solver, p.spec.steps, p.spec.rtol) == key and not found:
            p, found = replace(p, is_reference=True), True
        out.append(p)
    if not found:
        out.append(type(points[0])(spec, None, False, True))
    return out


@torch.no_grad()
def final_states(model: torch.nn.Module, data: DataSplits, spec: SolveSpec, batch_size: int,
                 device: str = "cpu") -> tuple[torch.Tensor | None, Status]:
    """The ODE block's final states on the test split, batched; None on a failed solve."""
    model.eval()
    parts = []
    for start in range(0, len(data.x_test), batch_size):
        x = data.prepare(data.x_test[start:start + batch_size].to(device))
        z, stats = model.final_state(x, spec)
        if stats.status is not Status.OK:
            return None, stats.status
        parts.append(z.flatten(1).cpu())
    return torch.cat(parts), Status.OK


def relative_distance(z: torch.Tensor, z_ref: torch.Tensor) -> float:
    """Mean over rows of ``||z - z_ref|| / ||z_ref||`` (rows flattened)."""
    z, z_ref = z.flatten(1).double(), z_ref.flatten(1).double()
    dist = (z - z_ref).norm(dim=1) / z_ref.norm(dim=1).clamp_min(_EPS)
    return float(dist.mean())


def drift(model: torch.nn.Module, data: DataSplits, spec: SolveSpec, ref: SolveSpec,
          batch_size: int, device: str = "cpu") -> dict[str, Any]:
    """``{"drift": value}`` on the test split, solving both configurations; NaN when either fails.
    The harness gets the states from its evaluation instead (:func:`drift_between`)."""
    z, _ = final_states(model, data, spec, batch_size, device)
    z_ref = final_states(model, data, ref, batch_size, device)[0] if z is not None else None
    return drift_between(z, z_ref)


def drift_between(z: torch.Tensor | None, z_ref: torch.Tensor | None) -> dict[str, Any]:
    """``{"drift": value}`` from final states already computed; NaN when either is missing."""
    if z is None or z_ref is None:
        return {"drift": float("nan")}
    return {"drift": relative_distance(z, z_ref)}


def evaluate_with_drift(model: torch.nn.Module, data: DataSplits, points: list, batch_size: int,
                        device: str = "cpu") -> list[dict[str, Any]]:
    """Each test point evaluated (``points`` are :class:`robustbench_ode.cell.TestPoint`); the
    train point's row also gets the drift to the reference point, from the states the two
    evaluations kept. A point whose evaluation raises gets the exception in place of its row."""
    rows: list = []
    finals: dict[str, torch.Tensor | None] = {}
    train_row = None
    for point in points:
        keep = [] if point.is_train or point.is_reference else None
        try:
            row = evaluate(model, data, point.spec, batch_size, device, states=keep)
        except Exception as exc:  # noqa: BLE001 - the caller turns it into a status
            rows.append(exc)
            continue
        z = torch.cat(keep) if keep else None
        if point.is_train:
            finals["train"], train_row = z, row
        if point.is_reference:
            finals["ref"] = z
        rows.append(row)
    if train_row is not None and any(p.is_reference for p in points):
        train_row.update(drift_between(finals.get("train"), finals.get("ref")))
    return rows
