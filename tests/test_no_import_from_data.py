"""Acceptance (issue 28, item 1): no code runs because of data.

A sentinel module records its import (it writes a file when imported). It is never imported:
- when a suite names it and the user did not ``--allow-import`` it (``validate``: exit 2, one
  line naming the option); with ``--allow-import`` it is (the opt-in works);
- when a crafted stored cell names it (config.json edited, manifest made to match): ``verify``
  reports the cell damaged (exit 1) and a resumed ``run`` recomputes it, neither imports it;
- from the current directory under ``python -m``, even when allowed.
The standard library is refused like any module (``os:system``, ``builtins:eval``,
``venv.__main__:main``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_suite import tiny_suite

from robustbench_ode import cli
from robustbench_ode.core import imports
from robustbench_ode.run import manifest, runner
from robustbench_ode.run.store import CELLS

ROOT = Path(__file__).resolve().parents[1]
SENTINEL = "rbo_sentinel_factory"
TINY = tiny_suite()


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv(imports.ENV, raising=False)
    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)
    yield
    sys.modules.pop(SENTINEL, None)


@pytest.fixture
def sentinel(tmp_path, monkeypatch) -> Path:
    """A module on sys.path that writes ``imported`` beside itself when imported."""
    folder = tmp_path / "mods"
    folder.mkdir()
    mark = folder / "imported"
    (folder / f"{SENTINEL}.py").write_text(
        f"from pathlib import Path\nPath({str(mark)!r}).write_text('yes')\n"
        "def make(in_shape, n_classes):\n    raise RuntimeError('never built')\n")
    monkeypatch.syspath_prepend(str(folder))
    return mark


def _suite(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps({**TINY, "model": {"name": model}}))
    return path


def test_a_suite_naming_a_module_not_allowed_imports_nothing(tmp_path, sentinel, capsys):
    assert cli.main(["validate", str(_suite(tmp_path, f"{SENTINEL}:make"))]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"--allow-import {SENTINEL}" in err
    assert not sentinel.exists()


def test_allow_import_opts_a_module_in(tmp_path, sentinel):
    cli.main(["validate", str(_suite(tmp_path, f"{SENTINEL}:make")), "--allow-import", SENTINEL])
    assert sentinel.exists()


@pytest.mark.parametrize("path", ["os:system", "builtins:eval", "venv.__main__:main", "shutil:copyfile"])
def test_the_standard_library_is_refused_like_any_module(tmp_path, path, capsys):
    assert cli.main(["validate", str(_suite(tmp_path, path))]) == 2
    assert "not allowed" in capsys.readouterr().err


@pytest.mark.parametrize("allowed", [False, True], ids=["not-allowed", "allowed"])
def test_a_crafted_cell_naming_a_module_is_damaged_and_never_imported(tmp_path, sentinel, capsys, monkeypatch,
                                                                      allowed):
    if allowed:  # even a module the user allowed is not imported to read a stored cell
        monkeypatch.setenv(imports.ENV, SENTINEL)
    suite = tmp_path / "tiny.yaml"
    suite.write_text(json.dumps(TINY))
    out = tmp_path / "run"
    assert cli.main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    (cell,) = (out / CELLS).iterdir()
    config = json.loads((cell / "config.json").read_text())
    config["cell"]["model"]["name"] = f"{SENTINEL}:make"
    (cell / "config.json").write_text(json.dumps(config))
    manifest.write(cell, [n for n in manifest.FILES if (cell / n).exists()])  # a consistent forgery
    capsys.readouterr()
    assert cli.main(["verify", str(out)]) == 1
    shown = capsys.readouterr()
    assert cell.name in shown.out + shown.err
    assert not sentinel.exists()
    assert cli.main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0  # recomputed
    assert not sentinel.exists()


def test_python_m_never_imports_from_the_current_directory(tmp_path):
    mark = tmp_path / "imported"
    (tmp_path / "cwd_factory.py").write_text(f"open({str(mark)!r}, 'w').write('yes')\n"
                                             "def make(in_shape, n_classes):\n    pass\n")
    _suite(tmp_path, "cwd_factory:make")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop(imports.ENV, None)
    proc = subprocess.run([sys.executable, "-m", "robustbench_ode", "validate", "suite.yaml",
                           "--allow-import", "cwd_factory"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "cannot import" in proc.stderr, proc.stderr
    assert not mark.exists()
