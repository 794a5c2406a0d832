"""The progress display (core/progress.py, run/progress.py): one tqdm display of the cells, the
current unit's training (counted per seed-iteration) and its test grid, on a terminal only.

The terminal tests run ``python -m robustbench_ode run`` with stderr on a pseudo-terminal (sized
120 columns: a pty starts at 0 x 0, where tqdm draws nothing) and parse what tqdm drew there.
``TQDM_MININTERVAL=0`` (tqdm's own environment knob) redraws on every update, so the few
iterations of a tiny suite are all seen."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import yaml
from tiny_suite import tiny_suite

from robustbench_ode.cli import main
from robustbench_ode.run import runner

ITERATIONS, SEEDS = 30, [0, 1]
CELLS = 2 * len(SEEDS)  # two train configurations x the seeds, each configuration's seeds stacked
FRAME = re.compile(r"\r|\n|\x1b\[A")  # tqdm redraws a line after \r; nested lines move up by ESC[A


def _suite(tmp_path: Path) -> Path:
    suite = tiny_suite()
    suite["training"]["iterations"] = ITERATIONS
    suite["train"] = {"seeds": SEEDS, "grid": [{"solver": "euler", "steps": [1, 2]}]}
    path = tmp_path / "stacked.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _run_on_a_terminal(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, what the pty received) of the CLI with stderr on a terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = dict(os.environ, TQDM_MININTERVAL="0", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "robustbench_ode", "run", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env, cwd=Path(__file__).parents[1])
    os.close(slave)
    received = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        received.append(chunk)
    out, _ = proc.communicate(timeout=120)
    os.close(master)
    return proc.returncode, out.decode(), b"".join(received).decode(errors="replace")


def _frames(terminal: str, prefix: str) -> list[tuple[str, int, int]]:
    """(description, n, total) of every drawn frame of the bars whose description starts with
    ``prefix``."""
    found = []
    for frame in FRAME.split(terminal):
        m = re.match(rf"({prefix}[^:]*):\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)", frame)
        if m:
            found.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return found


@pytest.fixture(scope="module")
def terminal_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("progress")
    suite, out = _suite(tmp), tmp / "out"
    code, stdout, terminal = _run_on_a_terminal(str(suite), "--out", str(out))
    assert code == 0, terminal[-2000:]
    return suite, out, terminal


def test_the_iteration_bar_moves_inside_a_stacked_group(terminal_run):
    _, _, terminal = terminal_run
    train = _frames(terminal, "train ")
    groups = {desc for desc, _, _ in train}
    assert len(groups) == 2 and all("+1 stacked" in d for d in groups), groups
    for desc in groups:
        seen = [(n, total) for d, n, total in train if d == desc]
        assert {total for _, total in seen} == {ITERATIONS * len(SEEDS)}  # per seed-iteration
        inside = {n for n, total in seen if 0 < n < total}
        assert len(inside) >= 3, seen  # it moves within the group, not once per group
        assert all(n % len(SEEDS) == 0 for n in inside)  # by one per stacked seed per iteration


def test_the_test_grid_has_its_bar(terminal_run):
    _, _, terminal = terminal_run
    test = _frames(terminal, "test ")
    assert test and {total for _, _, total in test} == {len(SEEDS) * 2}  # seeds x (train, reference) points
    assert max(n for _, n, _ in test) == len(SEEDS) * 2


def test_the_cells_bar_counts_the_cells_to_run_with_an_eta(terminal_run):
    _, _, terminal = terminal_run
    cells = _frames(terminal, "suite ")
    assert cells and {total for _, _, total in cells} == {CELLS}
    assert max(n for _, n, _ in cells) == CELLS
    assert "(cost estimate)" in terminal


def test_no_bar_with_no_progress_on_a_terminal(tmp_path):
    code, stdout, terminal = _run_on_a_terminal(str(_suite(tmp_path)), "--out", str(tmp_path / "out"),
                                                "--no-progress")
    assert code == 0 and "trained 4" in stdout
    assert "%|" not in terminal and "it/s" not in terminal, terminal


@pytest.mark.parametrize("argv, shown", [([], None), (["--no-progress"], False), (["-q"], False),
                                          (["-v"], None)])
def test_no_progress_and_quiet_turn_the_display_off(argv, shown):
    from robustbench_ode.cli import build_parser
    from robustbench_ode.commands import _progress

    assert _progress(build_parser().parse_args(["run", "s.yaml", *argv])) is shown


def test_nothing_to_compute_draws_no_bar(capfd):
    """All cells loaded from the store: no empty bar (issue 25: demo's was drawn twice)."""
    runner.CellsProgress([], "empty", True).close()
    assert capfd.readouterr().err == ""


def test_the_cells_bar_total_is_the_cells_this_run_computes(terminal_run, tmp_path, monkeypatch, capfd):
    """Stored cells are not counted: a copy of the run missing one stacked group's cells and one
    seed of the other's runs 3 cells; and with stderr not a terminal (captured) no bar is drawn."""
    suite, out, _ = terminal_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    totals = []

    class Recording(runner.CellsProgress):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            totals.append(self.total)

    monkeypatch.setattr(runner, "CellsProgress", Recording)
    for stored in sorted((copy / "cells").iterdir())[:3]:
        shutil.rmtree(stored)
    assert main(["run", str(suite), "--out", str(copy)]) == 0
    captured = capfd.readouterr()
    assert totals == [3] and "trained 3" in captured.out and "loaded 1" in captured.out
    assert "%|" not in captured.err and "cells" not in captured.err and "\r" not in captured.err, captured.err
