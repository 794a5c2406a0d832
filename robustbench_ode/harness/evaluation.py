"""Testing a trained model: one solve configuration on the whole test split (:func:`evaluate`; a
model that calls torchdiffeq itself, under solver substitution: :func:`evaluate_plain`), and
every point of a test grid with the drift between the train configuration and the reference
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
from ..solvers import SolveStats
from .grid import TestPoint
from .substitution import substituted

# Guards the relative distance against a final state of (near) zero norm.
_EPS = 1e-12


class Tally:
    """The scores of one test configuration, batch by batch: what :func:`evaluate` and
    :func:`evaluate_plain` share, so that their rows mean the same."""

    def __init__(self, data: DataSplits, spec: SolveSpec, states: list[torch.Tensor] | None) -> None:
        self.data, self.spec, self.states = data, spec, states
        self.regression = data.task == "regression"
        self.correct, self.loss_sum, self.batches = 0, 0.0, 0
        self.nfe, self.steps, self.acc, self.rej = 0, 0, 0, 0
        self.status, self.message = Status.OK, ""
        self.t0 = time.perf_counter()

    def batches_of(self, batch_size: int, device: str):
        """(model input, targets) per batch of the test split, moved to ``device`` and prepared."""
        data = self.data
        for start in range(0, len(data.y_test), batch_size):
            x = data.prepare(data.x_test[start:start + batch_size].to(device, non_blocking=True))
            yield x, data.y_test[start:start + batch_size].to(device, non_blocking=True)

    def add(self, stats: SolveStats, y: torch.Tensor, logits=None, final=None) -> bool:
        """One batch: its solve's counters, and (when the solve is ok; ``logits`` and ``final``
        are then called for) its scores and the final states kept for drift. Returns whether ok."""
        self.batches += 1
        self.nfe, self.steps = self.nfe + stats.nfe, self.steps + stats.steps
        self.acc, self.rej = self.acc + (stats.accepted or 0), self.rej + (stats.rejected or 0)
        if stats.status is not Status.OK:
            if self.status.combine(stats.status) is not self.status:
                self.status, self.message = stats.status, stats.message
            return False
        out = logits()
        if self.states is not None:
            self.states.append(final().flatten(1).cpu())
        if self.regression:  # summed here, divided by the element count below
            self.loss_sum += float(F.mse_loss(out.double(), y.double(), reduction="sum"))
        else:
            self.correct += int((out.argmax(1) == y).sum())
            self.loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
        return True

    def row(self) -> dict[str, Any]:
        data, n = self.data, len(self.data.y_test)
        ok, batches = self.status is Status.OK, max(self.batches, 1)
        if self.regression:
            mse = self.loss_sum / data.y_test.numel() if ok else float("nan")
            scores = {"accuracy": float("nan"), "mse": mse, "loss": mse}
        else:
            scores = {"accuracy": self.correct / n if ok else float("nan"),
                      "loss": self.loss_sum / n if ok else float("nan"),
                      "chance": float(torch.bincount(data.y_test).max()) / n if n else float("nan")}
        if self.states is not None and not ok:
            self.states.clear()
        adaptive = self.spec.adaptive
        return {**scores, "nfe": self.nfe / batches, "steps_taken": self.steps / batches,
                "accepted": self.acc / batches if adaptive else None,
                "rejected": self.rej / batches if adaptive else None,
                "status": self.status.value, "message": self.message, "n_test": n,
                "eval_seconds": round(time.perf_counter() - self.t0, 4)}


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
    tally = Tally(data, spec, states)
    for x, y in tally.batches_of(batch_size, device):
        z, stats = model.final_state(x, spec)
        tally.add(stats, y, lambda z=z: model.logits(z), lambda z=z: z)
    return tally.row()


@torch.no_grad()
def evaluate_plain(model: torch.nn.Module, data: DataSplits, spec: SolveSpec, batch_size: int,
                   device: str = "cpu", states: list[torch.Tensor] | None = None, *,
                   strict: bool = False) -> dict[str, Any]:
    """:func:`evaluate` for a model that calls torchdiffeq itself: ``model(x) -> logits`` run
    under :func:`~.substitution.substituted` with ``spec``, batch by batch. The row has the same
    keys and meaning; ``nfe``/``steps_taken`` are per batch forward pass, the counters of all its
    odeint calls summed (several ODE blocks: the cost of the whole forward pass). ``states``:
    each batch's :meth:`~.substitution.SubstitutionProbe.drift_states` (z(T) for one block, the
    blocks' concatenated for several). The model must make at least one odeint call per batch
    and return one tensor, else ValueError / TypeError."""
    model.eval()
    tally = Tally(data, spec, states)
    with substituted(spec, strict=strict) as probe:
        for x, y in tally.batches_of(batch_size, device):
            probe.reset()
            logits = model(x)
            if probe.n_calls == 0:
                raise ValueError(f"{type(model).__name__} made no torchdiffeq odeint call in forward: "
                                 "nothing to substitute")
            if not torch.is_tensor(logits):
                raise TypeError(f"{type(model).__name__}(x) returned {type(logits).__name__}: a plain "
                                "torchdiffeq model must return one tensor of logits")
            tally.add(probe.stats, y, lambda out=logits: out, probe.drift_states)
    return tally.row()


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
                    device: str = "cpu", *, plain: bool = False) -> list[dict[str, Any] | Exception]:
    """Each test point evaluated (``plain``: a model that calls torchdiffeq itself, by
    :func:`evaluate_plain`); the train point's row also gets the drift to the reference point,
    from the states the two evaluations kept. A point whose evaluation raises gets the exception
    in place of its row."""
    run = evaluate_plain if plain else evaluate
    rows: list = []
    finals: dict[str, torch.Tensor | None] = {}
    train_row = None
    for point in points:
        keep = [] if point.is_train or point.is_reference else None
        try:
            row = run(model, data, point.spec, batch_size, device, states=keep)
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
