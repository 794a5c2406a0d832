"""Testing a trained model: one solve configuration on the whole test split (:func:`evaluate`),
and every point of a test grid with the drift between the train configuration and the reference
(:func:`evaluate_points`).

Drift: the mean over test samples of ``||z_train(T) - z_ref(T)|| / ||z_ref(T)||``, where
``z_train`` is the ODE block's final state under the train configuration and ``z_ref`` under the
reference solve. A model that learned an ODE has drift near 0; one that learned the discrete map
(a ResNet) has drift of order 1. It needs the final states, so it is measured here, from the
states the two evaluations keep, and stored on the train-configuration row.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from ..core.status import Status
from ..datasets.base import DataSplits
from ..models.classifier import ODEClassifier
from ..models.spec import SolveSpec
from .grid import TestPoint

# Guards the relative distance against a final state of (near) zero norm.
_EPS = 1e-12


@torch.no_grad()
def evaluate(model: ODEClassifier, data: DataSplits, spec: SolveSpec, batch_size: int,
             device: str = "cpu", states: list[torch.Tensor] | None = None) -> dict[str, Any]:
    """Accuracy and mean loss over every test sample (the last partial batch counts its own
    size), NFE and steps per batch solve (mean over batches), and the worst status seen. For a
    regression dataset: ``mse``, the mean squared trajectory error over samples, observation
    times and state dimensions (also the ``loss``), and ``accuracy`` NaN.

    ``states``: if given, the final states z(T) of every test sample are appended to it
    (flattened, on the CPU), so drift needs no second solve; emptied if any batch failed."""
    model.eval()
    n = len(data.y_test)
    regression = data.task == "regression"
    correct, loss_sum, nfe, steps, acc, rej, batches = 0, 0.0, 0, 0, 0, 0, 0
    status, message = Status.OK, ""
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        x = data.prepare(data.x_test[start:start + batch_size].to(device, non_blocking=True))
        y = data.y_test[start:start + batch_size].to(device, non_blocking=True)
        z, stats = model.final_state(x, spec)
        batches += 1
        nfe, steps = nfe + stats.nfe, steps + stats.steps
        acc, rej = acc + (stats.accepted or 0), rej + (stats.rejected or 0)
        if stats.status is not Status.OK:
            if status.combine(stats.status) is not status:
                status, message = stats.status, stats.message
            continue
        logits = model.logits(z)
        if states is not None:
            states.append(z.flatten(1).cpu())
        if regression:  # summed here, divided by the element count below
            loss_sum += float(F.mse_loss(logits.double(), y.double(), reduction="sum"))
            continue
        correct += int((logits.argmax(1) == y).sum())
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
    ok = status is Status.OK
    if regression:
        mse = loss_sum / data.y_test.numel() if ok else float("nan")
        scores = {"accuracy": float("nan"), "mse": mse, "loss": mse}
    else:
        scores = {"accuracy": correct / n if ok else float("nan"),
                  "loss": loss_sum / n if ok else float("nan"),
                  "chance": float(torch.bincount(data.y_test).max()) / n if n else float("nan")}
    if states is not None and not ok:
        states.clear()
    adaptive = spec.adaptive
    return {**scores, "nfe": nfe / batches, "steps_taken": steps / batches,
            "accepted": acc / batches if adaptive else None,
            "rejected": rej / batches if adaptive else None,
            "status": status.value, "message": message, "n_test": n,
            "eval_seconds": round(time.perf_counter() - t0, 4)}


def relative_distance(z: torch.Tensor, z_ref: torch.Tensor) -> float:
    """Mean over rows of ``||z - z_ref|| / ||z_ref||`` (rows flattened)."""
    z, z_ref = z.flatten(1).double(), z_ref.flatten(1).double()
    dist = (z - z_ref).norm(dim=1) / z_ref.norm(dim=1).clamp_min(_EPS)
    return float(dist.mean())


def drift_between(z: torch.Tensor | None, z_ref: torch.Tensor | None) -> float:
    """The drift from final states already computed; NaN when either is missing."""
    if z is None or z_ref is None:
        return float("nan")
    return relative_distance(z, z_ref)


def evaluate_points(model: torch.nn.Module, data: DataSplits, points: list[TestPoint], batch_size: int,
                    device: str = "cpu") -> list[dict[str, Any] | Exception]:
    """Each test point evaluated; the train point's row also gets the drift to the reference
    point, from the states the two evaluations kept. A point whose evaluation raises gets the
    exception in place of its row."""
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
        train_row["drift"] = drift_between(finals.get("train"), finals.get("ref"))
    return rows
