"""The cost estimate of ``validate`` / ``run`` (harness/cost.py), and out-of-memory outcomes: a
status by type (core/status.py), never stored, so that a rerun on a bigger machine retries them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from robustbench_ode import cli
from robustbench_ode.config import parse_suite
from robustbench_ode.core.status import Status
from robustbench_ode.harness.cost import REFUSE_SECONDS, WARN_SECONDS, estimate
from robustbench_ode.run import runner
from robustbench_ode.solvers import fixed

SUITE = {
    "name": "cost",
    "dataset": {"name": "sphere2", "n_train": 256, "n_test": 200},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 10, "batch_size": 64, "eval_batch_size": 100},
    "train": {"seeds": [0, 1], "grid": [{"solver": "euler", "steps": [2, 8]},
                                        {"solver": "dopri5", "tol": [0.01]}]},
    "test": [{"solver": "rk4", "steps": [4]}, {"solver": "euler", "step_factors": [2]}],
}


def _suite(**changes) -> dict:
    doc = json.loads(json.dumps(SUITE))
    for path, value in changes.items():
        node = doc
        *head, last = path.split(".")
        for p in head:
            node = node[int(p) if p.isdigit() else p]
        node[last] = value
    return doc


def test_the_counts_are_steps_times_stages_times_iterations_and_batches():
    cost = estimate(parse_suite(_suite()))
    assert cost.cells == 6 and cost.adaptive_cells == 2
    # training: 2 seeds x 10 iterations x (2 + 8 euler steps) x 1 stage; dopri5: 10 x 7 (a lower bound)
    assert cost.train_fe == 2 * 10 * (2 + 8) + 2 * 10 * 7
    # test: rk4 at 4 steps (4 stages) and euler at 2x the train steps, 2 batches of 100, plus the
    # train point itself; the dopri5 cells' train and reference points and factor rows are unknown
    per_euler = {2: (4 * 4 + 2 * 2 + 2) * 2, 8: (4 * 4 + 16 + 8) * 2}
    assert cost.test_fe == 2 * (per_euler[2] + per_euler[8]) + 2 * (4 * 4 * 2)
    assert cost.unknown_rows == 4 * 1 + 2 * 2  # each cell's reference; the dopri5 cells' own point too
    assert cost.verdict() is None


def test_validate_prints_the_estimate_without_torch(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(_suite()))
    assert cli.main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "6 cells" in out and "340 training FE (at least: 2 cells train adaptively)" in out, out
    assert "test-grid FE" in out and "sample-evaluations" in out


@pytest.mark.parametrize("changes, refused", [
    ({"training.iterations": 10_000_000}, False),  # a day of CPU time: a warning
    ({"training.iterations": 10_000_000, "train.seeds": list(range(200))}, True),  # refused
    ({"test": [{"solver": "rk4", "steps": [1_000_000]}], "dataset.n_test": 10_000_000,
      "train.seeds": list(range(50))}, True),
])
def test_beyond_the_machine_warns_or_refuses_unless_forced(tmp_path, capsys, changes, refused):
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(_suite(**changes)))
    seconds = estimate(parse_suite(_suite(**changes))).seconds
    assert (REFUSE_SECONDS if refused else WARN_SECONDS) <= seconds < (1e99 if refused else REFUSE_SECONDS)
    assert cli.main(["validate", str(path)]) == (2 if refused else 0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "on 2 CPU cores" in err and len(err) <= 301, err
    assert ("--force" in err) == refused
    assert cli.main(["validate", str(path), "--force"]) == 0
    if refused:  # run refuses it too, before writing anything
        assert cli.main(["run", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
        assert "--force" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_a_batch_larger_than_the_training_set_is_a_warning_naming_both_keys(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(_suite(**{"training.batch_size": 1_000_000})))
    assert cli.main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert "training.batch_size 1000000 is more than dataset.n_train 256" in err, err


def test_memory_errors_are_oom_by_type():
    assert Status.from_exception(torch.OutOfMemoryError("CUDA out of memory"))[0] is Status.OOM
    assert Status.from_exception(MemoryError())[0] is Status.OOM
    with pytest.raises(RuntimeError) as failed:  # what the CPU allocator raises (torch 2.14: RuntimeError)
        torch.empty(1 << 62, dtype=torch.uint8)
    assert Status.from_exception(failed.value)[0] is Status.OOM
    assert Status.from_exception(RuntimeError("shape mismatch"))[0] is Status.FAILED


def test_out_of_memory_rows_are_shown_not_stored_and_retried(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)
    doc = _suite(**{"train.grid": [{"solver": "euler", "steps": [2]}], "train.seeds": [0],
                    "diagnostics": {"enabled": False}})
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(doc))
    real = fixed.integrate

    def small_machine(solver, *args, **kwargs):
        if solver.name == "rk4" and not torch.is_grad_enabled():  # testing, not training
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 100000000000 bytes")
        return real(solver, *args, **kwargs)

    monkeypatch.setattr(fixed, "integrate", small_machine)
    out = tmp_path / "o"
    assert cli.main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    df = pd.read_csv(out / "results.csv")
    assert df.loc[df.test_solver == "rk4", "status"].tolist() == ["oom"]
    (stored,) = (out / "cells").iterdir()
    assert "rk4" not in (stored / "rows.csv").read_text()  # not stored: the next run retries it
    monkeypatch.setattr(fixed, "integrate", real)  # a bigger machine
    capsys.readouterr()
    assert cli.main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    assert "trained 0, re-tested 1" in capsys.readouterr().out
    df = pd.read_csv(out / "results.csv")
    assert df.loc[df.test_solver == "rk4", "status"].tolist() == ["ok"]


def test_out_of_memory_in_training_is_a_status_not_stored_and_retried(tmp_path, monkeypatch, capsys):
    """CUDA's OutOfMemoryError in the middle of training: the cell's rows say oom, the suite goes
    on (the other cell trains), nothing of it is stored, and the next run trains it."""
    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)
    doc = _suite(**{"train.grid": [{"solver": "euler", "steps": [2, 4]}], "train.seeds": [0],
                    "diagnostics": {"enabled": False}})
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(doc))
    real = fixed.integrate

    def small_machine(solver, *args, steps=None, **kwargs):
        if steps == 4 and torch.is_grad_enabled():  # training the 4-step cell, not testing
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(solver, *args, steps=steps, **kwargs)

    monkeypatch.setattr(fixed, "integrate", small_machine)
    out = tmp_path / "o"
    assert cli.main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df.loc[df.train_steps == 4, "train_status"]) == {"oom"}
    assert set(df.loc[df.train_steps == 2, "status"]) == {"ok"}
    assert len(list((out / "cells").iterdir())) == 1  # the 2-step cell only
    monkeypatch.setattr(fixed, "integrate", real)  # a bigger machine
    capsys.readouterr()
    assert cli.main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    assert "trained 1" in capsys.readouterr().out
    assert set(pd.read_csv(out / "results.csv")["status"]) == {"ok"}


def test_a_larger_model_costs_its_multiply_adds():
    """The same grid on 900-long signals: the work grows by the field's multiply-adds, 450x."""
    from robustbench_ode.harness.cost import REFERENCE_MACS
    from robustbench_ode.models import arithmetic

    small = estimate(parse_suite(_suite(**{"model.width": 32})))
    doc = _suite(**{"model.width": 32, "dataset": {"name": "spheres", "dim": 900, "n_train": 256,
                                                     "n_test": 200}})
    large = estimate(parse_suite(doc))
    factor = arithmetic.ott_conv1d({"width": 32}, (900,)) / REFERENCE_MACS
    assert factor == 450 and large.work == pytest.approx(small.work * factor)
    assert large.train_fe == small.train_fe  # the counts do not change, their weight does


