"""Acceptance: SIGKILL a run in the middle of writing a cell, in the middle of training one and in
the middle of writing a checkpoint, rerun, and get the uninterrupted run's tables, with nothing
that had finished retrained.

The child process patches one store method to stop at the chosen moment (after announcing it in a
marker file), so the kill lands exactly there instead of at a random time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from robustbench_ode.config import parse_suite
from robustbench_ode.harness.cell import cells
from robustbench_ode.run.runner import run_suite
from robustbench_ode.run.store import Checkpoint

ROOT = Path(__file__).resolve().parent.parent
SUITE = {
    "name": "killme",
    "dataset": {"name": "sphere2", "n_train": 96, "n_test": 48},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 30, "batch_size": 32, "lr": 0.01, "checkpoint_every": 10},
    "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1, 2, 3]}]},
    "test": [{"solver": "euler", "step_factors": [1, 2]}, {"solver": "rk4", "steps": [2]}],
}

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from robustbench_ode import cli
    from robustbench_ode.run import store
    mode, key, marker, suite, out = sys.argv[1:6]

    def stop_here():
        Path(marker).write_text("here")
        time.sleep(120)  # the parent kills us now

    if mode == "write":  # the cell's files are written, the rename has not happened
        publish = store.CellStore._publish
        def _publish(self, tmp, final):
            if final.name == key:
                stop_here()
            publish(self, tmp, final)
        store.CellStore._publish = _publish
    elif mode == "checkpoint":  # inside the checkpoint write at iteration 20: half of it on disk
        real = store.torch.save
        def _torch_save(obj, f, *args, **kwargs):
            if Path(str(f)).name.startswith(f".{key}.pt") and obj.get("iteration") == 20:
                real(obj, f, *args, **kwargs)
                data = Path(f).read_bytes()
                Path(f).write_bytes(data[: len(data) // 2])
                stop_here()
            return real(obj, f, *args, **kwargs)
        store.torch.save = _torch_save
    else:  # mid-training, right after the checkpoint at iteration 20
        save = store.Checkpoint.save
        def _save(self, state):
            save(self, state)
            if self.path.stem == key and state["iteration"] == 20:
                stop_here()
        store.Checkpoint.save = _save
    sys.exit(cli.main(["run", suite, "--out", out, "--no-progress"]))
""")


def _kill_at(mode: str, key: str, suite_file: Path, out: Path, tmp: Path) -> None:
    marker = tmp / f"{mode}.marker"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, key, str(marker), str(suite_file), str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"child ended before the kill point: {proc.stdout.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("child never reached the kill point")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _table(path: Path, drop: tuple[str, ...]) -> pd.DataFrame:
    df = pd.read_csv(path)
    # wall-clock columns (seconds, throughput) differ between any two runs
    return df.drop(columns=[c for c in df.columns if c in drop or c.endswith(("seconds", "_per_s"))])


@pytest.mark.slow
def test_sigkill_mid_write_and_mid_cell_then_rerun(tmp_path, monkeypatch):
    suite = parse_suite(json.loads(json.dumps(SUITE)))
    k0, k1, k2 = (c.key for c in cells(suite))
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(json.dumps(SUITE))
    out = tmp_path / "killed"

    _kill_at("write", k1, suite_file, out, tmp_path)  # cell 0 done, cell 1 half published
    assert (out / "cells" / k0 / "model.pt").is_file()
    assert not (out / "cells" / k1).exists() and list((out / "cells").glob(".tmp-*"))
    done0 = (out / "cells" / k0 / "model.pt").stat().st_mtime_ns

    _kill_at("train", k2, suite_file, out, tmp_path)  # cell 1 redone, cell 2 killed at iteration 20
    assert (out / "cells" / k1 / "model.pt").is_file() and not (out / "cells" / k2).exists()
    assert Checkpoint(out / "checkpoints" / f"{k2}.pt").load()["iteration"] == 20
    done1 = (out / "cells" / k1 / "model.pt").stat().st_mtime_ns

    resumed_from = []
    load = Checkpoint.load
    monkeypatch.setattr(Checkpoint, "load", lambda self: resumed_from.append(s := load(self)) or s)
    report = run_suite(suite, out, progress=False, suite_text=suite_file.read_text())
    assert report.trained == [k2] and sorted(report.loaded) == sorted([k0, k1])
    assert [s["iteration"] for s in resumed_from if s] == [20]  # cell 2 went on from its checkpoint
    assert (out / "cells" / k0 / "model.pt").stat().st_mtime_ns == done0
    assert (out / "cells" / k1 / "model.pt").stat().st_mtime_ns == done1
    assert not list((out / "cells").glob(".tmp-*")) and not (out / "checkpoints" / f"{k2}.pt").exists()

    reference = tmp_path / "reference"
    run_suite(suite, reference, progress=False, suite_text=suite_file.read_text())
    pd.testing.assert_frame_equal(_table(out / "results.csv", ()), _table(reference / "results.csv", ()))
    pd.testing.assert_frame_equal(_table(out / "training.csv", ()), _table(reference / "training.csv", ()))


@pytest.mark.slow
def test_sigkill_mid_checkpoint_write_then_rerun(tmp_path, monkeypatch):
    suite = parse_suite(json.loads(json.dumps(SUITE)))
    k0, k1, k2 = (c.key for c in cells(suite))
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(json.dumps(SUITE))
    out = tmp_path / "killed"

    _kill_at("checkpoint", k1, suite_file, out, tmp_path)  # cell 0 done, cell 1 mid-checkpoint at 20
    assert Checkpoint(out / "checkpoints" / f"{k1}.pt").load()["iteration"] == 10  # the last whole one
    assert list((out / "checkpoints").glob(f".{k1}.pt*"))  # the half-written temporary
    done0 = (out / "cells" / k0 / "model.pt").stat().st_mtime_ns

    resumed_from = []
    load = Checkpoint.load
    monkeypatch.setattr(Checkpoint, "load", lambda self: resumed_from.append(s := load(self)) or s)
    report = run_suite(suite, out, progress=False, suite_text=suite_file.read_text())
    assert sorted(report.trained) == sorted([k1, k2]) and report.loaded == [k0]
    assert [s["iteration"] for s in resumed_from if s] == [10]  # cell 1 went on from iteration 10
    assert (out / "cells" / k0 / "model.pt").stat().st_mtime_ns == done0
    assert not list((out / "checkpoints").glob(".*")) and not list((out / "cells").glob(".tmp-*"))

    reference = tmp_path / "reference"
    run_suite(suite, reference, progress=False, suite_text=suite_file.read_text())
    pd.testing.assert_frame_equal(_table(out / "results.csv", ()), _table(reference / "results.csv", ()))
    pd.testing.assert_frame_equal(_table(out / "training.csv", ()), _table(reference / "training.csv", ()))
