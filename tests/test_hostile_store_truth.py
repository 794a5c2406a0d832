"""Acceptance (issue 28, items 4 and 5): no table is ever replaced by less, and the store's truth
is the manifest and the owner record.

- ``cells/`` missing (or not a directory) beside a table of stored rows, and a cell that fails to
  load while the tables are rebuilt: ``run`` exits 2 with one line and every file of the run
  folder is byte-identical afterwards;
- a deleted manifest plus an edited ``rows.csv`` or swapped weights: the cell is damaged (nothing
  vouches for it), named, moved aside and recomputed: the edit is gone from the tables;
- a deleted cell, or one a ``--fresh`` kill left moved aside: ``verify`` exits 1 naming it (the
  owner record lists it); a run puts the moved-aside one back;
- ``migrate`` gives a folder written before ``owner.json`` its record (from its ``suite.yaml``);
- the run folder renamed mid-run: the run stops in one line, nothing is recreated at the old path,
  and the same suite resumes in the folder where it now is.

Each runs in-process on a copy of one tiny run (the report is skipped: it says nothing here).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from robustbench_ode import cli
from robustbench_ode.run import manifest, runner
from robustbench_ode.run.store import CELLS, DAMAGED, CellStore, DamagedCell

TINY = {
    "name": "tiny",
    "dataset": {"name": "sphere2", "n_train": 64, "n_test": 32},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 4, "batch_size": 32, "lr": 0.01},
    "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1, 2]}]},
    "test": [{"solver": "euler", "step_factors": [1]}],
}
WALL = ("seconds", "train_seconds", "test_seconds")  # wall-clock columns differ between runs


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("store-truth")
    suite = root / "tiny.yaml"
    suite.write_text(json.dumps(TINY))
    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "write_report_safely", lambda run_dir: None)
    try:
        assert cli.main(["run", str(suite), "--out", str(root / "run"), "--no-progress"]) == 0
    finally:
        mp.undo()
    return suite, root / "run"


@pytest.fixture
def copy(base, tmp_path) -> Path:
    return Path(shutil.copytree(base[1], tmp_path / "run"))


def _files(run: Path) -> dict[str, bytes]:
    """Every file of the run folder but the store, by path, as bytes."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.relative_to(run).parts[0] != CELLS}


def _results(run: Path) -> pd.DataFrame:
    df = pd.read_csv(run / "results.csv")
    return df.drop(columns=[c for c in df.columns if any(w in c for w in WALL)])


