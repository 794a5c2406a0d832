"""A cell: one trained model (dataset, model, training, train solver, steps or tol, seed): its
frozen config, its content key, and what running it produced."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..config import DatasetConfig, ModelConfig, SuiteConfig, TrainingConfig
from ..core.status import Status
from ..core.version import __version__
from ..models.spec import SolveSpec


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
        cell = self.model_dump(mode="json", serialize_as_any=True,
                               exclude={"training": set(type(self.training).speed_only())})
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
        """The identifying columns every row of this cell carries (schema.CELL_COLUMNS)."""
        return {"cell": self.key, "dataset": self.dataset.display, "model": self.model.display,
                "training": self.training.display, "seed": self.seed, "train_solver": self.solver,
                "train_steps": self.steps, "train_tol": self.tol}


def cells(suite: SuiteConfig) -> list[CellConfig]:
    """Every cell of a suite, in suite order."""
    out = []
    for dataset, model, training in suite.pairs():
        for entry in suite.train.grid:
            for value in entry.steps or entry.tol:
                for seed in suite.train.seeds:
                    kw = {"steps": value} if entry.steps else {"tol": value}
                    out.append(CellConfig(dataset=dataset, model=model, training=training,
                                          solver=entry.solver, seed=seed, **kw))
    return out


@dataclass
class CellResult:
    """What training and testing one cell produced. ``trained_at`` is the train configuration
    the model ended at (an adapted cell's final steps or tolerance); its test points follow it."""

    cell: CellConfig
    status: Status
    message: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    state_dict: dict[str, Any] | None = None
    train_seconds: float = 0.0
    adapted: bool = False
    trained_at: SolveSpec | None = None
    diagnosis: dict[str, Any] | None = None  # harness/analysis.py; None: not (yet) diagnosed

    @property
    def failed(self) -> bool:
        return not self.status.ok or any(Status.parse(r["status"]) is not Status.OK for r in self.rows)
