"""The training loop, once for every path: Adam on cross-entropy (classification) or on the mean
squared trajectory error (time-series regression), one solve per iteration, a per-iteration log.

The parts plug in (torchode's and diffrax's way: one loop, strategies passed to it):

- the forward (:mod:`.forward`): one model, plain or regularised, or S seeds as one stack;
- the controller (:mod:`.adaptation`): none, step or tolerance adaptation (single models);
- the probes (:mod:`.probes`): field calls of the adjoint's backward pass, saved tensors.

Each member (a seed) has its own data, batch stream, loss, divergence, log and checkpoint; a
member whose loss or state becomes non-finite stops at that iteration with the parameters it
had, the others go on. The loss summed over members gives each member its own gradient.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..config import TrainingConfig
from ..core.status import Status
from ..datasets.base import DataSplits
from ..models.spec import SolveSpec
from .acceleration import Clock, HostBatches, memory_format
from .adaptation import make_controller
from .density import density_losses
from .forward import Forwarded, PlainForward, StackedForward
from .log import log_row
from .probes import SavedTensors


@dataclass
class TrainOutcome:
    status: Status = Status.OK
    message: str = ""
    log: list[dict[str, Any]] = field(default_factory=list)
    # Set when the train solve was adapted during training: the final values.
    adapted: bool = False
    final_steps: int | None = None
    final_tol: float | None = None
    state_dict: dict[str, torch.Tensor] | None = None  # the trained (or last finite) parameters


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


@dataclass
class Member:
    """One seed of a training: its data and seed; ``resume`` a checkpoint state to continue from,
    ``on_checkpoint`` where to hand this member's checkpoints (None: none are written)."""

    data: DataSplits
    seed: int
    resume: dict[str, Any] | None = None
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None


def member_losses(outputs: torch.Tensor, y: torch.Tensor, regression: bool) -> torch.Tensor:
    """Each member's mean loss (S,): cross-entropy of logits (S, B, K), or the squared trajectory
    error (S, B, K, d) averaged over samples, observation times and state dimensions."""
    s = outputs.shape[0]
    if regression:
        return F.mse_loss(outputs.float(), y, reduction="none").reshape(s, -1).mean(1)
    return F.cross_entropy(outputs.flatten(0, 1).float(), y.flatten(), reduction="none").view(s, -1).mean(1)


def stop_status(loss: float, solve: Status) -> Status | None:
    """The divergence rule: why a member stops at this iteration, or None to go on."""
    if math.isfinite(loss) and solve is Status.OK:
        return None
    return Status.DIVERGED if solve in (Status.OK, Status.NON_FINITE) else solve