def _one_line(err: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("how", ["missing", "a file"])
def test_a_missing_or_unreadable_cells_folder_leaves_every_table_as_it_is(base, copy, capsys, how):
    suite, _ = base
    shutil.rmtree(copy / CELLS)
    if how == "a file":
        (copy / CELLS).write_text("not a store\n")
    before = _files(copy)
    assert len(pd.read_csv(copy / "results.csv")) > 0  # rows only the store could rebuild
    capsys.readouterr()
    assert cli.main(["run", str(suite), "--out", str(copy), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    _one_line(err)
    assert "cells/" in err and "left as they are" in err, err
    assert _files(copy) == before  # results.csv and every other table byte-identical


def test_a_cell_that_fails_to_load_while_the_tables_are_rebuilt_leaves_them_as_they_are(
        base, copy, capsys, monkeypatch):
    suite, _ = base
    before = _files(copy)
    real, calls = CellStore.load, []

    def load(self, key, repair=True):  # planning reads each cell once; the rebuild finds one damaged
        calls.append(key)
        if len(calls) > len(CellStore(copy).keys()):
            raise DamagedCell(key, "rows.csv does not match its checksum")
        return real(self, key, repair)

    monkeypatch.setattr(CellStore, "load", load)
    capsys.readouterr()
    assert cli.main(["run", str(suite), "--out", str(copy), "--no-progress"]) == 2
    err = capsys.readouterr().err
    _one_line(err)
    assert "damaged during the run" in err and "left as they are" in err, err
    after = _files(copy)
    for name in ("results.csv", "training.csv"):
        assert after[name] == before[name], name


@pytest.mark.parametrize("edit", ["rows.csv", "model.pt"])
def test_a_deleted_manifest_and_an_edited_cell_is_recomputed(base, copy, capsys, edit):
    suite, run = base
    key = CellStore(copy).keys()[0]
    cell = copy / CELLS / key
    (cell / manifest.MANIFEST).unlink()
    if edit == "rows.csv":  # still a valid rows.csv: only a manifest could tell
        rows = pd.read_csv(cell / "rows.csv")
        rows["accuracy"] = 0.123456
        rows.to_csv(cell / "rows.csv", index=False)
    else:  # the other cell's weights: same shapes, another model
        other = CellStore(copy).keys()[1]
        shutil.copyfile(copy / CELLS / other / "model.pt", cell / "model.pt")
    capsys.readouterr()
    assert cli.main(["verify", str(copy)]) == 1
    assert f"damaged {key}: manifest.json is missing" in capsys.readouterr().out
    assert cli.main(["run", str(suite), "--out", str(copy), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert key in err and "manifest.json is missing" in err and "trained 1" in out, (out, err)
    (moved,) = (copy / DAMAGED).iterdir()
    assert moved.name.startswith(key)  # kept, not deleted
    assert (cell / manifest.MANIFEST).is_file() and manifest.check(cell, repair=False) is None
    pd.testing.assert_frame_equal(_results(copy), _results(run))  # the edit is gone
    now, then = (torch.load(c / CELLS / key / "model.pt", weights_only=True) for c in (copy, run))
    assert now.keys() == then.keys() and all(torch.equal(now[k], then[k]) for k in now)  # retrained
    assert cli.main(["verify", str(copy)]) == 0


def test_a_deleted_cell_is_reported_missing_by_verify(copy, capsys):
    key = CellStore(copy).keys()[0]
    shutil.rmtree(copy / CELLS / key)
    capsys.readouterr()
    assert cli.main(["verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"missing {key}: listed in owner.json" in out and "deleted" in out, out
    assert "1 of the 2 its owner record lists missing" in out, out


def test_a_cell_a_fresh_kill_left_moved_aside_is_missing_until_a_run_puts_it_back(base, copy, capsys):
    suite, _ = base
    key = CellStore(copy).keys()[0]
    (copy / CELLS / key).rename(copy / CELLS / f".old-{key}-0123abcd")  # between --fresh's renames
    capsys.readouterr()
    assert cli.main(["verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"missing {key}" in out and "puts it back" in out, out
    assert cli.main(["run", str(suite), "--out", str(copy), "--no-progress"]) == 0
    assert "trained 0" in capsys.readouterr().out
    assert cli.main(["verify", str(copy)]) == 0


def test_a_run_folder_renamed_mid_run_stops_in_one_line(base, tmp_path, capsys, monkeypatch):
    suite, run = base
    out, moved = tmp_path / "run", tmp_path / "moved"
    real = runner._append

    def append_then_rename(result, out_dir):  # the first cell finished, then the folder is moved
        real(result, out_dir)
        if out_dir.exists():
            out_dir.rename(moved)

    monkeypatch.setattr(runner, "_append", append_then_rename)
    capsys.readouterr()
    assert cli.main(["run", str(suite), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    _one_line(err)
    assert "renamed or moved during the run" in err and str(out) in err, err
    assert not out.exists()  # no partial folder at the old path
    assert len(CellStore(moved).keys()) == 1  # the first cell went with the folder
    monkeypatch.setattr(runner, "_append", real)
    assert cli.main(["run", str(suite), "--out", str(moved), "--no-progress"]) == 0
    assert "trained 1" in capsys.readouterr().out  # resumed where it now is
    pd.testing.assert_frame_equal(_results(moved), _results(run))


def test_migrate_gives_a_folder_written_before_owner_json_its_record(base, copy, capsys):
    suite, _ = base
    keys = CellStore(copy).keys()
    (copy / "owner.json").unlink()
    capsys.readouterr()
    assert cli.main(["verify", str(copy)]) == 0  # no record: nothing to compare with
    assert cli.main(["migrate", str(copy)]) == 0
    assert "owner.json written from its suite.yaml" in capsys.readouterr().out
    assert sorted(json.loads((copy / "owner.json").read_text())["cells"]) == keys
    shutil.rmtree(copy / CELLS / keys[1])
    assert cli.main(["verify", str(copy)]) == 1 and f"missing {keys[1]}" in capsys.readouterr().out
    assert cli.main(["run", str(suite), "--out", str(copy), "--no-progress"]) == 0  # the same suite
    assert "trained 1" in capsys.readouterr().out
