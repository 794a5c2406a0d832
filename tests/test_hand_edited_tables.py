"""Acceptance (issue 28, item 6): a hand-edited or damaged results table is refused on read, in
one line (exit 2), by ``report``, ``regress`` and ``leaderboard``: an accuracy outside [0, 1], a
negative count, a row given twice, a last row cut off. The untouched table passes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_suite import tiny_suite

from robustbench_ode import cli
from robustbench_ode.run import runner

TINY = tiny_suite((1, 2))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hand-edited")
    suite = root / "tiny.yaml"
    suite.write_text(json.dumps(TINY))
    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "write_report_safely", lambda run_dir: None)
    try:
        assert cli.main(["run", str(suite), "--out", str(root / "run"), "--no-progress"]) == 0
    finally:
        mp.undo()
    return root / "run"


def _set(lines: list[str], column: str, value: str) -> list[str]:
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index(column)] = value
    return [lines[0], ",".join(cells), *lines[2:]]


EDITS = {
    "accuracy_7.5": (lambda ls: _set(ls, "accuracy", "7.5"), "outside [0, 1]"),
    "nfe_negative": (lambda ls: _set(ls, "nfe", "-4"), "is negative"),
    "row_twice": (lambda ls: [*ls, ls[1]], "repeats the row"),
    "last_row_cut": (None, "cut off"),
}


def _edit(run: Path, name: str) -> None:
    path = run / "results.csv"
    text = path.read_text()
    edit, _ = EDITS[name]
    if edit is None:
        path.write_text(text.rstrip("\n")[:-3])
    else:
        path.write_text("\n".join(edit(text.rstrip("\n").split("\n"))) + "\n")


def _command(command: str, run: Path, tmp_path: Path) -> list[str]:
    return {"report": ["report", str(run), "--out", str(tmp_path / "rep")],
            "regress": ["regress", str(run), "--baseline", str(run / "results.csv")],
            "leaderboard": ["leaderboard", str(run), "--out", str(tmp_path / "lb")]}[command]


@pytest.mark.parametrize("command", ["regress", "leaderboard"])
def test_the_untouched_table_passes(base, tmp_path, command):
    assert cli.main(_command(command, base, tmp_path)) == 0


@pytest.mark.parametrize("command", ["report", "regress", "leaderboard"])
@pytest.mark.parametrize("name", list(EDITS))
def test_a_hand_edited_table_is_refused_in_one_line(base, tmp_path, capsys, name, command):
    run = tmp_path / "run"
    shutil.copytree(base, run)
    _edit(run, name)
    assert cli.main(_command(command, run, tmp_path)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and EDITS[name][1] in err, err