def train(forward: PlainForward | StackedForward, members: list[Member], spec: SolveSpec,
          cfg: TrainingConfig, *, device: str = "cpu", progress: bool = False,
          desc: str = "") -> list[TrainOutcome]:
    """Train every member for ``cfg.iterations``; one outcome per member, with its log and final
    parameters. Resuming from the members' checkpoints (all at one iteration) gives the
    uninterrupted result, the adaptation controller's state included."""
    n = len(members)
    outcomes = [TrainOutcome() for _ in members]
    streams = [BatchStream(len(m.data.y_train), cfg.batch_size, m.seed) for m in members]
    batches = [HostBatches(m.data, cfg.batch_size, device) for m in members]
    opt = torch.optim.Adam(forward.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    controller, start = None, 0
    resumes = [m.resume for m in members]
    if any(r is not None for r in resumes):
        if any(r is None for r in resumes) or len({int(r["iteration"]) for r in resumes}) != 1:
            raise ValueError("members of one training resume from checkpoints at one iteration")
        for i, r in enumerate(resumes):
            forward.load_member(i, r["model"])
            streams[i].load_state(r["stream"])
            outcomes[i].log = list(r["log"])
        opt.load_state_dict(forward.stack_optimizer([r["optimizer"] for r in resumes]))
        start = int(resumes[0]["iteration"])
    every = cfg.checkpoint_every
    regression = members[0].data.task == "regression"
    density = members[0].data.task == "density"  # outputs: each sample's NLL (training/density.py)
    clock, saved = Clock(device), SavedTensors()
    calls = forward.calls
    active = list(range(n))
    forward.train()
    bar = tqdm(range(start, cfg.iterations), desc=desc, leave=False, disable=not progress, unit="it")
    for it in bar:
        xs, ys = zip(*(b.get(s.next()) for b, s in zip(batches, streams)))
        prepared = [memory_format(m.data.prepare(xi), cfg) for m, xi in zip(members, xs)]
        # one member: a view, so a channels-last batch stays channels-last
        x = prepared[0].unsqueeze(0) if n == 1 else torch.stack(prepared)
        y = ys[0].unsqueeze(0) if n == 1 else torch.stack(ys)
        check: dict[str, Any] = {}
        if cfg.adaptation is not None:  # single models only (never stacked)
            if controller is None:
                controller = make_controller(cfg.adaptation, forward.model, x[0], spec)
                if resumes[0] is not None and resumes[0].get("adaptation"):
                    controller.load_state(resumes[0]["adaptation"])
            # on the iteration grid, not relative to the start: a resumed run checks where an
            # uninterrupted one does
            if it > 0 and it % cfg.adaptation.check_every == 0:
                check = controller.check(forward.model, x[0], y[0], it).columns()
            spec = controller.spec()
            check.update(steps_in_force=spec.steps, tol_in_force=spec.rtol)
        record = cfg.record_memory and it % cfg.memory_every == 0
        clock.start()
        with saved.recording(forward.parameters()) if record else contextlib.nullcontext():
            out: Forwarded = forward(x, spec, it)
            losses = density_losses(out.outputs) if density else member_losses(out.outputs, y, regression)
            task = losses
            if out.penalty is not None:
                losses = losses + out.penalty
        opt.zero_grad(set_to_none=True)
        forward_calls = calls.calls if calls is not None else 0
        losses.sum().backward()  # each member's parameters get its own loss's gradient
        saved.release()
        backward = calls.since(forward_calls) if calls is not None else 0
        with torch.no_grad():
            if regression or density:
                scores = task.detach()
            else:
                scores = (out.outputs.argmax(-1) == y).float().flatten(1).mean(1)
            loss_v, task_v, score_v = torch.stack([losses.detach(), task.detach(), scores]).tolist()
        saved_mb = saved.mb / forward.size if record else None
        rows, stopped = {}, []
        for i in active:
            row = log_row(iteration=it, loss=loss_v[i],
                          accuracy=math.nan if regression or density else score_v[i],
                          mse=score_v[i] if regression else None,
                          nll=score_v[i] if density else None,
                          nfe=out.stats.nfe, nfe_backward=backward, steps=out.stats.steps,
                          saved_mb=saved_mb, solve_status=out.statuses[i].value, **check,
                          **out.extras[i])
            if out.penalty is not None:
                row["task_loss"] = task_v[i]
            rows[i] = row
            why = stop_status(loss_v[i], out.statuses[i])
            if why is not None:
                stopped.append(i)
                outcomes[i].status = why
                outcomes[i].message = f"iteration {it}: loss {loss_v[i]}, solve {out.statuses[i].value}"
                outcomes[i].state_dict = forward.member_state(i)  # before the step
        if len(stopped) < len(active):
            opt.step()
        seconds = clock.stop() / len(active)
        for i in active:
            rows[i]["seconds"] = seconds
            if i not in stopped:
                rows[i]["images_per_s"] = cfg.batch_size / seconds if seconds > 0 else None
                rows[i]["peak_gpu_mb"] = clock.peak_memory_mb()
            outcomes[i].log.append(rows[i])
        active = [i for i in active if i not in stopped]
        if not active:
            break
        if progress and it % 50 == 0:
            bar.set_postfix(loss=f"{loss_v[active[0]]:.3f}", nfe=out.stats.nfe)
        if every and (it + 1) % every == 0 and it + 1 < cfg.iterations:
            for i in active:
                if members[i].on_checkpoint is not None:
                    members[i].on_checkpoint({
                        "iteration": it + 1, "model": forward.member_state(i),
                        "optimizer": forward.member_optimizer(opt, i), "stream": streams[i].state(),
                        "log": outcomes[i].log,
                        "adaptation": controller.state() if controller is not None else None})
    bar.close()
    forward.close()
    saved.release()
    for i in active:
        outcomes[i].state_dict = forward.member_state(i)
    if controller is not None:
        final = controller.spec()
        outcomes[0].adapted, outcomes[0].final_steps, outcomes[0].final_tol = True, final.steps, final.rtol
    return outcomes



def train_model(model, data: DataSplits, spec: SolveSpec, cfg: TrainingConfig, *, seed: int = 0,
                device: str = "cpu", progress: bool = False,
                resume: dict[str, Any] | None = None,
                on_checkpoint: Callable[[dict[str, Any]], None] | None = None) -> TrainOutcome:
    """Train one model (a package model, or one with the interface of
    :mod:`robustbench_ode.models.interface`) with the loop above: the convenience for a single
    model outside a suite."""
    (outcome,) = train(PlainForward(model, cfg, device, seed), [Member(data, seed, resume, on_checkpoint)],
                       spec, cfg, device=device, progress=progress)
    return outcome
