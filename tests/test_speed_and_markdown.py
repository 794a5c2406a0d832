"""Acceptance (issue 28, item 8, the rest): no more workers than units, speed-only settings
changed freely, Markdown output that shows hostile text as text, file errors that name the path.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tiny_suite import tiny_suite

from robustbench_ode import cli
from robustbench_ode.core.files import os_error
from robustbench_ode.outputs.leaderboard import markdown, md_text
from robustbench_ode.run import executors, runner
from robustbench_ode.run.executors import LocalExecutor, make_executor


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)


class _Recorder(LocalExecutor):
    """Stands in for the process pool: records how many workers it was asked for."""

    asked: list[int] = []

    def __init__(self, workers: int, threads: int | None = None) -> None:
        super().__init__(threads)
        _Recorder.asked.append(workers)


@pytest.mark.parametrize("workers, units, started", [(8, 2, 2), (2, 8, 2), (5, 5, 5), (3, 0, 1)])
def test_workers_are_capped_at_the_units(monkeypatch, workers, units, started):
    monkeypatch.setattr(executors, "ProcessExecutor", _Recorder)
    _Recorder.asked = []
    make_executor("process", workers, units=units).close()
    assert _Recorder.asked == [started]


def test_a_run_starts_no_more_workers_than_its_cells(tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "ProcessExecutor", _Recorder)
    _Recorder.asked = []
    suite = tmp_path / "tiny.yaml"
    suite.write_text(json.dumps(tiny_suite()))  # one cell
    assert cli.main(["run", str(suite), "--out", str(tmp_path / "o"), "--no-progress",
                     "--executor", "process", "--workers", "16"]) == 0
    assert _Recorder.asked == [1]


def _run(tmp_path, capsys, *sets: str) -> tuple[int, str]:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(json.dumps(tiny_suite()))
    argv = ["run", str(suite), "--out", str(tmp_path / "o"), "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    capsys.readouterr()
    code = cli.main(argv)
    shown = capsys.readouterr()
    return code, shown.out + shown.err


def test_a_speed_only_setting_changes_without_update(tmp_path, capsys):
    assert _run(tmp_path, capsys)[0] == 0
    before = (tmp_path / "o" / "results.csv").read_text()
    for change in ("training.checkpoint_every=7", "training.record_memory=false", "training.compile=false"):
        code, text = _run(tmp_path, capsys, change)
        assert code == 0 and "trained 0" in text and "loaded 1" in text, (change, text)
    assert (tmp_path / "o" / "results.csv").read_text() == before
    code, text = _run(tmp_path, capsys, "training.lr=0.02")  # a setting that changes the model
    assert code == 2 and "other content" in text and "training" in text


def test_fast_is_speed_only_but_moves_the_key_so_it_needs_update(tmp_path, capsys):
    assert _run(tmp_path, capsys)[0] == 0
    code, text = _run(tmp_path, capsys, "training.fast=false")
    assert code == 2 and "other content" in text


HOSTILE = ["<script>alert(1)</script>", "a|b", "x & y", "<img src=x onerror=alert(1)>", "two\nlines",
           "[click](javascript:alert(1))"]


@pytest.mark.parametrize("label", HOSTILE)
def test_a_hostile_label_is_text_in_the_markdown_board(label):
    board = pd.DataFrame({"dataset": [label], "model": [label], "acc_ref": [0.5]})
    md = markdown(board)
    assert "<" not in md and ">" not in md.replace("---:", "")
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 3  # header, rule, one row: no line break or pipe split the row
    assert all(line.replace("\\|", "").count("|") == 3 for line in rows), rows
    assert md_text(label) in md and f"## {md_text(label)}" in md


def test_md_text_escapes_each_character():
    assert md_text("<a>&|`[]\n") == "&lt;a&gt;&amp;\\|\\`\\[\\] "


def test_an_os_error_names_the_path_and_the_reason_in_one_line(tmp_path):
    try:
        (tmp_path / "missing" / "f").read_text()
    except OSError as exc:
        line = os_error(exc)
    assert "\n" not in line and str(tmp_path / "missing" / "f") in line and "No such file" in line


@pytest.mark.parametrize("baseline, words", [
    ("/dev/stdin", "not a regular file (a device, pipe or socket)"),
    ("missing.csv", "no such results CSV file"), (".", "is a directory"),
])
def test_regress_names_what_the_baseline_path_is(tmp_path, monkeypatch, capsys, baseline, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.csv").write_text("x\n")
    assert cli.main(["regress", "run/results.csv", "--baseline", baseline]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"--baseline {baseline}: {words}" in err, err
