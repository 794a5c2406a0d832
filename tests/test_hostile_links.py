"""Acceptance (issue 28, item 2): writes never follow links.

- ``DIR/.lock`` as a symbolic link or a hard link to a victim file: the run refuses in one line
  (exit 2) and the victim is untouched; :class:`RunLock` itself refuses both;
- a folder holding only ``.lock`` is empty only if that lock is one a run leaves (a regular file
  with one name, empty or ``pid N``): a link or a foreign file there makes it "not empty";
- ``running/`` markers get a fresh, unpredictable name, created exclusively (``O_EXCL``,
  ``O_NOFOLLOW``): a link planted at the old predictable name is never written through.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tiny_suite import tiny_suite

from robustbench_ode import cli
from robustbench_ode.config import parse_suite
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.harness.cell import cells
from robustbench_ode.run import runner
from robustbench_ode.run.ownership import LOCK, RunLock, read_record
from robustbench_ode.run.store import RUNNING, CellStore

TINY = tiny_suite()
VICTIM = "precious\n"


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text(VICTIM)
    return path


def _link(kind: str, target: Path, at: Path) -> None:
    if kind == "symlink":
        at.symlink_to(target)
    else:
        os.link(target, at)


def _run(tmp_path: Path, out: Path) -> int:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(json.dumps(TINY))
    return cli.main(["run", str(suite), "--out", str(out), "--no-progress"])


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_run_lock_refuses_a_linked_lock_and_leaves_its_target(tmp_path, victim, kind):
    out = tmp_path / "out"
    out.mkdir()
    _link(kind, victim, out / LOCK)
    with pytest.raises(SuiteError) as exc:
        RunLock(out).__enter__()
    assert "\n" not in str(exc.value) and "remove it" in str(exc.value)
    assert victim.read_text() == VICTIM


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_folder_holding_only_a_linked_lock_is_not_empty(tmp_path, victim, kind, capsys):
    out = tmp_path / "out"
    out.mkdir()
    _link(kind, victim, out / LOCK)
    assert _run(tmp_path, out) == 2
    assert "not empty" in capsys.readouterr().err
    assert victim.read_text() == VICTIM


@pytest.mark.parametrize("content, empty", [("", True), ("pid 123\n", True), ("rm -rf ~\n", False)])
def test_a_folder_holding_only_a_lock_a_run_left_counts_as_empty(tmp_path, content, empty):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text(content)
    if empty:
        assert read_record(out) is None
    else:
        with pytest.raises(SuiteError, match="not empty"):
            read_record(out)


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_linked_lock_in_an_existing_run_is_refused_and_its_target_untouched(tmp_path, victim, kind, capsys):
    out = tmp_path / "out"
    assert _run(tmp_path, out) == 0
    (out / LOCK).unlink()
    _link(kind, victim, out / LOCK)
    assert _run(tmp_path, out) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "lock" in err
    assert victim.read_text() == VICTIM


def test_running_markers_are_fresh_names_never_written_through_a_link(tmp_path, victim):
    key = cells(parse_suite(TINY))[0].key
    store = CellStore(tmp_path / "out")
    (store.root / RUNNING).mkdir(parents=True)
    (store.root / RUNNING / f"{key}.json").symlink_to(victim)  # the name a run used to write
    store.mark_running(key)
    store.mark_running(key)
    markers = [p for p in store.running_files(key) if not p.is_symlink()]
    assert len(markers) == 2 and len({p.name for p in markers}) == 2  # not predictable
    assert json.loads(markers[0].read_text())["pid"] == os.getpid()
    assert victim.read_text() == VICTIM
