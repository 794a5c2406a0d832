"""Acceptance: a run folder belongs to one suite by content (run/ownership.py), and one run at a
time writes it.

- the overwrite case: a copy of a suite with ``name: quick`` appended (a duplicate key) and another
  suite's content under ``name: quick`` are both refused, and (a copy of) ``results/quick`` is
  left byte for byte as it was;
- ``--update`` moves a folder to a changed suite, keeping every stored cell and moving the
  previous tables under ``previous/<time>/``; a change of ``test:`` or ``diagnostics:`` only needs
  no ``--update``;
- folders written before the record existed are recognised by their suite.yaml;
- two concurrent runs on one folder compute each cell once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from robustbench_ode import cli
from robustbench_ode.config import load_suite, parse_suite
from robustbench_ode.harness.cell import cells
from robustbench_ode.run import runner
from robustbench_ode.run.ownership import RECORD, content_hash, suite_dump

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "name": "tiny",
    "dataset": {"name": "sphere2", "n_train": 96, "n_test": 48},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 6, "batch_size": 32, "lr": 0.01},
    "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1, 2]}]},
    "test": [{"solver": "euler", "step_factors": [1, 2]}],
    "diagnostics": {"enabled": False},
}


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):  # the figures take seconds and say nothing about ownership
    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) <= 301 and "Traceback" not in err, err
    return err


def test_the_overwrite_case_is_refused_and_results_quick_untouched(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "results" / "quick", repo / "results" / "quick")
    before = _fingerprint(repo / "results" / "quick")
    monkeypatch.chdir(repo)  # the default --out, results/<name>, is relative to the working directory
    appended = tmp_path / "my.yaml"
    appended.write_text((ROOT / "suites" / "smoke.yaml").read_text() + "name: quick\n")
    assert cli.main(["run", str(appended), "--no-progress"]) == 2
    assert "key 'name' given twice" in _one_line(capsys)
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text((ROOT / "suites" / "smoke.yaml").read_text().replace("name: smoke", "name: quick"))
    assert cli.main(["run", str(renamed), "--no-progress"]) == 2
    err = _one_line(capsys)
    assert "results/quick: holds suite 'quick' with other content" in err and "--update" in err, err
    assert "dataset" in err and "training" in err, err  # what differs
    assert _fingerprint(repo / "results" / "quick") == before
    # its own suite is recognised from the folder's suite.yaml (written before owner.json existed)
    quick = load_suite(ROOT / "suites" / "quick.yaml")
    assert runner.claim_out_dir(repo / "results" / "quick", quick).kind == "same"


def test_update_keeps_every_cell_and_moves_the_previous_tables(tmp_path, capsys):
    out = tmp_path / "out"
    first = _write(tmp_path / "first.yaml", TINY)
    assert cli.main(["run", str(first), "--out", str(out), "--no-progress"]) == 0
    old_keys = sorted(p.name for p in (out / "cells").iterdir())
    old_results = (out / "results.csv").read_bytes()
    (out / "report.html").write_text("<html>the previous report</html>")  # as a run with its report
    old_record = json.loads((out / RECORD).read_text())
    changed = _write(tmp_path / "changed.yaml", {**TINY, "training": {**TINY["training"], "lr": 0.02}})
    capsys.readouterr()
    assert cli.main(["run", str(changed), "--out", str(out), "--no-progress"]) == 2
    assert "differs in training" in _one_line(capsys)
    assert (out / "results.csv").read_bytes() == old_results
    assert cli.main(["run", str(changed), "--out", str(out), "--no-progress", "--update"]) == 0
    printed = capsys.readouterr().out
    assert "moved the previous tables to" in printed and "trained 2" in printed
    (previous,) = (out / "previous").iterdir()
    assert (previous / "results.csv").read_bytes() == old_results
    assert (previous / "report.html").read_text() == "<html>the previous report</html>"
    assert {"training.csv", "suite.yaml", "meta.json", RECORD} <= {p.name for p in previous.iterdir()}
    assert json.loads((previous / RECORD).read_text()) == old_record
    keys = {p.name for p in (out / "cells").iterdir()}
    assert set(old_keys) < keys and len(keys) == 4  # the old cells kept beside the new ones
    record = json.loads((out / RECORD).read_text())
    suite = parse_suite(json.loads(changed.read_text()))
    assert record["content"] == content_hash(suite_dump(suite)) != old_record["content"]
    assert record["cells"] == [c.key for c in cells(suite)]
    # back to the first suite: its cells are still stored, nothing is trained
    assert cli.main(["run", str(first), "--out", str(out), "--no-progress", "--update"]) == 0
    assert "trained 0" in capsys.readouterr().out and len(list((out / "previous").iterdir())) == 2


def test_test_grid_and_diagnostics_changes_need_no_update(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", str(_write(tmp_path / "a.yaml", TINY)), "--out", str(out), "--no-progress"]) == 0
    grown = {**TINY, "test": [*TINY["test"], {"solver": "rk4", "steps": [3]}], "diagnostics": {"samples": 8}}
    assert cli.main(["run", str(_write(tmp_path / "b.yaml", grown)), "--out", str(out), "--no-progress"]) == 0
    assert "trained 0, re-tested 2" in capsys.readouterr().out
    assert not (out / "previous").exists()
    assert json.loads((out / RECORD).read_text())["dump"]["test"][-1]["solver"] == "rk4"


def test_legacy_folder_of_another_suite_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", str(_write(tmp_path / "a.yaml", TINY)), "--out", str(out), "--no-progress"]) == 0
    (out / RECORD).unlink()  # as written before the record existed: meta.json and suite.yaml
    other = _write(tmp_path / "b.yaml", {**TINY, "model": {"name": "ott_conv1d", "width": 8}})
    assert cli.main(["run", str(other), "--out", str(out), "--no-progress"]) == 2
    assert "differs in model" in _one_line(capsys)
    assert not (out / RECORD).exists()
    assert cli.main(["run", str(tmp_path / "a.yaml"), "--out", str(out), "--no-progress"]) == 0
    assert "loaded 2" in capsys.readouterr().out and (out / RECORD).is_file()


CHILD = textwrap.dedent("""
    import sys
    from robustbench_ode import cli
    from robustbench_ode.run import runner
    runner.write_report_safely = lambda run_dir: None  # the figures say nothing about the lock
    sys.exit(cli.main(["run", sys.argv[1], "--out", sys.argv[2], "--no-progress"]))
""")


def test_two_concurrent_runs_compute_each_cell_once(tmp_path):
    suite = _write(tmp_path / "s.yaml", {**TINY, "training": {**TINY["training"], "iterations": 200}})
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(suite), str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], done
    printed = [o for o, _ in done]
    trained = sorted(int(o.split("trained ")[1].split(",")[0]) for o in printed)
    assert trained == [0, 2], printed  # one run trained both cells, the other loaded them
    waited = [e for _, e in done if "waiting for it to finish" in e]
    assert all(e.count("\n") == 1 for e in waited), waited
