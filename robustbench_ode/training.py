"""The training loop: Adam on cross-entropy (classification) or on the mean squared trajectory
error (time-series regression), one solve per iteration, a per-iteration log."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .acceleration import Clock, HostBatches, autocast, memory_format, prepare_model
from .config import TrainingConfig
from .datasets import DataSplits
from .gradient import FieldCalls, SavedTensors
from .models import ODEClassifier, SolveSpec
from .regularization import regularized_forward
from .status import Status


@dataclass
class TrainOutcome:
    status: Status = Status.OK
    message: str = ""
    log: list[dict[str, Any]] = field(default_factory=list)
    # Set when the train solve was adapted during training (adaptation.py): the final values.
    adapted: bool = False
    final_steps: int | None = None
    final_tol: float | None = None


class BatchStream:
    """Full batches drawn from consecutive seeded permutations of the training set.

    Every batch has exactly ``batch_size`` samples (an epoch's remainder continues into the next
    permutation), so accuracy is always over the samples actually seen.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.gen = torch.Generator().manual_seed(int(seed))
        self.buffer = torch.empty(0, dtype=torch.long)

    def next(self) -> torch.Tensor:
        while self.buffer.numel() < self.batch_size:
            self.buffer = torch.cat([self.buffer, torch.randperm(self.n, generator=self.gen)])
        idx, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size:]
        return idx

    def state(self) -> dict[str, torch.Tensor]:
        """Generator state and unconsumed indices: enough to continue the exact same batches."""
        return {"gen": self.gen.get_state(), "buffer": self.buffer.clone()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.gen.set_state(state["gen"])
        self.buffer = state["buffer"].clone()


def train(model: ODEClassifier, data: DataSplits, spec: SolveSpec, cfg: TrainingConfig, *,
          seed: int, device: str = "cpu", progress: bool = False, desc: str = "",
          resume: dict[str, Any] | None = None,
          on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
          adapt_from: float | None = None) -> TrainOutcome:
    """``resume`` is a state a previous run handed to ``on_checkpoint`` (called every
    ``cfg.checkpoint_every`` iterations); continuing from it gives the uninterrupted result, the
    adaptation controller's state included. ``adapt_from``: with ``cfg.adaptation`` and no
    checkpoint, the step count / tolerance to continue from instead of the initial one."""
    outcome = TrainOutcome()
    controller = None
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    stream = BatchStream(len(data.y_train), cfg.batch_size, seed)
    start = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        stream.load_state(resume["stream"])
        outcome.log, start = list(resume["log"]), int(resume["iteration"])
    every = getattr(cfg, "checkpoint_every", 0)
    batches, clock = HostBatches(data, cfg.batch_size, device), Clock(device)
    # autograd re-evaluates nothing in the backward pass (0 by construction); the adjoint's
    # evaluations are counted by a hook, which costs a little on every field call
    calls = FieldCalls(model) if getattr(cfg, "gradient", "autograd") == "adjoint" else None
    saved, record = SavedTensors(), getattr(cfg, "record_memory", True)
    regularization = getattr(cfg, "regularization", None)
    prepare_model(model, cfg)
    regression = data.task == "regression"
    model.train()
    bar = tqdm(range(start, cfg.iterations), desc=desc, leave=False, disable=not progress, unit="it")
    for it in bar:
        idx = stream.next()
        x, y = batches.get(idx)
        x = memory_format(data.prepare(x), cfg)
        check: dict[str, Any] = {}
        if cfg.adaptation is not None:
            if controller is None:
                from .adaptation import make_controller  # config imports adaptation: no cycle here

                controller = make_controller(cfg.adaptation, model, x, spec)
                if resume is not None and resume.get("adaptation"):
                    controller.load_state(resume["adaptation"])
                elif adapt_from is not None:
                    controller.restore(adapt_from)
            # on the iteration grid, not relative to the start: a resumed run checks where an
            # uninterrupted one does
            if it > 0 and it % cfg.adaptation.check_every == 0:
                check = controller.check(model, x, y, it).columns()
            spec = controller.spec()
            check.update(steps_in_force=spec.steps, tol_in_force=spec.rtol)
        clock.start()
        recording = saved.recording(model.parameters()) if record else contextlib.nullcontext()
        with autocast(cfg, device), recording:
            if regularization is not None:
                logits, stats, penalties, penalty = regularized_forward(
                    model, x, spec, regularization, torch.Generator().manual_seed(seed * 1_000_003 + it))
                check.update(penalties)
            else:
                logits, stats = model(x, spec)
            if regression:  # mean over samples, observation times and state dimensions
                loss = F.mse_loss(logits.float(), y)
            else:
                loss = F.cross_entropy(logits.float(), y)
            if regularization is not None:
                check["task_loss"] = loss.item()  # "loss" below is the penalised one
                loss = loss + penalty
        opt.zero_grad(set_to_none=True)
        forward_calls = calls.calls if calls is not None else 0
        loss.backward()
        saved.release()
        loss_value = loss.item()
        if regression:
            scores = {"accuracy": math.nan, "mse": loss_value}
        else:
            scores = {"accuracy": (logits.argmax(1) == y).float().mean().item()}
        backward = calls.since(forward_calls) if calls is not None else 0
        row = {"iteration": it, "loss": loss_value, **scores,
               "nfe": stats.nfe, "nfe_backward": backward, "steps": stats.steps,
               "saved_mb": saved.mb if record else None,
               "solve_status": stats.status.value, **check}
        if not math.isfinite(loss_value) or stats.status is not Status.OK:
            row["seconds"] = clock.stop()
            outcome.log.append(row)
            outcome.status = Status.DIVERGED if stats.status in (Status.OK, Status.NON_FINITE) \
                else stats.status
            outcome.message = f"iteration {it}: loss {loss_value}, solve {stats.status.value}"
            break
        opt.step()
        row["seconds"] = clock.stop()
        row["images_per_s"] = len(idx) / row["seconds"] if row["seconds"] > 0 else None
        row["peak_gpu_mb"] = clock.peak_memory_mb()
        outcome.log.append(row)
        if progress and it % 50 == 0:
            bar.set_postfix(loss=f"{loss_value:.3f}", nfe=stats.nfe)
        if on_checkpoint is not None and every and (it + 1) % every == 0 and it + 1 < cfg.iterations:
            on_checkpoint({"iteration": it + 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                           "stream": stream.state(), "log": outcome.log,
                           "adaptation": controller.state() if controller is not None else None})
    bar.close()
    if calls is not None:
        calls.close()
    saved.release()
    if controller is not None:
        outcome.adapted, outcome.final_steps, outcome.final_tol = True, spec.steps, spec.rtol
    return outcome
