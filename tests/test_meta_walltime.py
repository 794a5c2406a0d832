"""meta.json's wall-time breakdown of a run (run/meta.py WALL_TIME: its parts add up to the whole)
and the threads each worker really ran its units with (``threads_used``), issue 31."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest
import torch

from robustbench_ode.config import parse_suite
from robustbench_ode.run import threads as thread_budget
from robustbench_ode.run.executors import LocalExecutor
from robustbench_ode.run.meta import WALL_TIME, wall_time
from robustbench_ode.run.runner import run_suite

TINY = {
    "name": "tiny",
    "dataset": {"name": "sphere2", "n_train": 64, "n_test": 32},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 4, "batch_size": 32, "lr": 0.01},
    "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1, 2]}]},
    "test": [{"solver": "euler", "step_factors": [1]}],
}


def test_wall_time_parts_are_the_gaps_between_marks():
    marks = {"start": 10.0, "units": 11.5, "cells": 14.0, "tables": 14.25, "figures": 16.0, "report": 16.5}
    assert wall_time(marks) == {"startup_seconds": 1.5, "cells_seconds": 2.5, "tables_seconds": 0.25,
                                "figures_seconds": 1.75, "report_seconds": 0.5, "wall_seconds": 6.5}


def test_meta_json_breaks_the_run_down_and_the_parts_sum_to_the_whole(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="robustbench_ode")
    before = time.perf_counter()
    run_suite(parse_suite(TINY), tmp_path / "run", progress=False, executor=LocalExecutor(1),
              started=before - 2.0)  # as if the package's import had been two seconds earlier
    elapsed = time.perf_counter() - before
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert set(WALL_TIME) <= set(meta)
    parts = [meta[k] for k in WALL_TIME if k != "wall_seconds"]
    assert all(p >= 0 for p in parts) and meta["figures_seconds"] > 0 and meta["cells_seconds"] > 0
    assert sum(parts) == pytest.approx(meta["wall_seconds"], abs=0.01)
    assert meta["startup_seconds"] >= 2.0  # counted from ``started``
    assert meta["wall_seconds"] == pytest.approx(elapsed + 2.0, abs=0.5)
    assert meta["cells_seconds"] == meta["units_seconds"]
    assert any(r.getMessage().startswith("wall time") and "figures" in r.getMessage()
               for r in caplog.records)  # --verbose shows it


def test_threads_used_is_read_inside_the_unit_not_the_configured_budget(tmp_path, monkeypatch):
    """A budget of one thread that torch did not take (here: apply() sets two) is recorded as the
    two threads the unit ran with, not the one configured."""
    before = torch.get_num_threads()
    monkeypatch.setattr(thread_budget, "apply", lambda threads: torch.set_num_threads(threads + 1))
    try:
        run_suite(parse_suite(TINY), tmp_path / "run", progress=False, executor=LocalExecutor(1))
    finally:
        torch.set_num_threads(before)
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["threads_per_worker"] == 1 and meta["threads_used"] == [2]


def test_the_run_command_imports_matplotlib_only_for_the_report():
    """The driver's start-up leaves the report's plotting libraries for later (issue 31: the fixed
    part of a run); a pool or Ray run imports them in a thread while its workers run the cells
    (run/runner.py ``_warm_report``)."""
    code = ("import sys, robustbench_ode.cli, robustbench_ode.commands, robustbench_ode.run.runner; "
            "print(sorted(m for m in ('matplotlib', 'seaborn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.stdout.strip() == "[]"