# Committed runs (results/<name>/suite.yaml and meta.json) whose settings the estimate models:
# fixed-step training by autograd, no adaptation or regularisation (those it counts at their
# lower bound), from Sphere2's model to 900-D spheres' (450x its multiply-adds). One thread per
# run, the other core busy: the estimate's "2 CPU cores" is that.
MEASURED = ["quick", "three_minima", "anode", "fashion_mnist_full", "sphere2_investigation", "spheres900_cpu"]


@pytest.mark.parametrize("name", MEASURED)
def test_the_estimate_is_within_3x_of_the_committed_runs_wall_time(name):
    from datetime import datetime
    from pathlib import Path

    from robustbench_ode.config import load_suite

    folder = Path(__file__).resolve().parent.parent / "results" / name
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["loaded"] == 0 and meta["retested"] == 0  # every cell computed in that run
    start, end = (datetime.fromisoformat(meta[k]) for k in ("started", "finished"))
    wall = (end - start).total_seconds()
    seconds = estimate(load_suite(folder / "suite.yaml")).seconds
    assert wall / 3 <= seconds <= 3 * wall, (seconds, wall)


def test_the_limits_are_a_cpus(tmp_path, capsys):
    """A suite refused on a CPU validates for a GPU (--device cuda), without a warning."""
    doc = _suite(**{"training.iterations": 10_000_000, "train.seeds": list(range(200))})
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(doc))
    assert cli.main(["validate", str(path)]) == 2
    assert "--device cuda" in capsys.readouterr().err
    assert cli.main(["validate", str(path), "--device", "cuda"]) == 0
    assert capsys.readouterr().err == ""


# The estimate of the whole command within 2x, on the suites the README and the tests run. The
# committed runs' meta.json measures the cells (started to finished: no start-up, no report), so
# those compare with Cost.seconds; the smoke suite is run here (slow) and compared whole.
WITHIN_2X = ["demo", "xor_fan", "gradient_memory"]


@pytest.mark.parametrize("name", WITHIN_2X)
def test_the_estimate_is_within_2x_of_the_committed_runs_wall_time(name):
    from datetime import datetime
    from pathlib import Path

    from robustbench_ode.config import load_suite

    folder = Path(__file__).resolve().parent.parent / "results" / name
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["loaded"] == 0 and meta["retested"] == 0
    start, end = (datetime.fromisoformat(meta[k]) for k in ("started", "finished"))
    wall = (end - start).total_seconds()
    cost = estimate(load_suite(folder / "suite.yaml"))
    assert wall / 2 <= cost.seconds <= 2 * wall, (cost.seconds, wall)
    assert cost.total_seconds > cost.seconds  # start-up and report on top


@pytest.mark.slow
def test_the_whole_command_estimate_is_within_2x_of_a_smoke_run(tmp_path):
    """``run suites/smoke.yaml`` in a fresh process, start-up and report included. Compared with
    the child's CPU time (user + sys), not its wall time: on the shared machine the wall time
    measures the load; one thread on an idle core takes about its CPU time."""
    import os
    import resource
    import subprocess
    import sys
    from pathlib import Path

    from robustbench_ode.config import load_suite

    root = Path(__file__).resolve().parent.parent
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "robustbench_ode", "run", str(root / "suites" / "smoke.yaml"),
                    "--out", str(tmp_path / "smoke"), "--no-progress"], check=True, timeout=900,
                   env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)},
                   capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = estimate(load_suite(root / "suites" / "smoke.yaml")).total_seconds
    assert cpu / 2 <= total <= 2 * cpu, (total, cpu)
