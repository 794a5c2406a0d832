"""Bring your own model: the robustness verdict for a model trained outside this package.

The model only has to expose its ODE block in pieces (the interface,
:mod:`robustbench_ode.models.interface`):

- ``input_map``: a module, ``x -> z0`` (the maps before the block; ``nn.Identity()`` if none);
- ``field``: a module ``f(t, z) -> dz/dt`` (t a float or a 0-dim tensor);
- ``head``: a module, ``z(T) -> logits`` (the maps after the block; it gets z(T) unflattened);
- optionally ``t_span = (t0, t1)``, default ``(0.0, 1.0)``.

A package :class:`~robustbench_ode.models.classifier.ODEClassifier` is accepted as it is. The
model is tested with every solver configuration of ``grid`` plus its train configuration and the
reference solve, exactly as a suite tests the models it trains (the same grid function, the same
evaluation, the same row builder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from pydantic import ValidationError
from torch import nn

from .config import ReferenceConfig, TestEntry, TrainEntry
from .config.messages import format_validation_error
from .core.errors import SuiteError
from .core.files import write_text
from .core.status import Status
from .datasets.base import DataSplits
from .harness.evaluation import evaluate_points
from .harness.grid import grid_points
from .harness.rows import result_row
from .models.interface import as_classifier
from .models.spec import SolveSpec
from .outputs.report import write_report
from .outputs.summary import summarize
from .outputs.tables import results_frame, write_csv
from .run.meta import environment, now, write_json

# Used when no grid is given: the protocol's fixed-step solvers over a range of steps, and dopri5.
DEFAULT_GRID: list[dict[str, Any]] = [
    {"solver": "euler", "steps": [1, 2, 4, 8, 16, 32, 64]},
    {"solver": "midpoint", "steps": [1, 2, 4, 8, 16, 32, 64]},
    {"solver": "rk4", "steps": [1, 2, 4, 8, 16, 32, 64]},
    {"solver": "dopri5", "tol": [1e-3, 1e-5]},
]


@dataclass
class BenchmarkResult:
    table: pd.DataFrame  # one row per test configuration, the columns of results.csv
    summary: pd.DataFrame  # one row: the robustness metrics (see robustbench_ode.outputs.summary)
    report: Path | None = None  # report.html, when asked for


def _as_data(test_data) -> DataSplits:
    if isinstance(test_data, DataSplits):
        return test_data
    x, y = test_data
    x, y = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)
    if len(y) == 0 or len(x) != len(y):
        raise SuiteError(f"test_data: need as many labels as inputs, at least one (got {len(x)} "
                         f"inputs, {len(y)} labels)")
    # Only the test split is used; the train split is left empty.
    return DataSplits(x[:0], y[:0], x, y, n_classes=int(y.max()) + 1)


def _validated(what: str, build):
    try:
        return build()
    except ValidationError as exc:
        raise SuiteError(format_validation_error(exc, prefix=what)) from None
    except TypeError as exc:
        raise SuiteError(f"{what}: {exc}") from None


def train_spec(train: dict[str, Any], max_steps: int) -> SolveSpec:
    """How the model was trained, ``{"solver", "steps"}`` or ``{"solver", "tol"}``, validated as a
    suite's train grid entry is (one-line errors naming the key)."""
    if not isinstance(train, dict):
        raise SuiteError(f"train: give a mapping such as {{'solver': 'euler', 'steps': 4}}, got "
                         f"{type(train).__name__}")
    lists = {k: [v] if k in ("steps", "tol") else v for k, v in train.items()}
    entry = _validated("train", lambda: TrainEntry(**lists))
    steps = entry.steps[0] if entry.steps else None
    tol = entry.tol[0] if entry.tol else None
    return SolveSpec(entry.solver, steps=steps, rtol=tol, atol=tol, max_steps=max_steps)


def benchmark(model: nn.Module, test_data, grid: list[dict[str, Any]] | None = None, *,
              train: dict[str, Any], reference: dict[str, Any] | None = None,
              batch_size: int = 1000, max_steps: int = 10_000, device: str = "cpu",
              report: str | Path | None = None, name: str = "custom") -> BenchmarkResult:
    """Test ``model`` on ``test_data`` with every solver configuration of ``grid``.

    ``test_data``: a :class:`DataSplits` (its test split) or a pair ``(x, y)`` of tensors.
    ``grid``: entries as in a suite's ``test`` list (``{"solver": "euler", "steps": [4, 8]}``,
    ``step_factors``, ``tol``, ``tol_factors``); default :data:`DEFAULT_GRID`.
    ``train``: how the model was trained, ``{"solver": "euler", "steps": 8}`` or
    ``{"solver": "dopri5", "tol": 1e-3}`` (it only labels the rows: ``benchmark`` trains nothing).
    ``reference``: ``{"solver", "tol"}``, default dopri5 at 1e-7. ``report``: a directory to write
    results.csv, summary.csv and report.html into. Bad arguments raise
    :class:`~robustbench_ode.core.errors.SuiteError` with a one-line message.
    """
    spec = train_spec(train, max_steps)
    entries = [_validated(f"grid.{i}", lambda e=e: TestEntry(**e))
               for i, e in enumerate(DEFAULT_GRID if grid is None else grid)]
    ref = _validated("reference", lambda: ReferenceConfig(**(reference or {})))
    data = _as_data(test_data)
    net = as_classifier(model).to(device)
    points = grid_points(entries, ref, spec, max_steps)
    ident = {"cell": name, "dataset": name, "model": type(model).__name__, "training": "default",
             "seed": 0, "train_solver": spec.solver, "train_steps": spec.steps, "train_tol": spec.rtol}
    outcomes = evaluate_points(net, data, points, batch_size, device)
    table = results_frame(result_row(ident, p, o, train_status=Status.OK) for p, o in zip(points, outcomes))
    result = BenchmarkResult(table, summarize(table))
    if report is not None:
        out = Path(report)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(result.table, out / "results.csv")
        write_text(out / "suite.yaml", json.dumps(
            {"name": name, "train": train, "test": [e.model_dump(exclude_none=True) for e in entries]},
            indent=2))
        write_json(out / "meta.json", {"suite": name, "started": now(), **environment(device)})
        result.report = write_report(out)
    return result
