"""Training the seeds of one configuration together, as one stacked model.

Cells that differ only by seed (same dataset config, model, training, solver and steps) train
the same tiny network on different data and initialisations. Stacking their parameters along a
leading seed dimension turns S small matrix products per layer into one batched product
(``baddbmm``), so the per-operation overhead that dominates these models is paid once for all
seeds. Every seed keeps its own initial parameters (built exactly as the single-seed path builds
them), its own data and its own batch stream; the loss is the sum over seeds of each seed's mean
cross-entropy, so each seed's gradient is its own; Adam is elementwise, so one Adam over the
stacked parameters takes each seed's own steps. Each seed's result equals its separate run up to
float rounding (tests/test_fast_paths.py). Afterwards every cell is unstacked, tested and stored
exactly as if it had trained alone.

Only fixed-step, autograd, non-adapted, unregularised training of models whose field has a stacked
form (``OttConv1d``'s fast path and ``MLP``) is grouped, with ``training.fast`` on; everything else
runs per seed.
A group writes no mid-training checkpoints (a killed group retrains from the start); a cell that
already has a checkpoint from an earlier run is not grouped, so it resumes as before.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .acceleration import Clock
from .cell import CellResult, build_model, load_data
from .config import TrainingConfig
from .datasets import DataSplits
from .job import CellJob
from .models import ODEClassifier, ResNetClassifier, SolveSpec
from .models.fields import MLP, OttConv1d, _conv_as_matrix
from .solve import solve
from .solvers import SOLVERS
from .solvers.base import FixedStepSolver
from .status import Status
from .training import BatchStream, TrainOutcome

# Model families whose fields have a stacked form; the check on the built model is `stackable`.
GROUPABLE_MODELS = ("ott_conv1d", "mlp")

StackedField = Callable[[float, torch.Tensor], torch.Tensor]


def stackable(model: ODEClassifier) -> bool:
    # A ResNet baseline trains through its own discrete loop, not a solve: the stacked forward
    # would train something else (resnet_shared's field is an OttConv1d, so check the class).
    if not isinstance(model, ODEClassifier) or isinstance(model, ResNetClassifier):
        return False
    field = model.block.field
    field_ok = (isinstance(field, OttConv1d) and field.fast) or isinstance(field, MLP)
    return (field_ok and isinstance(model.head, nn.Linear)
            and not any(True for _ in model.input_map.parameters())
            and not any(True for _ in model.buffers()))


def _ott_conv1d(field: OttConv1d, p: dict[str, torch.Tensor], length: int) -> StackedField:
    """OttConv1d's fast path with a leading seed dimension: (S, B, C*L) -> (S, B, C*L)."""
    layers = []
    for name, conv in (("conv1", field.conv1), ("conv2", field.conv2), ("conv3", field.conv3)):
        w = _conv_as_matrix(p[f"{name}.weight"], length, conv.padding[0]).transpose(1, 2).contiguous()
        layers.append((p[f"{name}.bias"].repeat_interleave(length, dim=1).unsqueeze(1), w))
    (b1, w1), (b2, w2), (b3, w3) = layers

    def f(t, z):
        x = z
        if field.time_input:
            x = torch.cat([z, z.new_full(z.shape[:2] + (length,), float(t))], -1)
        h = torch.baddbmm(b1, x, w1).relu_()
        h = torch.baddbmm(b2, h, w2).relu_()
        return torch.baddbmm(b3, h, w3)

    return f


def _mlp(field: MLP, p: dict[str, torch.Tensor], length: int) -> StackedField:
    linears = [(i, m) for i, m in enumerate(field.net) if isinstance(m, nn.Linear)]
    layers = [(p[f"net.{i}.bias"].unsqueeze(1), p[f"net.{i}.weight"].transpose(1, 2))
              for i, _ in linears]
    activation = field.net[1]  # elementwise, so it applies to any shape

    def f(t, z):
        h = z
        if field.time_input:
            h = torch.cat([z, z.new_full(z.shape[:2] + (1,), float(t))], -1)
        for n, (b, w) in enumerate(layers):
            h = torch.baddbmm(b, h, w)
            if n < len(layers) - 1:
                h = activation(h)
        return h

    return f


