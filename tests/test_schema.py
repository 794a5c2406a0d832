"""The two tables' schema (core/schema.py) holds on every path that writes them: single-seed and
seed-stacked training, adapted, regularised, adjoint and time-series cells, re-tested models,
lost jobs and ``benchmark()``. The stacked log equals the single-seed log column by column."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

import robustbench_ode as rb
from robustbench_ode.config import DatasetConfig, ModelConfig, ReferenceConfig, TestEntry, TrainingConfig
from robustbench_ode.core.schema import LOG_NAMES, RESULT_NAMES, TRAINING_NAMES
from robustbench_ode.core.status import Status
from robustbench_ode.harness.cell import CellConfig
from robustbench_ode.harness.execution import run_cells
from robustbench_ode.harness.grid import grid_points
from robustbench_ode.harness.grouping import stack_key
from robustbench_ode.harness.rows import lost_rows

ENTRIES = [TestEntry(solver="euler", step_factors=[1, 2]), TestEntry(solver="dopri5", tol=[1e-3])]
REF = ReferenceConfig(tol=1e-4)
# wall-clock columns: equal in meaning, not in value
CLOCK = {"seconds", "images_per_s", "peak_gpu_mb"}
# saved_mb of a stack is its saved memory divided among its seeds; the few constants the seeds
# share (OttConv1d's shift matrices, 80 bytes) count once per stack, not once per seed
RELATIVE = {"saved_mb": 0.02}


def _cell(seed=0, dataset=None, model=None, solver="euler", steps=2, tol=None, **training):
    tc = TrainingConfig(**{"iterations": 6, "batch_size": 16, "lr": 0.01, "memory_every": 1, **training})
    return CellConfig(dataset=dataset or DatasetConfig(name="sphere2", n_train=64, n_test=32),
                      model=model or ModelConfig(name="ott_conv1d", width=4), training=tc,
                      solver=solver, steps=steps, tol=tol, seed=seed)


PATHS = {
    "single": [_cell()],
    "adapted": [_cell(adaptation={"mode": "step", "check_every": 2, "start": "grid"})],
    "regularised": [_cell(regularization={"kinetic": 0.1, "jacobian": 0.1})],
    "adjoint": [_cell(solver="midpoint", gradient="adjoint")],
    "adaptive": [_cell(solver="dopri5", steps=None, tol=1e-2)],
    "time_series": [_cell(dataset=DatasetConfig(name="van_der_pol", n_train=32, n_test=16, n_points=3),
                          model=ModelConfig(name="trajectory", hidden=8))],
    "stacked": [_cell(0), _cell(1)],
}
for cfg in PATHS.values():
    for c in cfg:
        c.dataset.check_params("dataset")
        c.model.check_params("model")


@pytest.mark.parametrize("path", list(PATHS))
def test_every_training_path_logs_every_schema_column(path):
    cells = PATHS[path]
    assert (len(cells) > 1) == (stack_key(cells[0]) is not None and len(cells) > 1)
    for result in run_cells(cells, ENTRIES, REF):
        assert result.status is Status.OK, result.record.message
        assert len(result.log) == 6
        for row in result.log:
            assert tuple(row) == LOG_NAMES
        for row in result.rows:
            assert tuple(row) == RESULT_NAMES


def test_stacked_log_equals_the_single_seed_log_column_by_column():
    stacked = run_cells(PATHS["stacked"], ENTRIES, REF)
    for cell, grouped in zip(PATHS["stacked"], stacked):
        (alone,) = run_cells([cell], ENTRIES, REF)
        a, b = pd.DataFrame(grouped.log), pd.DataFrame(alone.log)
        assert list(a.columns) == list(b.columns) == list(LOG_NAMES)
        for col in LOG_NAMES:
            if col in CLOCK:
                assert a[col].notna().equals(b[col].notna()), col
                continue
            x, y = a[col], b[col]
            if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
                rel = RELATIVE.get(col, 1e-5)
                assert ((x - y).abs().fillna(0) <= rel * (1e-12 + y.abs().fillna(0)) + 1e-6).all(), col
                assert x.isna().equals(y.isna()), col
            else:
                assert x.astype(str).tolist() == y.astype(str).tolist(), col
        ra, rb_ = pd.DataFrame(grouped.rows), pd.DataFrame(alone.rows)
        for col in ("accuracy", "loss", "nfe", "status", "drift"):
            assert ra[col].tolist() == pytest.approx(rb_[col].tolist(), abs=1e-5, nan_ok=True) \
                if col != "status" else ra[col].tolist() == rb_[col].tolist()


def test_lost_rows_and_benchmark_rows_follow_the_schema():
    cell = _cell()
    points = grid_points(ENTRIES, REF, cell.train_spec)
    for row in lost_rows(cell.columns(), points, "BrokenProcessPool: gone"):
        assert tuple(row) == RESULT_NAMES and row["status"] == "lost"
    torch.manual_seed(0)
    model = rb.MODELS.get("ott_conv1d")((2,), 2, width=4)
    x = torch.randn(20, 2)
    y = (x.norm(dim=1) > 1).long()
    out = rb.benchmark(model, (x, y), [e.model_dump(exclude_none=True) for e in ENTRIES],
                       train={"solver": "euler", "steps": 2})
    assert list(out.table.columns) == list(RESULT_NAMES)


def test_suite_tables_have_exactly_the_schema_columns(smoke_run):
    results = pd.read_csv(smoke_run / "results.csv")
    training = pd.read_csv(smoke_run / "training.csv")
    assert tuple(results.columns) == RESULT_NAMES
    assert tuple(training.columns) == TRAINING_NAMES
    # the memory probe ran (every memory_every iterations, the first included) on every cell
    first = training[training["iteration"] == 0]
    assert first["saved_mb"].notna().all() and (first["nfe_backward"] == 0).all()
    assert not math.isnan(results.loc[results["is_train_config"], "drift"].iloc[0])
