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
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

from . import __version__
from .config import DatasetConfig, ModelConfig, SuiteConfig, TrainingConfig
from .datasets import DATASETS, DataSplits
from .factory import resolve
from .interface import as_classifier
from .metrics import evaluate_with_drift, mark_reference, reference_spec
from .models import MODELS, ODEClassifier, SolveSpec
from .status import Status
from .training import TrainOutcome, train


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
        speed_only = {"checkpoint_every", "channels_last", "compile", "compile_mode", "fast",
                      "record_memory"}
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
        training = f" [{self.training.label}]" if self.training.label else ""
        return (f"{self.dataset.display}/{self.model.display}{training} {self.solver} {cfg} "
                f"seed={self.seed}")

    def columns(self) -> dict[str, Any]:
        """The identifying columns every result row of this cell carries."""
        return {"cell": self.key, "dataset": self.dataset.display, "model": self.model.display,
                "training": self.training.display, "seed": self.seed, "train_solver": self.solver,
                "train_steps": self.steps, "train_tol": self.tol}


@dataclass(frozen=True)
class TestPoint:
    spec: SolveSpec
    factor: float | None = None  # the step or tol factor it came from, if any
    is_train: bool = False  # the train configuration itself
    is_reference: bool = False  # the reference solve of the robustness metrics


def cells(suite: SuiteConfig) -> list[CellConfig]:
    out = []
    for dataset, model, training in suite.pairs():
        for entry in suite.train.grid:
            for value in entry.steps or entry.tol:
                for seed in suite.train.seeds:
                    kw = {"steps": value} if entry.steps else {"tol": value}
                    out.append(CellConfig(dataset=dataset, model=model, training=training,
                                          solver=entry.solver, seed=seed, **kw))
    return out


def test_points(suite: SuiteConfig, cell: CellConfig) -> list[TestPoint]:
    """The suite's test grid resolved for one cell; the train configuration always comes first."""
    mx = cell.training.max_steps
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
        elif not (entry.steps or entry.step_factors or entry.tol or entry.tol_factors):
            points.append(TestPoint(SolveSpec(entry.solver, max_steps=mx)))  # gridless: exact
    ref = reference_spec(suite.reference.solver, suite.reference.tol, mx)
    if getattr(cell.training, "adaptation", None):
        # adapted cells dedupe after training (adapted_points), when the factor points are final
        return points + [TestPoint(ref, None, False, True)]
    return mark_reference(_unique(points), ref)


def _unique(points: list[TestPoint]) -> list[TestPoint]:
    seen, unique = set(), []
    for p in points:  # two factors can round to the same step count: test it once
        k = (p.spec.solver, p.spec.steps, p.spec.rtol)
        if k not in seen:
            seen.add(k)
            unique.append(p)
    return unique


def adapted_points(tests: list[TestPoint], train: SolveSpec) -> list[TestPoint]:
    """``tests`` re-resolved for a cell whose train solve was adapted to ``train``: the train
    point and every factor point follow the final step count (or tolerance), not the initial one."""
    out, ref = [], None
    for p in tests:
        if p.is_reference:
            ref = p.spec
            continue
        spec = p.spec
        if p.is_train:
            spec = replace(train, adjoint=False)
        elif p.factor is not None and spec.steps is not None and train.steps is not None:
            spec = replace(spec, steps=max(1, round(p.factor * train.steps)))
        elif p.factor is not None and spec.steps is None and train.rtol is not None:
            spec = replace(spec, rtol=p.factor * train.rtol, atol=p.factor * train.rtol)
        out.append(TestPoint(spec, p.factor, p.is_train))
    return mark_reference(_unique(out), ref) if ref is not None else _unique(out)


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
    factory = resolve(MODELS, cell.model.name)
    params = dict(cell.model.params)
    takes = _parameters(factory)
    if not cell.training.fast and "fast" in takes:
        params["fast"] = False  # training.fast: false switches every fast path off
    if "blocks" in takes and params.get("blocks") is None:
        # a discrete network (the ResNet baselines) left unsized is as deep as its train steps:
        # N blocks are Euler with N steps
        params["blocks"] = cell.steps
    if "times" in takes:  # a trajectory model solves through the dataset's observation times
        params["times"] = data.times
    model = factory(data.in_shape, data.n_classes, **params)
    if cell.model.checkpoint:
        model.load_state_dict(torch.load(cell.model.checkpoint, map_location="cpu", weights_only=True))
    return as_classifier(model)


def _parameters(factory) -> set[str]:
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):  # a callable without a signature takes no ``fast``
        return set()


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
    model = data = None
    adapted: dict[str, Any] = {}
    try:
        data = load_data(cell.dataset, cell.seed)
        model = build_model(cell, data).to(device)
        t0 = time.perf_counter()
        # A model given by checkpoint is already trained: test it as it is.
        outcome = TrainOutcome() if cell.model.checkpoint else train(
            model, data, cell.train_spec, cell.training, seed=cell.seed, device=device,
            progress=progress, desc=cell.label(),
            resume=checkpoint.load() if checkpoint is not None else None,
            on_checkpoint=checkpoint.save if checkpoint is not None else None)
        result.train_seconds = time.perf_counter() - t0
        result.log, result.status, result.message = outcome.log, outcome.status, outcome.message
        if outcome.adapted:  # factor test points follow the final step count / tolerance
            tests = adapted_points(tests, replace(cell.train_spec, steps=outcome.final_steps,
                                                  rtol=outcome.final_tol, atol=outcome.final_tol))
            adapted = {"train_steps": outcome.final_steps, "train_tol": outcome.final_tol}
    except Exception as exc:  # noqa: BLE001 - any crash becomes a status of this cell
        result.status, result.message = _failure(exc)
    if model is not None:
        result.state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    result.rows = result_rows(cell, model, data, tests, device, train_status=result.status,
                            train_message=result.message, train_seconds=result.train_seconds,
                            columns={**adapted, "adapted": bool(adapted)})
    return result


def result_rows(cell: CellConfig, model: ODEClassifier | None, data: DataSplits | None,
              tests: list[TestPoint], device: str, *, train_status: Status, train_message: str,
              train_seconds: float, columns: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One result row per test point: the trained model tested there (drift on the train row), or
    ``skipped`` when training did not finish. ``columns`` override the cell's own (an adapted
    cell's final train steps)."""
    trained = train_status is Status.OK and model is not None
    tested = (evaluate_with_drift(model, data, tests, cell.training.eval_batch_size, device)
              if trained else [None] * len(tests))
    rows = []
    for point, outcome in zip(tests, tested):
        row = {**cell.columns(), **(columns or {}), **_test_columns(point)}
        if not trained:
            row.update(status=Status.SKIPPED.value, message=f"training: {train_status.value}")
        elif isinstance(outcome, Exception):
            status, message = _failure(outcome)
            row.update(status=status.value, message=message)
        else:
            row.update(outcome)
        row.update(train_status=train_status.value, train_message=train_message,
                   train_seconds=round(train_seconds, 3))
        rows.append(row)
    return rows


def _test_columns(point: TestPoint) -> dict[str, Any]:
    spec = point.spec
    return {"test_solver": spec.solver, "test_steps": spec.steps,
            "test_tol": spec.rtol if spec.steps is None else None, "test_factor": point.factor,
            "is_train_config": point.is_train, "is_reference": point.is_reference}
