"""Acceptance: a run stopped by a real signal ends cleanly, in every executor that owns processes.

- SIGTERM (what ``kill``, a batch scheduler's time limit or a container stop sends) ends a run
  like Ctrl-C: exit code 143, one line on stderr, no traceback, the pool's workers stopped at
  once rather than left training a cell nobody will collect, and the cell's checkpoint kept.
- SIGKILL of the driver cannot be caught: the workers notice their parent is gone and stop,
  instead of training on as orphans beside the rerun that resumes the same cell.
- SIGINT of a run in this process: exit code 130, the finished cell's rows already in the table.

Each run trains a cell far too long to finish; the test waits for its first checkpoint (and the
worker's pid in ``DIR/running/``), then sends the signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from robustbench_ode.config import parse_suite
from robustbench_ode.core.signals import Stopped, exit_code, stopping
from robustbench_ode.harness.cell import cells
from robustbench_ode.run.store import CellStore, Checkpoint

ROOT = Path(__file__).resolve().parent.parent
LONG = {"iterations": 200000, "batch_size": 16, "lr": 0.01, "checkpoint_every": 5}


def _suite(steps: list[int]) -> dict:
    return {
        "name": "signalled",
        "dataset": {"name": "sphere2", "n_train": 64, "n_test": 32},
        "model": {"name": "ott_conv1d", "width": 4},
        "training": LONG,
        "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": steps}]},
        "test": [{"solver": "euler", "step_factors": [1]}],
    }


def _start(suite: dict, tmp: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    suite_file, out = tmp / "suite.yaml", tmp / "out"
    suite_file.write_text(json.dumps(suite))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "robustbench_ode", "run", str(suite_file), "--out", str(out),
           "--no-progress", "--force", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out


def _wait_for(proc: subprocess.Popen, ready, what: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run never reached {what}")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only its exit status waits to be read


def _worker_in_training(proc: subprocess.Popen, out: Path, key: str) -> int:
    """The pid of the worker training cell ``key``, once its first checkpoint is on disk."""
    store, ckpt = CellStore(out), out / "checkpoints" / f"{key}.pt"
    _wait_for(proc, lambda: store.running_files(key) and ckpt.is_file(), "the first checkpoint")
    pid = json.loads(store.running_files(key)[0].read_text())["pid"]
    assert pid != proc.pid, "the cell trains in a worker process"
    return pid


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)  # leave no stray process behind a failing test
            return False
        time.sleep(0.05)
    return True


def _one_clean_line(stderr: str, signame: str) -> str:
    assert "Traceback" not in stderr, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("robustbench-ode: ") and signame in last, stderr[-2000:]
    return last


def test_sigterm_stops_the_run_and_its_workers_and_keeps_the_checkpoint(tmp_path):
    suite = _suite([1])
    (key,) = (c.key for c in cells(parse_suite(suite)))
    proc, out = _start(suite, tmp_path, "--executor", "process", "--workers", "1", "--threads", "1")
    worker = _worker_in_training(proc, out, key)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run did not end within 60 s of SIGTERM")
    assert proc.returncode == 128 + signal.SIGTERM
    last = _one_clean_line(proc.stderr.read(), "SIGTERM")
    assert "resume" in last
    assert _gone_within(worker, 10), "the worker went on training after the run ended"
    assert Checkpoint(out / "checkpoints" / f"{key}.pt").load()["iteration"] >= LONG["checkpoint_every"]
    assert not (out / "cells" / key).exists()


@pytest.mark.slow
def test_workers_stop_when_the_driver_is_killed(tmp_path):
    suite = _suite([1])
    (key,) = (c.key for c in cells(parse_suite(suite)))
    proc, out = _start(suite, tmp_path, "--executor", "process", "--workers", "1", "--threads", "1")
    worker = _worker_in_training(proc, out, key)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _gone_within(worker, 15), "an orphaned worker went on training after its driver was killed"


@pytest.mark.slow
def test_sigint_in_process_keeps_the_finished_cell(tmp_path):
    suite = {**_suite([1]), "training": [{**LONG, "iterations": 10, "label": "short"},
                                          {**LONG, "label": "long"}]}
    short, long = (c.key for c in cells(parse_suite(suite)))
    proc, out = _start(suite, tmp_path)  # the local executor: cells train in the driver
    _wait_for(proc, lambda: (out / "checkpoints" / f"{long}.pt").is_file(), "the long cell's checkpoint")
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run did not end within 60 s of SIGINT")
    assert proc.returncode == 128 + signal.SIGINT
    _one_clean_line(proc.stderr.read(), "SIGINT")
    assert (out / "cells" / short / "model.pt").is_file() and not (out / "cells" / long).exists()
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["cell"]) == {short} and (rows["status"] == "ok").all()


def test_sigterm_inside_stopping_raises_stopped_and_an_ignored_sighup_stays_ignored():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with pytest.raises(Stopped) as caught, stopping():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        assert exit_code(caught.value) == 143 and isinstance(caught.value, KeyboardInterrupt)
        assert exit_code(KeyboardInterrupt()) == 130
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
