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

from ..config import TrainingConfig
from ..core.progress import Enabled, training_bar
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


class _Training:
    """One call of :func:`train`: the members' state (streams, batches, optimizer, outcomes,
    controller) and the named steps of an iteration, composed by :func:`train`."""

    def __init__(self, forward: PlainForward | StackedForward, members: list[Member], spec: SolveSpec,
                 cfg: TrainingConfig) -> None:
        self.forward, self.members, self.spec, self.cfg = forward, members, spec, cfg
        device = forward.device
        self.outcomes = [TrainOutcome() for _ in members]
        self.streams = [BatchStream(len(m.data.y_train), cfg.batch_size, m.seed) for m in members]
        self.batches = [HostBatches(m.data, cfg.batch_size, device) for m in members]
        self.opt = torch.optim.Adam(forward.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.controller = None
        self.regression = members[0].data.task == "regression"
        self.density = members[0].data.task == "density"  # outputs: each sample's NLL (training/density.py)
        self.clock, self.saved = Clock(device), SavedTensors()
        self.active = list(range(len(members)))
        self.start = self._resume()

    def _resume(self) -> int:
        """Continue from the members' checkpoints (all at one iteration); the first iteration."""
        resumes = [m.resume for m in self.members]
        if all(r is None for r in resumes):
            return 0
        if any(r is None for r in resumes) or len({int(r["iteration"]) for r in resumes}) != 1:
            raise ValueError("members of one training resume from checkpoints at one iteration")
        for i, r in enumerate(resumes):
            self.forward.load_member(i, r["model"])
            self.streams[i].load_state(r["stream"])
            self.outcomes[i].log = list(r["log"])
        self.opt.load_state_dict(self.forward.stack_optimizer([r["optimizer"] for r in resumes]))
        return int(resumes[0]["iteration"])

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's next batch, stacked (S, B, ...)."""
        n = len(self.members)
        xs, ys = zip(*(b.get(s.next()) for b, s in zip(self.batches, self.streams)))
        prepared = [memory_format(m.data.prepare(xi), self.cfg) for m, xi in zip(self.members, xs)]
        # one member: a view, so a channels-last batch stays channels-last
        x = prepared[0].unsqueeze(0) if n == 1 else torch.stack(prepared)
        y = ys[0].unsqueeze(0) if n == 1 else torch.stack(ys)
        return x, y

    def adapt(self, it: int, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        """The adaptation controller's check (single models only, never stacked): the log's
        columns, and the train solve in force from now on."""
        cfg = self.cfg
        if cfg.adaptation is None:
            return {}
        check: dict[str, Any] = {}
        if self.controller is None:
            self.controller = make_controller(cfg.adaptation, self.forward.model, x[0], self.spec)
            resume = self.members[0].resume
            if resume is not None and resume.get("adaptation"):
                self.controller.load_state(resume["adaptation"])
        # on the iteration grid, not relative to the start: a resumed run checks where an
        # uninterrupted one does
        if it > 0 and it % cfg.adaptation.check_every == 0:
            check = self.controller.check(self.forward.model, x[0], y[0], it).columns()
        self.spec = self.controller.spec()
        check.update(steps_in_force=self.spec.steps, tol_in_force=self.spec.rtol)
        return check

    def gradient(self, it: int, x: torch.Tensor, y: torch.Tensor):
        """Forward, loss and backward pass: (forwarded, losses, task losses, backward field
        calls, saved MB per member or None)."""
        record = self.cfg.record_memory and it % self.cfg.memory_every == 0
        calls, saved = self.forward.calls, self.saved
        self.clock.start()
        with saved.recording(self.forward.parameters()) if record else contextlib.nullcontext():
            out: Forwarded = self.forward(x, self.spec, it)
            task = (density_losses(out.outputs) if self.density
                    else member_losses(out.outputs, y, self.regression))
            losses = task + out.penalty if out.penalty is not None else task
        self.opt.zero_grad(set_to_none=True)
        forward_calls = calls.calls if calls is not None else 0
        losses.sum().backward()  # each member's parameters get its own loss's gradient
        saved.release()
        backward = calls.since(forward_calls) if calls is not None else 0
        return out, losses, task, backward, saved.mb / self.forward.size if record else None

    def log(self, it: int, y: torch.Tensor, out: Forwarded, losses: torch.Tensor, task: torch.Tensor,
            backward: int, saved_mb: float | None,
            check: dict[str, Any]) -> tuple[dict[int, dict], list[int]]:
        """Each active member's log row, and the members that stop at this iteration (with the
        parameters they had before its step)."""
        with torch.no_grad():
            if self.regression or self.density:
                scores = task.detach()
            else:
                scores = (out.outputs.argmax(-1) == y).float().flatten(1).mean(1)
            loss_v, task_v, score_v = torch.stack([losses.detach(), task.detach(), scores]).tolist()
        rows, stopped = {}, []
        for i in self.active:
            rows[i] = log_row(iteration=it, loss=loss_v[i],
                              accuracy=math.nan if self.regression or self.density else score_v[i],
                              mse=score_v[i] if self.regression else None,
                              nll=score_v[i] if self.density else None,
                              nfe=out.stats.nfe, nfe_backward=backward, steps=out.stats.steps,
                              saved_mb=saved_mb, solve_status=out.statuses[i].value, **check,
                              **out.extras[i])
            if out.penalty is not None:
                rows[i]["task_loss"] = task_v[i]
            why = stop_status(loss_v[i], out.statuses[i])
            if why is not None:
                stopped.append(i)
                self.outcomes[i].status = why
                self.outcomes[i].message = f"iteration {it}: loss {loss_v[i]}, solve {out.statuses[i].value}"
                self.outcomes[i].state_dict = self.forward.member_state(i)  # before the step
        return rows, stopped

    def advance(self, rows: dict[int, dict], stopped: list[int]) -> None:
        """The optimizer step (unless every member stopped), the timing columns, the rows kept."""
        if len(stopped) < len(self.active):
            self.opt.step()
        seconds = self.clock.stop() / len(self.active)
        for i in self.active:
            rows[i]["seconds"] = seconds
            if i not in stopped:
                rows[i]["images_per_s"] = self.cfg.batch_size / seconds if seconds > 0 else None
                rows[i]["peak_gpu_mb"] = self.clock.peak_memory_mb()
            self.outcomes[i].log.append(rows[i])
        self.active = [i for i in self.active if i not in stopped]

    def checkpoint(self, it: int) -> None:
        """Hand each active member's checkpoint over every ``checkpoint_every`` iterations."""
        every = self.cfg.checkpoint_every
        if not every or (it + 1) % every != 0 or it + 1 >= self.cfg.iterations:
            return
        for i in self.active:
            if self.members[i].on_checkpoint is not None:
                self.members[i].on_checkpoint({
                    "iteration": it + 1, "model": self.forward.member_state(i),
                    "optimizer": self.forward.member_optimizer(self.opt, i),
                    "stream": self.streams[i].state(), "log": self.outcomes[i].log,
                    "adaptation": self.controller.state() if self.controller is not None else None})

    def finish(self) -> list[TrainOutcome]:
        self.forward.close()
        self.saved.release()
        for i in self.active:
            self.outcomes[i].state_dict = self.forward.member_state(i)
        if self.controller is not None:
            final = self.controller.spec()
            self.outcomes[0].adapted, self.outcomes[0].final_steps, self.outcomes[0].final_tol = \
                True, final.steps, final.rtol
        return self.outcomes


def train(forward: PlainForward | StackedForward, members: list[Member], spec: SolveSpec,
          cfg: TrainingConfig, *, progress: Enabled = False, desc: str = "") -> list[TrainOutcome]:
    """Train every member for ``cfg.iterations`` on the forward's device; one outcome per member,
    with its log and final parameters. Resuming from the members' checkpoints (all at one
    iteration) gives the uninterrupted result, the adaptation controller's state included.
    ``progress``: a bar counted per seed-iteration (core/progress.py), so stacked members move
    it once each per iteration."""
    run = _Training(forward, members, spec, cfg)
    forward.train()
    bar = training_bar((cfg.iterations - run.start) * len(members), desc, progress)
    try:  # the bar goes away however training ends (a crash is the caller's status)
        for it in range(run.start, cfg.iterations):
            x, y = run.batch()
            check = run.adapt(it, x, y)
            out, losses, task, backward, saved_mb = run.gradient(it, x, y)
            rows, stopped = run.log(it, y, out, losses, task, backward, saved_mb, check)
            bar.update(len(run.active))  # the members that took this iteration, stopped ones included
            run.advance(rows, stopped)
            if not run.active:
                break
            if not bar.disable and it % 50 == 0:
                bar.set_postfix(loss=f"{rows[run.active[0]]['loss']:.3f}", nfe=out.stats.nfe)
            run.checkpoint(it)
    finally:
        bar.close()
    return run.finish()


def train_model(model, data: DataSplits, spec: SolveSpec, cfg: TrainingConfig, *, seed: int = 0,
                device: str = "cpu", progress: Enabled = False,
                resume: dict[str, Any] | None = None,
                on_checkpoint: Callable[[dict[str, Any]], None] | None = None) -> TrainOutcome:
    """Train one model (a package model, or one with the interface of
    :mod:`robustbench_ode.models.interface`) with the loop above: the convenience for a single
    model outside a suite."""
    (outcome,) = train(PlainForward(model, cfg, device, seed), [Member(data, seed, resume, on_checkpoint)],
                       spec, cfg, progress=progress)
    return outcome
