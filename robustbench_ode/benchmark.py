"""Bring your own model: the robustness verdict for a model trained outside this package.

The model only has to expose its ODE block in pieces (the interface):

- ``input_map``: a module, ``x -> z0`` (the maps before the block; ``nn.Identity()`` if none);
- ``field``: a module ``f(t, z) -> dz/dt`` (t a float or a 0-dim tensor);
- ``head``: a module, ``z(T) -> logits`` (the maps after the block; it gets z(T) unflattened);
- optionally ``t_span = (t0, t1)``, default ``(0.0, 1.0)``.

A package :class:`~robustbench_ode.models.ODEClassifier` is accepted as it is. The model is
tested with every solver configuration of ``grid`` plus its train configuration and the reference
solve, exactly as a suite tests the models it trains.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import torch
from torch import nn

from .cell import _test_columns, test_points
from .config import ReferenceConfig, TestEntry
from .datasets import DataSplits
from .interface import as_classifier
from .meta import environment, now
from .metrics import evaluate_with_drift
from .status import Status
from .summary import summarize
from .tables import results_frame, write_csv

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
    summary: pd.DataFrame  # one row: the robustness metrics (see robustbench_ode.summary)
    report: Path | None = None  # report.html, when asked for


def _as_data(test_data) -> DataSplits:
    if isinstance(test_data, DataSplits):
        return test_data
    x, y = test_data
    x, y = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)
    # Only the test split is used; the train split is left empty.
    return DataSplits(x[:0], y[:0], x, y, n_classes=int(y.max()) + 1)


def benchmark(model: nn.Module, test_data, grid: list[dict[str, Any]] | None = None, *,
              train: dict[str, Any], reference: dict[str, Any] | None = None,
              batch_size: int = 1000, max_steps: int = 10_000, device: str = "cpu",
              report: str | Path | None = None, name: str = "custom") -> BenchmarkResult:
    """Test ``model`` on ``test_data`` with every solver configuration of ``grid``.

    ``test_data``: a :class:`DataSplits` (its test split) or a pair ``(x, y)`` of tensors.
    ``grid``: entries as in a suite's ``test`` list (``{"solver": "euler", "steps": [4, 8]}``,
    ``step_factors``, ``tol``, ``tol_factors``); default :data:`DEFAULT_GRID`.
    ``train``: how the model was trained, ``{"solver": "euler", "steps": 8}`` or
    ``{"solver": "dopri5", "tol": 1e-3}``. ``reference``: ``{"solver", "tol"}``, default dopri5
    at 1e-7. ``report``: a directory to write results.csv, summary.csv and report.html into.
    """
    data = _as_data(test_data)
    net = as_classifier(model).to(device)
    entries = [TestEntry(**e) for e in (DEFAULT_GRID if grid is None else grid)]
    train_cfg = SimpleNamespace(solver=train["solver"], steps=train.get("steps"), tol=train.get("tol"),
                                training=SimpleNamespace(max_steps=max_steps))
    if (train_cfg.steps is None) == (train_cfg.tol is None):
        raise ValueError("train: give exactly one of steps, tol")
    # test_points reads only these attributes of a suite and a cell.
    suite = SimpleNamespace(test=entries, reference=ReferenceConfig(**(reference or {})))
    points = test_points(suite, train_cfg)
    ident = {"cell": name, "dataset": name, "model": type(model).__name__, "seed": 0,
             "train_solver": train_cfg.solver, "train_steps": train_cfg.steps,
             "train_tol": train_cfg.tol}
    rows = []
    for point, outcome in zip(points, evaluate_with_drift(net, data, points, batch_size, device)):
        row = {**ident, **_test_columns(point)}
        if isinstance(outcome, Exception):  # a failing configuration is a row, not a crash
            row.update(status=Status.FAILED.value, message=f"{type(outcome).__name__}: {outcome}"[:300])
        else:
            row.update(outcome)
        rows.append(row)
    table = results_frame(rows)
    result = BenchmarkResult(table, summarize(table))
    if report is not None:
        result.report = _write(result, Path(report), name, entries, train, device)
    return result


def _write(result: BenchmarkResult, out: Path, name: str, entries: list[TestEntry],
           train: dict[str, Any], device: str) -> Path:
    from .report import write_report

    out.mkdir(parents=True, exist_ok=True)
    write_csv(result.table, out / "results.csv")
    (out / "suite.yaml").write_text(json.dumps(
        {"name": name, "train": train, "test": [e.model_dump(exclude_none=True) for e in entries]},
        indent=2))
    (out / "meta.json").write_text(json.dumps({"suite": name, "started": now(),
                                               **environment(device)}, indent=2, default=str))
    return write_report(out)
