"""Executors give the local executor's tables: a process pool, and Ray on a real local instance
(Ray's equality tests: tests/test_ray.py); a Ray worker killed mid-cell does not stop the suite."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from robustbench_ode.config import load_suite, parse_suite
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.harness.cell import cells
from robustbench_ode.run.executors import ProcessExecutor, make_executor
from robustbench_ode.run.runner import run_suite
from robustbench_ode.run.store import CellStore

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "name": "tiny",
    "dataset": {"name": "sphere2", "n_train": 96, "n_test": 48},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 6, "batch_size": 32, "lr": 0.01},
    "train": {"seeds": [0, 1], "grid": [{"solver": "euler", "steps": [1, 2]}]},
    "test": [{"solver": "euler", "step_factors": [1, 2]}, {"solver": "rk4", "steps": [2]}],
}


def table(out: Path) -> pd.DataFrame:
    df = pd.read_csv(out / "results.csv")
    return df.drop(columns=[c for c in df.columns if c.endswith("seconds")])


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    # workers must import this checkout, wherever they start
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), before) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


def test_unknown_executor_and_missing_address_are_bad_input():
    with pytest.raises(SuiteError, match="unknown"):
        make_executor("slurm")
    with pytest.raises(SuiteError, match="only with --executor ray"):
        make_executor("local", address="auto")


# Ray on a local instance against the in-process run: tests/test_ray.py (in make test).


def test_process_pool_matches_local(tmp_path):  # in make test: two spawned workers, ~10-20 s
    suite = parse_suite(json.loads(json.dumps(TINY)))
    run_suite(suite, tmp_path / "local", progress=False)
    run_suite(suite, tmp_path / "pool", progress=False, executor=ProcessExecutor(2, 1))
    pd.testing.assert_frame_equal(table(tmp_path / "local"), table(tmp_path / "pool"))
    used = json.loads((tmp_path / "pool" / "meta.json").read_text())["threads_used"]
    assert used in ([1], [1, 1])  # read in each worker: one entry per worker that ran a unit


@pytest.mark.slow
def test_ray_smoke_suite_matches_local(tmp_path, ray_instance):
    from robustbench_ode.run.executors import RayExecutor

    suite = load_suite(ROOT / "suites" / "smoke.yaml")
    run_suite(suite, tmp_path / "local", progress=False)
    run_suite(suite, tmp_path / "ray", progress=False, executor=RayExecutor())
    pd.testing.assert_frame_equal(table(tmp_path / "local"), table(tmp_path / "ray"))


@pytest.mark.slow
def test_ray_worker_killed_mid_cell_suite_completes(tmp_path, ray_instance):
    from robustbench_ode.run.executors import RayExecutor

    doc = json.loads(json.dumps(TINY))
    doc["training"].update(iterations=300, checkpoint_every=25)
    doc["train"]["seeds"] = [0]
    suite = parse_suite(doc)
    victim = cells(suite)[1].key
    out = tmp_path / "ray"
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(
        report=run_suite(suite, out, progress=False, executor=RayExecutor())))
    runner.start()
    checkpoint, store = out / "checkpoints" / f"{victim}.pt", CellStore(out)
    deadline = time.monotonic() + 180
    while not (checkpoint.exists() and store.running_files(victim)):  # mid-cell: training has checkpointed
        assert time.monotonic() < deadline and runner.is_alive(), "cell never got going"
        time.sleep(0.05)
    pid = json.loads(store.running_files(victim)[0].read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    runner.join(timeout=300)
    report = outcome["report"]
    assert not report.failed and len(report.trained) == 2  # the killed cell was retried
    run_suite(suite, tmp_path / "local", progress=False)
    pd.testing.assert_frame_equal(table(tmp_path / "local"), table(out))


def test_unit_weights_follow_the_cost_estimate():
    """Pools start the costliest units first (run/jobs.py): the weights are harness/cost.py's."""
    from robustbench_ode.core.context import CPU
    from robustbench_ode.harness.cost import estimate
    from robustbench_ode.run.jobs import costliest_first, plan_training

    suite = load_suite(ROOT / "suites" / "scaling4_long.yaml")
    todo = cells(suite)
    jobs = [job for _, job in plan_training(todo, suite.test, suite.reference, CPU)]
    assert [jobs[i].cells[0].steps for i in costliest_first(jobs)] == [16, 8, 4, 2]
    assert sum(j.weight for j in jobs) == pytest.approx(estimate(suite).seconds)
