"""Acceptance (issue 28, item 3): a FIFO or ``/dev/zero`` planted as any file of a stored cell,
its manifest or its checkpoint is one line (a damaged cell, or a checkpoint ignored), never a hang
or an out-of-memory: ``verify`` and ``run`` finish.

``verify`` runs in-process under a 20 s ``SIGALRM`` guard (a hang fails the test instead of
stalling the suite; the guard is a ceiling, not a timing); one ``run`` per kind runs in a
subprocess with a timeout, as a user would see it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from robustbench_ode import cli
from robustbench_ode.run import runner
from robustbench_ode.run.store import CELLS, CHECKPOINTS

TINY = {
    "name": "tiny",
    "dataset": {"name": "sphere2", "n_train": 64, "n_test": 32},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 4, "batch_size": 32, "lr": 0.01, "checkpoint_every": 2},
    "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1]}]},
    "test": [{"solver": "euler", "step_factors": [1]}],
}
CELL_FILES = ["manifest.json", "config.json", "model.pt", "rows.csv", "training.csv"]
KINDS = ["fifo", "dev_zero"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-store")
    suite = root / "tiny.yaml"
    suite.write_text(json.dumps(TINY))
    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "write_report_safely", lambda run_dir: None)
    try:
        assert cli.main(["run", str(suite), "--out", str(root / "run"), "--no-progress"]) == 0
    finally:
        mp.undo()
    return suite, root / "run"


def _plant(path: Path, kind: str) -> None:
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


class Hung(BaseException):
    """Raised by the alarm: not an OSError, so no handler of the package swallows it."""


def _alarm(signum, frame):
    raise Hung("hung on a hostile file")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", CELL_FILES)
def test_verify_names_a_cell_with_a_fifo_or_dev_zero_file_as_damaged(base, tmp_path, capsys, name, kind):
    _, run = base
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (cell,) = (copy / CELLS).iterdir()
    _plant(cell / name, kind)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        code = cli.main(["verify", str(copy)])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    out = capsys.readouterr()
    assert code == 1
    assert cell.name in out.out + out.err and "Traceback" not in out.err


RUNS = [pytest.param(w, k, marks=[] if (w, k) == ("manifest", "fifo") else [pytest.mark.slow])
        for w in ("manifest", "checkpoint") for k in KINDS]


@pytest.mark.parametrize("where, kind", RUNS)
def test_run_over_a_fifo_or_dev_zero_manifest_or_checkpoint_finishes(base, tmp_path, where, kind):
    suite, run = base
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (cell,) = (copy / CELLS).iterdir()
    if where == "manifest":
        _plant(cell / "manifest.json", kind)
    else:  # the cell unfinished, its checkpoint hostile: training starts from scratch
        shutil.rmtree(cell)
        (copy / CHECKPOINTS).mkdir(exist_ok=True)
        _plant(copy / CHECKPOINTS / f"{cell.name}.pt", kind)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "robustbench_ode", "run", str(suite), "--out", str(copy),
                           "--no-progress"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    if where == "manifest":
        assert cell.name in proc.stdout + proc.stderr  # named as damaged, moved aside, recomputed
    assert (copy / CELLS / cell.name / "manifest.json").is_file()
