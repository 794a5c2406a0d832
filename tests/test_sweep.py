"""rb.sweep(): the critical step count of a plain model family (robustbench_ode/sweeping.py).

- it reproduces a suite of the same settings (tests/sweep_family.py trains the suite's model
  with a plain loop, under substitution): the same accuracies, the same critical.csv;
- it resumes after a SIGKILL: the stored cells are not trained again, and the table equals an
  uninterrupted run's;
- its key covers what trains a cell, and bad input is one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import robustbench_ode as rb
from robustbench_ode.config.suite import parse_suite
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.run.runner import run_suite

sys.path.insert(0, str(Path(__file__).parent))
import sweep_family as fam  # noqa: E402

GRID = [{"solver": "euler", "step_factors": [1, 2, 4]}, {"solver": "rk4", "step_factors": [1, 2]}]
TIMING = ["eval_seconds", "train_seconds", "cell", "message", "train_message"]


def _critical(table: pd.DataFrame) -> pd.DataFrame:
    return table[["critical_rule", "critical_checks", "critical_steps", "critical_status",
                  "critical_per_seed", "swept_steps"]].reset_index(drop=True)


def _compare(settings, steps, seeds, tmp_path):
    suite = parse_suite(fam.suite(settings, steps, seeds, GRID))
    run_suite(suite, tmp_path / "suite", progress=False)
    suite_rows = pd.read_csv(tmp_path / "suite" / "results.csv")
    suite_critical = pd.read_csv(tmp_path / "suite" / "critical.csv")
    result = rb.sweep(lambda seed: fam.make_model(seed, settings),
                      lambda model, data: fam.train_fn(model, data, settings),
                      lambda seed: fam.data(seed, settings), steps=steps, seeds=seeds,
                      out=tmp_path / "sweep", grid=GRID, name="sphere2", model_label="ott_conv1d",
                      stack=False)  # the suite's seed stacking is off too (fast: false): the same operations
    ours = pd.read_csv(tmp_path / "sweep" / "critical.csv")
    pd.testing.assert_frame_equal(_critical(ours), _critical(suite_critical), check_dtype=False)
    pd.testing.assert_frame_equal(_critical(result.critical), _critical(suite_critical), check_dtype=False)
    keys = ["seed", "train_steps", "test_solver", "test_steps"]
    both = suite_rows.merge(result.table, on=keys, suffixes=("_suite", "_sweep"))
    assert len(both) == len(suite_rows) == len(result.table)
    # the same operations (the suite's fast paths off: tests/sweep_family.py): the same models
    assert (both["accuracy_suite"] - both["accuracy_sweep"]).abs().max() <= 1 / settings["n_test"]
    assert (both["nfe_suite"] == both["nfe_sweep"]).all()  # the grid is solved as the suite solves it
    return ours


LEARNS = {**fam.SETTINGS, "iterations": 200, "batch_size": 64, "width": 8, "n_train": 256, "n_test": 256}


def test_sweep_reproduces_the_suite_critical_step_count(tmp_path):
    ours = _compare(LEARNS, [1, 2, 8], [0, 1], tmp_path)
    assert set(ours["critical_rule"]) == {"strict", "adaptation"}
    assert (ours["critical_status"] == "not_found").all()  # learned models, none of them an ODE


@pytest.mark.slow
def test_sweep_reproduces_a_finite_suite_critical_step_count(tmp_path):
    ours = _compare(LEARNS, [16, 64], [0, 1], tmp_path)
    fixed = ours[ours["critical_checks"] == "fixed"].set_index("critical_rule")["critical_steps"]
    assert fixed.to_dict() == {"strict": 64, "adaptation": 16}  # a finite count to agree on


def _run(out: Path, calls: Path, hang_at: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SWEEP_CALLS": str(calls),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    env.pop("SWEEP_HANG_AT", None)
    if hang_at is not None:
        env["SWEEP_HANG_AT"] = str(hang_at)
    return subprocess.Popen([sys.executable, str(Path(__file__).parent / "sweep_family.py"), str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_sweep_resumes_after_a_kill_without_retraining_stored_cells(tmp_path):
    out, calls = tmp_path / "killed", tmp_path / "calls.txt"
    proc = _run(out, calls, hang_at=2)  # the second cell's training hangs: the first is stored by then
    deadline = time.monotonic() + 120
    while _lines(calls) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = [p for p in (out / "cells").iterdir() if not p.name.startswith(".")]
    assert len(stored) == 1 and (stored[0] / "manifest.json").is_file()
    before = {p.name: p.stat().st_mtime_ns for p in stored[0].iterdir()}
    assert not (out / "results.csv").exists()

    resumed = _run(out, calls)
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[0].decode()[-2000:]
    assert _lines(calls) == 2 + 3  # 4 cells: the stored one is not trained again
    assert {p.name: p.stat().st_mtime_ns for p in stored[0].iterdir()} == before

    fam.run(tmp_path / "whole")  # uninterrupted, here (one thread, as the subprocesses)
    a = pd.read_csv(out / "results.csv").drop(columns=TIMING)
    b = pd.read_csv(tmp_path / "whole" / "results.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pd.read_csv(out / "critical.csv"),
                                  pd.read_csv(tmp_path / "whole" / "critical.csv"))


def _tiny(tmp_path, **kw):
    settings = {**fam.SETTINGS, "iterations": 2}
    args = dict(steps=[1], seeds=[0], out=tmp_path / "tiny", grid=[{"solver": "euler", "step_factors": [1]}])
    args.update(kw)
    return rb.sweep(lambda seed: fam.make_model(seed, settings),
                    lambda model, data: fam.train_fn(model, data, settings),
                    lambda seed: fam.data(seed, settings), **args)


def test_the_key_covers_the_train_function_the_data_and_key(tmp_path):
    first = _tiny(tmp_path)
    assert _tiny(tmp_path).trained == []  # the same call: loaded
    assert _tiny(tmp_path, key="v2").trained != []  # key= is keyed
    other = rb.sweep(lambda seed: fam.make_model(seed), lambda model, data: None,
                     lambda seed: fam.data(seed), steps=[1], seeds=[0], out=tmp_path / "tiny",
                     grid=[{"solver": "euler", "step_factors": [1]}])
    assert other.trained != first.trained  # another train_fn: another cell
    assert other.table["train_status"].iloc[0] == "failed"  # it solved nothing: no ODE was trained
    # more grid points: the stored model is tested at them, not trained again
    more = _tiny(tmp_path, grid=[{"solver": "euler", "step_factors": [1, 2]}])
    assert more.trained == [] and len(more.table) == 2 + 1  # two points and the reference


@pytest.mark.parametrize("kw, needle", [({"steps": [0]}, "steps"), ({"seeds": []}, "seeds"),
                                        ({"solver": "nope"}, "solver"), ({"key": object()}, "key"),
                                        ({"grid": [{"solver": "euler", "bogus": 1}]}, "grid.0")])
def test_bad_arguments_are_one_line_errors(tmp_path, kw, needle):
    with pytest.raises(SuiteError) as err:
        _tiny(tmp_path, **kw)
    assert needle in str(err.value) and "\n" not in str(err.value)
