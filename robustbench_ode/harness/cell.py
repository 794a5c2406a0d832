"""A cell: one trained model (dataset, model, training, train solver, steps or tol, seed): its
frozen config and content key (:class:`CellConfig`), the record of what the trained model is
(:class:`CellRecord`), and what training and testing it produced (:class:`CellResult`).

The record is the one value that travels: units of work carry it (run/jobs.py), the store
persists exactly it (run/store.py), the tables take their identity columns from it
(:meth:`CellRecord.columns`) and its test grid follows it (:meth:`CellRecord.grid`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from ..config import DatasetConfig, ModelConfig, ReferenceConfig, SuiteConfig, TestEntry, TrainingConfig
from ..core.status import Status
from ..core.version import __version__
from ..models.spec import SolveSpec
from .grid import TestPoint, grid_points, row_key
from .rows import identity, lost_rows, result_row


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
        """Stable content hash of everything that determines the trained model (the speed-only
        training settings are left out: the same model comes out whatever their values)."""
        return content_key(self.model_dump(mode="json", serialize_as_any=True,
                                           exclude={"training": set(type(self.training).speed_only())}))

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

    def columns(self, spec: SolveSpec | None = None) -> dict[str, Any]:
        """The identifying columns of the cell as configured (its training log's rows), or as
        trained at ``spec``: a result row carries its record's (:meth:`CellRecord.columns`)."""
        return identity(self.key, self.dataset.display, self.model.display, self.training.display,
                        self.seed, spec or self.train_spec)


def content_key(dump: dict[str, Any]) -> str:
    """A cell's key: the stable hash of its config dump and the package version."""
    payload = json.dumps({"cell": dump, "version": __version__}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class FamilyCell(BaseModel):
    """A cell of a plain model family (:func:`robustbench_ode.sweep`): the researcher's factory
    and training function (fingerprints, harness/fingerprint.py, which says what the key covers)
    at one fixed train step count and seed, on data of one content. Stored and read back by the
    suite's store as a :class:`CellConfig` is; its rows have the suite's identity columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    model: str
    factory: str  # fingerprint.code_fingerprint(make_model)
    train_fn: str  # fingerprint.code_fingerprint(train_fn)
    data: str  # fingerprint.data_fingerprint(training data, test data)
    solver: str
    steps: int
    seed: int = 0
    max_steps: int = 10_000
    key_extra: str = ""  # the caller's key= as JSON

    @property
    def key(self) -> str:
        return content_key(self.model_dump(mode="json"))

    @property
    def train_spec(self) -> SolveSpec:
        return SolveSpec(self.solver, steps=self.steps, max_steps=self.max_steps)

    def label(self) -> str:
        return f"{self.dataset}/{self.model} {self.solver} steps={self.steps} seed={self.seed}"

    def columns(self, spec: SolveSpec | None = None) -> dict[str, Any]:
        """The identifying columns: training ``default`` (the family's one training)."""
        return identity(self.key, self.dataset, self.model, "default", self.seed, spec or self.train_spec)


def one_fast_switch(model: ModelConfig, training: TrainingConfig) -> tuple[ModelConfig, TrainingConfig]:
    """``fast`` is one switch, however a suite spells it: ``training.fast: false`` and, for a
    family with a speed switch (``ModelInfo.speed_switch``), ``model.<switch>: false`` give the
    same cell. Off is recorded in both places: the model's switch is part of the key (as every
    model parameter; so 0.1's keys, ``results/spheres900``, stay what they were) and
    ``training.fast`` keeps the cell out of seed stacks (harness/grouping.py)."""
    info = model.info
    switch = info.speed_switch if info is not None else None
    fast = training.fast and (switch is None or model.params.get(switch) is not False)
    if switch is not None and model.params.get(switch) is not fast:
        model = ModelConfig.model_validate({**model.model_dump(), switch: fast})
    if training.fast is not fast:
        training = training.model_copy(update={"fast": fast})
    return model, training


def cells(suite: SuiteConfig) -> list[CellConfig]:
    """Every cell of a suite, in suite order."""
    out = []
    for dataset, model, training in suite.pairs():
        model, training = one_fast_switch(model, training)
        for entry in suite.train.grid:
            for value in entry.steps or entry.tol:
                for seed in suite.train.seeds:
                    kw = {"steps": value} if entry.steps else {"tol": value}
                    out.append(CellConfig(dataset=dataset, model=model, training=training,
                                          solver=entry.solver, seed=seed, **kw))
    return out


class Weights(Protocol):
    """Where a trained model's parameters are: in memory, or a stored file (run/store.py)."""

    def load(self) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)
class InMemory:
    """Weights held in memory (a state dict on the CPU): what training hands the store, and what
    a unit of work carries to a worker that may not see the store's files."""

    state: dict[str, Any]

    def load(self) -> dict[str, Any]:
        return self.state


@dataclass(frozen=True)
class CellRecord:
    """What a trained model is: its cell, the train configuration it ended at (``trained_at``:
    an adapted cell's final steps or tolerance; its test points follow it), how training went
    (``status``, ``message``, ``seconds``), whether it was adapted, and its weights (None where
    training left none). Storable where its status is (:attr:`Status.storable`)."""

    cell: CellConfig | FamilyCell
    trained_at: SolveSpec
    status: Status = Status.OK
    message: str = ""
    seconds: float = 0.0
    adapted: bool = False
    weights: Weights | None = None

    @classmethod
    def planned(cls, cell: CellConfig) -> CellRecord:
        """The record of a cell before it is trained (at its configured train solve)."""
        return cls(cell, cell.train_spec)

    @property
    def key(self) -> str:
        return self.cell.key

    @property
    def storable(self) -> bool:
        return self.status.storable

    def columns(self) -> dict[str, Any]:
        """The identifying columns of every result row of this model (schema.CELL_COLUMNS), with
        the train steps / tol it ended at."""
        return self.cell.columns(self.trained_at)

    def grid(self, entries: list[TestEntry] | tuple[TestEntry, ...],
             reference: ReferenceConfig) -> list[TestPoint]:
        """The test points of this model: the suite's entries resolved at ``trained_at``."""
        return grid_points(list(entries), reference, self.trained_at, self.trained_at.max_steps)

    def row(self, point: TestPoint, outcome: dict[str, Any] | Exception | None) -> dict[str, Any]:
        """One test point's result row (harness/rows.py), with this record's training outcome."""
        return result_row(self.columns(), point, outcome, train_status=self.status,
                          train_message=self.message, train_seconds=self.seconds, adapted=self.adapted)

    def lost(self, points: list[TestPoint], why: str) -> CellResult:
        """The result of a unit the infrastructure lost: status lost (not stored: the next run
        retries it), one row per test point, so the tables show it."""
        message = why[:300]
        record = replace(self, status=Status.LOST, message=message, weights=None)
        return CellResult(record, lost_rows(record.columns(), points, message))

    def in_memory(self) -> CellRecord:
        """This record with its weights loaded (a unit of work carries them to its worker)."""
        if self.weights is None or isinstance(self.weights, InMemory):
            return self
        return replace(self, weights=InMemory(self.weights.load()))


@dataclass
class CellResult:
    """What training and testing one cell produced: its record, its test rows, its training log
    and its diagnosis (harness/analysis.py; None: not (yet) diagnosed)."""

    record: CellRecord
    rows: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    diagnosis: dict[str, Any] | None = None

    @property
    def cell(self) -> CellConfig:
        return self.record.cell

    @property
    def status(self) -> Status:
        return self.record.status

    @property
    def failed(self) -> bool:
        return not self.status.ok or any(Status.parse(r["status"]) is not Status.OK for r in self.rows)

    def missing(self, points: list[TestPoint]) -> list[TestPoint]:
        """The test points this result has no row for."""
        have = {row_key(r) for r in self.rows}
        return [p for p in points if p.key not in have]

    def needs_diagnosis(self, wanted: dict[str, Any] | None) -> bool:
        """Whether the diagnosis with these settings (None: none wanted) is missing."""
        return (wanted is not None and self.status is Status.OK
                and (self.diagnosis is None or self.diagnosis.get("settings") != wanted))

    def on(self, points: list[TestPoint], extra: list[dict[str, Any]] = ()) -> CellResult:
        """The rows of ``points``, in their order, with today's test-point columns (``extra``:
        rows of this run kept out of the store, e.g. out of memory)."""
        by_key = {row_key(r): r for r in [*self.rows, *extra]}
        rows = [{**by_key[p.key], **p.columns()} for p in points if p.key in by_key]
        return replace(self, rows=rows)
