"""Cell keys are the store's addresses: they must not move. Every committed run's cells keep their
keys (recomputed from its suite.yaml), the smoke suite's keys are pinned, a new training setting at
its default leaves every key where it is, and a cell folder written by the previous code (0.2 at
9322c17, tests/fixtures/old_cell) still loads as a record without retraining (only its
diagnosis, of the earlier method, is redone)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from robustbench_ode.config import TrainingConfig, read_suite
from robustbench_ode.config.training import setting
from robustbench_ode.core.context import CPU
from robustbench_ode.core.status import Status
from robustbench_ode.harness.analysis import settings
from robustbench_ode.harness.cell import CellConfig, cells
from robustbench_ode.run.jobs import RetestJob
from robustbench_ode.run.runner import plan_run
from robustbench_ode.run.store import CellStore

ROOT = Path(__file__).resolve().parent.parent
RUNS = sorted(p.parent for p in (ROOT / "results").glob("*/suite.yaml")
              if (p.parent / "results.csv").is_file())
OLD = Path(__file__).resolve().parent / "fixtures" / "old_cell"
OLD_KEY = "cf1fd91c7b03658e"

# The smoke suite's keys as 0.2 computed them (main at 9322c17): euler 2, euler 8, dopri5 1e-2.
SMOKE_KEYS = ["f15d9008696af85c", "219ad5fa3be5f540", "7024111cf30deee3"]


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_a_committed_run_keeps_the_keys_of_its_cells(run):
    suite, _ = read_suite(run / "suite.yaml")
    stored = set(pd.read_csv(run / "results.csv", usecols=["cell"])["cell"].astype(str))
    assert {c.key for c in cells(suite)} == stored


def test_committed_runs_are_found():
    assert len(RUNS) >= 10, RUNS


def test_the_smoke_suite_keys_are_pinned():
    suite, _ = read_suite(ROOT / "suites" / "smoke.yaml")
    assert [c.key for c in cells(suite)] == SMOKE_KEYS


class WithANewSetting(TrainingConfig):
    """A training setting added later, with a default that is not None."""

    new_knob: int = setting(7)


def test_a_new_setting_at_its_default_leaves_the_key_unchanged():
    suite, _ = read_suite(ROOT / "suites" / "smoke.yaml")
    cell = cells(suite)[0]
    at_default = CellConfig.model_validate({**cell.model_dump(), "training": WithANewSetting(
        **cell.training.model_dump())})
    assert at_default.key == cell.key
    changed = at_default.model_copy(update={"training": WithANewSetting(**cell.training.model_dump(),
                                                                        new_knob=8)})
    assert changed.key != cell.key


def test_model_fast_off_and_training_fast_off_are_one_cell():
    suite, _ = read_suite(ROOT / "suites" / "smoke.yaml", ["model.fast=false"])
    by_model = [c.key for c in cells(suite)]
    suite, _ = read_suite(ROOT / "suites" / "smoke.yaml", ["training.fast=false"])
    by_training = [c.key for c in cells(suite)]
    assert by_model == by_training
    assert not cells(suite)[0].training.fast and cells(suite)[0].model.params.get("fast") is False


def _old_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(OLD, run)
    return run


def test_a_cell_folder_written_by_the_previous_code_loads_as_a_record(tmp_path):
    run = _old_run(tmp_path)
    stored = CellStore(run).load(OLD_KEY)
    record = stored.record
    assert record.key == OLD_KEY and record.status is Status.OK and not record.adapted
    assert record.trained_at.solver == "euler" and record.trained_at.steps == 2
    assert all(isinstance(v, torch.Tensor) for v in record.weights.load().values())
    assert len(stored.rows) == 3 and stored.log and stored.diagnosis is not None
    assert record.columns()["train_steps"] == 2


def test_a_run_over_a_folder_of_the_previous_code_retrains_nothing(tmp_path):
    run = _old_run(tmp_path)
    suite, _ = read_suite(run / "suite.yaml")
    assert [c.key for c in cells(suite)] == [OLD_KEY]
    plan = plan_run(suite, CellStore(run), CPU, fresh=False)
    # its weights and rows are kept; only its diagnosis, of the earlier per-sample method, is redone
    (unit,) = plan.units
    assert isinstance(unit, RetestJob) and unit.points == () and unit.diagnostics is not None
    assert unit.record.key == OLD_KEY and plan.loaded == []
    assert CellStore(run).load(OLD_KEY).needs_diagnosis(settings(suite.diagnostics, suite.reference))