class StackedClassifier(nn.Module):
    """S copies of one :class:`ODEClassifier` architecture with their parameters stacked.

    ``forward`` takes x of shape (S, B, ...) and returns logits (S, B, K), the solve's stats and
    which seeds' final states are finite (S,). Parameters are in ``model.parameters()`` order.
    """

    def __init__(self, models: list[ODEClassifier]) -> None:
        super().__init__()
        first = models[0]
        self.names = [name for name, _ in first.named_parameters()]
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.stack([m.get_parameter(n).detach() for m in models]).clone())
            for n in self.names)
        self.input_map, self.field, self.t_span = first.input_map, first.block.field, first.block.t_span
        self._make = _ott_conv1d if isinstance(self.field, OttConv1d) else _mlp

    def params(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.stacked))

    def forward(self, x: torch.Tensor, spec: SolveSpec):
        s, b = x.shape[:2]
        z0 = self.input_map(x.flatten(0, 1))
        length = z0.shape[-1]
        z0 = z0.reshape(s, b, -1)  # channel-major, as the single model's z.flatten(1)
        p = self.params()
        prefix = "block.field."
        f = self._make(self.field, {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)},
                       length)
        sol = solve(f, z0, spec.solver, steps=spec.steps, t_span=self.t_span)
        z = sol.z
        logits = torch.baddbmm(p["head.bias"].unsqueeze(1), z, p["head.weight"].transpose(1, 2))
        return logits, sol.stats, torch.isfinite(z).flatten(1).all(1)

    def seed_state(self, i: int) -> dict[str, torch.Tensor]:
        return {n: p[i].detach().clone() for n, p in zip(self.names, self.stacked)}


def train_group(models: list[ODEClassifier], datas: list[DataSplits], seeds: list[int],
                spec: SolveSpec, cfg: TrainingConfig, device: str = "cpu"
                ) -> tuple[list[TrainOutcome], list[dict[str, torch.Tensor]]]:
    """Train S models as one; per seed: the outcome and log its separate ``train()`` would give
    (up to float rounding) and its final state dict (the parameters at divergence, if it diverged).
    Each row's ``seconds`` is the group iteration's time divided among the seeds it trained."""
    n = len(models)
    stacked = StackedClassifier(models).to(device)
    opt = torch.optim.Adam(stacked.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    streams = [BatchStream(len(d.y_train), cfg.batch_size, s) for d, s in zip(datas, seeds)]
    outcomes = [TrainOutcome() for _ in models]
    states: list[dict[str, torch.Tensor] | None] = [None] * n
    active = list(range(n))
    clock = Clock(device)
    stacked.train()
    for it in range(cfg.iterations):
        idx = [stream.next() for stream in streams]
        x = torch.stack([d.prepare(d.x_train[i]) for d, i in zip(datas, idx)]).to(device)
        y = torch.stack([d.y_train[i] for d, i in zip(datas, idx)]).to(device)
        clock.start()
        logits, stats, finite = stacked(x, spec)
        losses = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="none")
        losses = losses.view(n, -1).mean(1)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()  # each seed's parameters get its own loss's gradient
        accuracy = (logits.argmax(-1) == y).float().mean(1)
        loss_v, acc_v, finite_v = torch.stack([losses.detach(), accuracy, finite.float()]).tolist()
        stopped = []
        for i in active:
            solve_status = Status.OK if finite_v[i] else Status.NON_FINITE
            if not math.isfinite(loss_v[i]) or solve_status is not Status.OK:
                stopped.append(i)
                states[i] = stacked.seed_state(i)  # before the step, as train() stops
                outcomes[i].status = Status.DIVERGED
                outcomes[i].message = f"iteration {it}: loss {loss_v[i]}, solve {solve_status.value}"
        opt.step()
        seconds = clock.stop() / len(active)
        for i in active:
            row = {"iteration": it, "loss": loss_v[i], "accuracy": acc_v[i], "nfe": stats.nfe,
                   "steps": stats.steps,
                   "solve_status": (Status.OK if finite_v[i] else Status.NON_FINITE).value,
                   "seconds": seconds}
            if i not in stopped:
                row["images_per_s"] = len(idx[i]) / seconds if seconds > 0 else None
                row["peak_gpu_mb"] = clock.peak_memory_mb()
            outcomes[i].log.append(row)
        active = [i for i in active if i not in stopped]
        if not active:
            break
    return outcomes, [s if s is not None else stacked.seed_state(i) for i, s in enumerate(states)]


