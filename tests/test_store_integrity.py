"""Acceptance: the integrity-checked store (run/store.py, run/manifest.py).

- 21 corruption cases (truncate, garbage, delete x config.json, model.pt, training.csv, rows.csv,
  diagnosis.json; and 6 of them with a grown test grid): the damaged cell is named in the output, moved to
  ``damaged/`` and recomputed, and the tables equal an undamaged run's (wall-clock columns aside);
- a cell without a manifest is damaged; ``migrate`` blesses the ones that parse (once), a run
  recomputes the others;
- a re-test's rows and a new diagnosis update the manifest; a kill between the two renames of
  such an update leaves a cell that checks;
- ``verify`` lists damaged cells (exit 1) and passes intact ones (exit 0), on a read-only folder too,
  and ``report DIR --out OTHER`` re-reports a read-only run; a read-only ``--out`` is one line;
- a run on a full disk (a small tmpfs) is one line, leaves no temporary file, and resumes to the
  identical table.

The runs here skip the report (its figures take seconds and say nothing about the store).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from robustbench_ode import cli
from robustbench_ode.config import parse_suite
from robustbench_ode.core.files import TMP_MARK
from robustbench_ode.harness.cell import cells
from robustbench_ode.run import manifest, runner
from robustbench_ode.run.store import CellStore

TINY = {
    "name": "tiny",
    "dataset": {"name": "sphere2", "n_train": 96, "n_test": 48},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 6, "batch_size": 32, "lr": 0.01, "checkpoint_every": 2},
    "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1, 2]}]},
    "test": [{"solver": "euler", "step_factors": [1, 2]}],
}
GROWN = {**TINY, "test": [*TINY["test"], {"solver": "rk4", "steps": [3]}]}
FILES = ["config.json", "model.pt", "training.csv", "rows.csv", "diagnosis.json"]
DAMAGES = ["truncate", "garbage", "delete"]
GROWN_CASES = [("config.json", "truncate"), ("model.pt", "garbage"), ("training.csv", "delete"),
               ("rows.csv", "truncate"), ("model.pt", "delete"), ("rows.csv", "garbage")]
CASES = [(f, d, False) for f in FILES for d in DAMAGES] + [(f, d, True) for f, d in GROWN_CASES]


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)


def _suite_file(root: Path, doc: dict) -> Path:
    path = root / f"{doc['name']}-{len(doc['test'])}.yaml"
    path.write_text(json.dumps(doc))
    return path


def _table(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    return df.drop(columns=[c for c in df.columns if c.endswith(("seconds", "_per_s", "_s"))])  # wall clock


def _same_tables(a: Path, b: Path) -> None:
    for name in ("results.csv", "training.csv", "diagnostics.csv"):
        pd.testing.assert_frame_equal(_table(a / name), _table(b / name), obj=name)


def _no_temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TMP_MARK in p.name or p.name.startswith((".tmp-", ".old-"))]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An undamaged run of TINY, and of GROWN re-testing a copy of it (the references)."""
    root = tmp_path_factory.mktemp("integrity")
    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "write_report_safely", lambda run_dir: None)
    try:
        base = root / "base"
        assert cli.main(["run", str(_suite_file(root, TINY)), "--out", str(base), "--no-progress"]) == 0
        grown = root / "grown"
        shutil.copytree(base, grown)
        assert cli.main(["run", str(_suite_file(root, GROWN)), "--out", str(grown), "--no-progress"]) == 0
    finally:
        mp.undo()
    return root, base, grown


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(random.Random(len(data)).randbytes(len(data)))
    else:
        path.unlink()


@pytest.mark.parametrize("name, how, grow", CASES,
                         ids=[f"{n}-{h}{'-grown' if g else ''}" for n, h, g in CASES])
def test_damaged_cell_is_named_moved_aside_and_recomputed(runs, tmp_path, capsys, name, how, grow):
    root, base, grown = runs
    out = tmp_path / "run"
    shutil.copytree(base, out)
    key = cells(parse_suite(json.loads(json.dumps(TINY))))[1].key
    other = cells(parse_suite(json.loads(json.dumps(TINY))))[0].key
    other_model = (out / "cells" / other / "model.pt").stat().st_mtime_ns
    _damage(out / "cells" / key / name, how)
    capsys.readouterr()
    suite = _suite_file(tmp_path, GROWN if grow else TINY)
    assert cli.main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    printed, err = capsys.readouterr()
    assert f"damaged {key}: " in printed and "trained 1" in printed, printed
    assert err.count("\n") == 1 and key in err and "Traceback" not in err, err
    (moved,) = (out / "damaged").iterdir()
    assert moved.name.startswith(f"{key}-") and (moved / "damage.txt").is_file()
    assert (moved / name).exists() == (how != "delete")  # the damaged files are kept, not deleted
    assert (out / "cells" / other / "model.pt").stat().st_mtime_ns == other_model  # not retrained
    _same_tables(out, grown if grow else base)
    assert cli.main(["verify", str(out)]) == 0
    assert not _no_temporaries(out)


