"""A cell: one trained model (dataset, model, training, train solver, steps or tol, seed).

:func:`run_cell` is a pure function of its frozen config and test grid: config in; state dict,
training log and result rows out. Executors, stores and resumption wrap it without changing it.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

from . import __version__
from .config import DatasetConfig, ModelConfig, SuiteConfig, TrainingConfig
from .datasets import DATASETS, DataSplits
from .evaluation import evaluate
from .models import MODELS, ODEClassifier, SolveSpec
from .status import Status
from .training import train


class CellConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: DatasetConfig
    model: ModelConfig
    training: TrainingConfig
    solver: str
    steps: int | None = None
    tol: float | None = None
    seed: int = 0

    @property
    def key(self) -> str:
        """Stable content hash of everything that determines the trained model."""
        # checkpoint_every only says how often to save, channels_last, compile and fast only how
        # fast to compute: the same model comes out either way (fast: the same function and
        # optimiser, equal up to float rounding; see docs/performance.md)
        speed_only = {"checkpoint_every", "channels_last", "compile", "fast"}
        cell = self.model_dump(mode="json", exclude={"training": speed_only})
        payload = json.dumps({"cell": cell, "version": __version__}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def train_spec(self) -> SolveSpec:
        return SolveSpec(self.solver, steps=self.steps, rtol=self.tol, atol=self.tol,
                         max_steps=self.training.max_steps,
                         adjoint=self.training.gradient == "adjoint")

    def label(self) -> str:
        cfg = f"steps={self.steps}" if self.steps is not None else f"tol={self.tol:g}"
        return f"{self.dataset.name}/{self.model.name} {self.solver} {cfg} seed={self.seed}"

    def columns(self) -> dict[str, Any]:
        """The identifying columns every result row of this cell carries."""
        return {"cell": self.key, "dataset": self.dataset.name, "model": self.model.name,
                "seed": self.seed, "train_solver": self.solver, "train_steps": self.steps,
                "train_tol": self.tol}


@dataclass(frozen=True)
class TestPoint:
    spec: SolveSpec
    factor: float | None = None  # the step or tol factor it came from, if any
    is_train: bool = False  # the train configuration itself


def cells(suite: SuiteConfig) -> list[CellConfig]:
    out = []
    for entry in suite.train.grid:
        for value in entry.steps or entry.tol:
            for seed in suite.train.seeds:
                kw = {"steps": value} if entry.steps else {"tol": value}
                out.append(CellConfig(dataset=suite.dataset, model=suite.model,
                                      training=suite.training, solver=entry.solver, seed=seed, **kw))
    return out


def test_points(suite: SuiteConfig, cell: CellConfig) -> list[TestPoint]:
    """The suite's test grid resolved for one cell; the train configuration always comes first."""
    mx = suite.training.max_steps
    points = [TestPoint(SolveSpec(cell.solver, cell.steps, cell.tol, cell.tol, mx), None, True)]
    for entry in suite.test:
        if entry.steps:
            points += [TestPoint(SolveSpec(entry.solver, steps=n, max_steps=mx)) for n in entry.steps]
        elif entry.step_factors and cell.steps is not None:
            points += [TestPoint(SolveSpec(entry.solver, steps=max(1, round(f * cell.steps)),
                                           max_steps=mx), f) for f in entry.step_factors]
        elif entry.tol:
            points += [TestPoint(SolveSpec(entry.solver, rtol=t, atol=t, max_steps=mx))
                       for t in entry.tol]
        elif entry.tol_factors and cell.tol is not None:
            points += [TestPoint(SolveSpec(entry.solver, rtol=f * cell.tol, atol=f * cell.tol,
                                           max_steps=mx), f) for f in entry.tol_factors]
    seen, unique = set(), []
    for p in points:  # two factors can round to the same step count: test it once
        k = (p.spec.solver, p.spec.steps, p.spec.rtol)
        if k not in seen:
            seen.add(k)
            unique.append(p)
    return unique


@functools.lru_cache(maxsize=8)
def _load(dataset_json: str, seed: int) -> DataSplits:
    params = json.loads(dataset_json)
    name, data_seed = params.pop("name"), params.pop("data_seed")
    return DATASETS.get(name)(seed if data_seed is None else data_seed, **params)


def load_data(cfg: DatasetConfig, seed: int) -> DataSplits:
    return _load(json.dumps(cfg.model_dump(mode="json"), sort_keys=True), seed)


def build_model(cell: CellConfig, data: DataSplits) -> ODEClassifier:
    # The seed is set before the model is built, so it fixes the initialisation (the released
    # prototype set it afterwards).
    torch.manual_seed(cell.seed)
    factory = MODELS.get(cell.model.name)
    params = dict(cell.model.params)
    if not cell.training.fast and "fast" in inspect.signature(factory).parameters:
        params["fast"] = False  # training.fast: false switches every fast path off
    return factory(data.in_shape, data.n_classes, **params)


@dataclass
class CellResult:
    cell: CellConfig
    status: Status
    message: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    state_dict: dict[str, torch.Tensor] | None = None
    train_seconds: float = 0.0


def _failure(exc: BaseException) -> tuple[Status, str]:
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return Status.OOM, str(exc).splitlines()[0][:300]
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno}" if last else ""
    return Status.FAILED, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{where}"[:300]


def run_cell(cell: CellConfig, tests: list[TestPoint], device: str = "cpu",
             progress: bool = False, checkpoint: Any = None) -> CellResult:
    """Train the cell's model, then test it at every point of ``tests``. Never raises for a
    failing model: divergence, solver failures and exceptions become statuses. ``checkpoint``
    (optional, e.g. :class:`~robustbench_ode.store.Checkpoint`) has ``load()`` and ``save(state)``
    for resuming an interrupted training."""
    result = CellResult(cell, Status.OK)
    model = None
    try:
        data = load_data(cell.dataset, cell.seed)
        model = build_model(cell, data).to(device)
        t0 = time.perf_counter()
        outcome = train(model, data, cell.train_spec, cell.training, seed=cell.seed, device=device,
                        progress=progress, desc=cell.label(),
                        resume=checkpoint.load() if checkpoint is not None else None,
                        on_checkpoint=checkpoint.save if checkpoint is not None else None)
        result.train_seconds = time.perf_counter() - t0
        result.log, result.status, result.message = outcome.log, outcome.status, outcome.message
    except Exception as exc:  # noqa: BLE001 - any crash becomes a status of this cell
        result.status, result.message = _failure(exc)
    if model is not None:
        result.state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for point in tests:
        row = {**cell.columns(), **_test_columns(point)}
        if result.status is not Status.OK or model is None:
            row.update(status=Status.SKIPPED.value, message=f"training: {result.status.value}")
        else:
            try:
                row.update(evaluate(model, data, point.spec, cell.training.eval_batch_size, device))
            except Exception as exc:  # noqa: BLE001
                status, message = _failure(exc)
                row.update(status=status.value, message=message)
        row.update(train_status=result.status.value, train_message=result.message,
                   train_seconds=round(result.train_seconds, 3))
        result.rows.append(row)
    return result


def _test_columns(point: TestPoint) -> dict[str, Any]:
    spec = point.spec
    return {"test_solver": spec.solver, "test_steps": spec.steps,
            "test_tol": spec.rtol if spec.steps is None else None, "test_factor": point.factor,
            "is_train_config": point.is_train}