def group_key(job: CellJob) -> str | None:
    """Jobs with equal keys can train as one group; None: this job runs on its own."""
    cell, cfg = job.cell, job.cell.training
    if (job.retest or not cfg.fast or cell.steps is None
            or not isinstance(SOLVERS.get(cell.solver), FixedStepSolver)
            or cfg.gradient != "autograd"
            or cfg.amp or cfg.compile or cfg.channels_last or cfg.adaptation is not None
            or cfg.regularization is not None
            or cell.model.checkpoint or cell.model.name not in GROUPABLE_MODELS):
        return None
    if job.store_root is not None:
        from .store import CellStore

        if CellStore(Path(job.store_root)).checkpoint(cell.key).path.is_file():
            return None  # it resumes from its own checkpoint
    return json.dumps([cell.model_dump(mode="json", exclude={"seed"}), job.device], sort_keys=True)


@dataclass(frozen=True)
class SeedGroupJob:
    """Cell jobs that differ only by seed, run as one unit; ``run`` returns one result per job."""

    jobs: tuple[CellJob, ...]

    def run(self) -> list[CellResult]:
        first = self.jobs[0]
        try:
            datas = [load_data(j.cell.dataset, j.cell.seed) for j in self.jobs]
            models = [build_model(j.cell, d) for j, d in zip(self.jobs, datas)]
            if not all(stackable(m) for m in models):
                return [job.run() for job in self.jobs]
            if first.store_root is not None:
                from .store import CellStore

                store = CellStore(Path(first.store_root))
                for job in self.jobs:
                    store.mark_running(job.cell.key)
            t0 = time.perf_counter()
            outcomes, states = train_group(models, datas, [j.cell.seed for j in self.jobs],
                                           first.cell.train_spec, first.cell.training, first.device)
            seconds = (time.perf_counter() - t0) / len(self.jobs)
        except Exception:  # noqa: BLE001 - the per-seed path reports any failure as a status
            return [job.run() for job in self.jobs]
        results = []
        for job, outcome, state in zip(self.jobs, outcomes, states):
            tested = CellJob(job.cell, job.tests, job.device, state_dict=state,
                             train_status=outcome.status, train_message=outcome.message,
                             train_seconds=seconds, columns={"adapted": False}).run()
            tested.log, tested.state_dict = outcome.log, state
            results.append(tested)
        return results


def plan(jobs: list[CellJob]) -> list[tuple[list[int], CellJob | SeedGroupJob]]:
    """The units of work for ``jobs``: seed groups and single jobs, each with the indices of the
    jobs it covers, in the order of their first job."""
    groups: dict[str, list[int]] = {}
    units: list[tuple[list[int], CellJob | SeedGroupJob]] = []
    for j, job in enumerate(jobs):
        key = group_key(job)
        if key is None:
            units.append(([j], job))
        else:
            groups.setdefault(key, []).append(j)
    for members in groups.values():
        unit = jobs[members[0]] if len(members) == 1 else SeedGroupJob(tuple(jobs[m] for m in members))
        units.append((members, unit))
    return sorted(units, key=lambda u: u[0][0])