def test_cells_without_a_manifest_are_damaged_until_migrate_blesses_the_ones_that_parse(runs, tmp_path,
                                                                                        capsys):
    """A cell without a manifest is damaged (nothing vouches for its files); ``migrate`` blesses
    the ones that parse, once, and leaves the others (exit 1), which a run then recomputes."""
    root, base, _ = runs
    out = tmp_path / "run"
    shutil.copytree(base, out)
    keys = CellStore(out).keys()
    for key in keys:
        (out / "cells" / key / manifest.MANIFEST).unlink()
    capsys.readouterr()
    assert cli.main(["verify", str(out)]) == 1  # verify reads only: named, no manifest written
    printed = capsys.readouterr().out
    assert all(f"damaged {k}: manifest.json is missing" in printed for k in keys), printed
    assert not any((out / "cells" / k / manifest.MANIFEST).exists() for k in keys)
    (out / "cells" / keys[0] / "rows.csv").write_text("dataset,model\nx,y\n")  # parses, but is no rows.csv
    assert cli.main(["migrate", str(out)]) == 1
    printed = capsys.readouterr().out
    assert f"damaged {keys[0]}" in printed and f"{len(keys) - 1} given a manifest" in printed, printed
    assert not (out / "cells" / keys[0] / manifest.MANIFEST).exists()  # left as it is
    assert all((out / "cells" / k / manifest.MANIFEST).is_file() for k in keys[1:])
    assert cli.main(["migrate", str(out)]) == 1 and f"{len(keys) - 1} had one" in capsys.readouterr().out
    assert cli.main(["run", str(_suite_file(tmp_path, TINY)), "--out", str(out), "--no-progress"]) == 0
    assert "trained 1" in capsys.readouterr().out  # the damaged cell; the blessed ones are loaded
    assert all((out / "cells" / k / manifest.MANIFEST).is_file() for k in keys)
    assert cli.main(["migrate", str(out)]) == 0 and cli.main(["verify", str(out)]) == 0
    _same_tables(out, base)


def test_retest_and_diagnosis_update_the_manifest_and_survive_a_kill_between_renames(runs, tmp_path):
    _, base, _ = runs
    out = tmp_path / "run"
    shutil.copytree(base, out)
    store = CellStore(out)
    key = store.keys()[0]
    before = json.loads((out / "cells" / key / manifest.MANIFEST).read_text())
    store.add_rows(key, store.load(key).rows[:1])
    store.set_diagnosis(key, {"settings": {"x": 1}, "scalars": {}})
    after = json.loads((out / "cells" / key / manifest.MANIFEST).read_text())
    assert after["files"]["rows.csv"] != before["files"]["rows.csv"] and "diagnosis.json" in after["files"]
    assert store.check(key) is None and not _no_temporaries(out)
    # a kill after the new rows.csv was renamed in, before the pending manifest replaced the old one
    cell = out / "cells" / key
    real_replace = os.replace

    def kill_before_manifest(src, dst):
        if Path(dst).name == manifest.MANIFEST:
            raise KeyboardInterrupt
        real_replace(src, dst)

    os.replace = kill_before_manifest
    try:
        with pytest.raises(KeyboardInterrupt):
            store.add_rows(key, store.load(key).rows[:1])
    finally:
        os.replace = real_replace
    assert (cell / manifest.PENDING).is_file()
    assert manifest.check(cell, repair=False) is None  # the pending manifest vouches for the new file
    assert store.check(key) is None and not (cell / manifest.PENDING).exists()  # and is adopted


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def read_only_copy(runs, tmp_path):
    """A copy of the base run on a read-only file system (a tmpfs remounted read-only; permission
    bits would not stop root)."""
    _, base, _ = runs
    mnt = tmp_path / "ro"
    if not _mount_tmpfs(mnt, "16m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        shutil.copytree(base, mnt / "run")
        if subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield mnt / "run"
    finally:
        _umount(mnt)


def test_read_only_run_is_verified_and_re_reported_elsewhere(read_only_copy, tmp_path, capsys):
    run = read_only_copy
    assert cli.main(["verify", str(run)]) == 0
    out = tmp_path / "elsewhere"
    assert cli.main(["report", str(run), "--out", str(out)]) == 0
    assert (out / "report.html").stat().st_size > 10_000 and (out / "summary.csv").is_file()
    capsys.readouterr()
    for argv in (["report", str(run)], ["leaderboard", str(run), "--out", str(run / "board")],
                 ["run", str(_suite_file(tmp_path, TINY)), "--out", str(run), "--no-progress"]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "read-only file system" in err and "Traceback" not in err, err


def test_full_disk_is_one_line_leaves_no_temporary_and_resumes(runs, tmp_path, capsys):
    _, base, _ = runs
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "256k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        out = mnt / "run"
        suite = _suite_file(tmp_path, TINY)
        filler = mnt / "filler"
        # leave room for the run's first files and the first cell, not for everything
        with open(filler, "wb") as fh:
            fh.write(b"\0" * (256 - 72) * 1024)
        capsys.readouterr()
        assert cli.main(["run", str(suite), "--out", str(out), "--no-progress"]) == 2
        printed, err = capsys.readouterr()
        assert err.count("\n") == 1 and "no space left on the device" in err, err
        assert str(out) in err and TMP_MARK not in err and "Traceback" not in err, err
        assert not _no_temporaries(mnt), _no_temporaries(mnt)
        filler.unlink()
        assert cli.main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
        _same_tables(out, base)
        assert cli.main(["verify", str(out)]) == 0
    finally:
        _umount(mnt)


def test_temporaries_a_kill_left_in_the_run_folder_are_removed(runs, tmp_path, capsys):
    """A kill while the tables, meta.json or owner.json were being replaced leaves their
    temporary siblings in the run folder itself; the next run (under the lock) removes them."""
    root, base, _ = runs
    out = tmp_path / "run"
    shutil.copytree(base, out)
    strays = [out / f".results.csv{TMP_MARK}0123abcd", out / f".meta.json{TMP_MARK}4567ef01",
              out / f".report.html{TMP_MARK}89abcdef"]
    for stray in strays:
        stray.write_text("half written")
    assert cli.main(["run", str(_suite_file(root, TINY)), "--out", str(out), "--no-progress"]) == 0
    assert _no_temporaries(out) == []
    _same_tables(base, out)
