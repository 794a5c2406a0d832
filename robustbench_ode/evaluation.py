"""Testing a trained model with one solve configuration on the whole test split."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from .datasets import DataSplits
from .models import ODEClassifier, SolveSpec
from .status import Status


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
            if stats.status.severity > status.severity:
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
                  "loss": loss_sum / n if ok else float("nan")}
    if states is not None and not ok:
        states.clear()
    adaptive = spec.adaptive
    return {**scores, "nfe": nfe / batches, "steps_taken": steps / batches,
            "accepted": acc / batches if adaptive else None,
            "rejected": rej / batches if adaptive else None,
            "status": status.value, "message": message, "n_test": n,
            "eval_seconds": round(time.perf_counter() - t0, 4)}
