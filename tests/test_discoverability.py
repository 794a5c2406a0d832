"""What a newcomer can find without reading the source: ``list`` shows every entry's parameters
(name, type, default: from the registry's params models) or a solver's grid keys, singular and
plural nouns name the same axis, ``--version`` prints the package metadata's version (one source:
pyproject.toml), and ``dir(rb)`` / ``rb.__all__`` list every public entry point."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import robustbench_ode as rb
from robustbench_ode.cli import main
from robustbench_ode.core import version
from robustbench_ode.core.parameters import parameters
from robustbench_ode.datasets import DATASETS
from robustbench_ode.models import MODELS
from robustbench_ode.solvers import SOLVERS

ROOT = Path(__file__).resolve().parent.parent


def _blocks(out: str) -> dict[str, str]:
    """Entry name -> its lines (the entry line and its indented parameter lines)."""
    blocks: dict[str, str] = {}
    name = None
    for line in out.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            name = line.split()[0]
            blocks[name] = line
        elif line.startswith("   ") and name:
            blocks[name] += "\n" + line
    return blocks


def test_list_models_shows_ott_conv1d_width_with_its_default(capsys):
    assert main(["list", "models"]) == 0
    block = _blocks(capsys.readouterr().out)["ott_conv1d"]
    assert "width: int = 32" in block, block


@pytest.mark.parametrize("axis, registry", [("models", MODELS), ("datasets", DATASETS)])
def test_list_shows_every_parameter_of_every_entry(axis, registry, capsys):
    assert main(["list", axis]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert set(blocks) == set(registry.names())
    for name in registry.names():
        shown = " ".join(blocks[name].split())  # a parameter may wrap onto the next line
        for param, kind, default in parameters(registry.meta(name).params):
            assert f"{param}: {kind} = {default}" in shown, (name, param, blocks[name])


def test_list_solvers_says_what_a_suite_entry_gives_each_kind(capsys):
    assert main(["list", "solvers"]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert set(blocks) == set(SOLVERS.names())
    assert "train: steps" in blocks["euler"] and "step_factors" in blocks["euler"]
    assert "train: tol" in blocks["dopri5"] and "tol_factors" in blocks["dopri5"]
    assert "per_sample" in blocks["tsit5"] and "per_sample" not in blocks["dopri5"]
    assert "test only" in blocks["exact"]


@pytest.mark.parametrize("axis", ["solvers", "models", "datasets"])
def test_singular_and_plural_nouns_list_the_same(axis, capsys):
    assert main(["list", axis]) == 0
    plural = capsys.readouterr().out
    assert main(["list", axis.removesuffix("s")]) == 0
    assert capsys.readouterr().out == plural


def test_an_unknown_noun_is_one_line_naming_the_axes(capsys):
    assert main(["list", "optimizers"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'solvers'" in err and "'model'" in err, err


def test_version_prints_the_package_metadata_version():
    out = subprocess.run([sys.executable, "-m", "robustbench_ode", "--version"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"robustbench-ode {metadata.version('robustbench_ode')}"


def test_one_version_source():
    """pyproject.toml's version is the only literal: the metadata and ``__version__`` agree with
    it (a stale install would show here); the source tree's fallback reads the same file."""
    written = version.pyproject_version()
    assert written and rb.__version__ == written == metadata.version("robustbench_ode")
    sources = [p for p in (ROOT / "robustbench_ode").rglob("*.py")
               if re.search(rf"""["']{re.escape(written)}["']""", p.read_text())]
    assert not sources, sources  # nobody writes the version a second time


def test_the_pyproject_reader_takes_the_project_table(tmp_path):
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[tool.x]\nversion = "9"\n[project]\nname = "a"\nversion = "1.2.3"\n[b]\nversion = "7"\n')
    assert version.pyproject_version(toml) == "1.2.3"
    toml.write_text('[project]\nname = "a"\n')
    assert version.pyproject_version(toml) is None
    assert version.pyproject_version(tmp_path / "missing.toml") is None


# The public entry points: what the README and docs call as rb.NAME. Engineer additions (e.g.
# assert_is_ode, Monitor) join _LAZY in robustbench_ode/__init__.py and this list.
PUBLIC = ["benchmark", "BenchmarkResult", "solve", "Solution", "SolveStats", "SolveSpec", "Status",
          "SuiteError", "DataSplits", "ODEClassifier", "load_suite", "run_suite", "SOLVERS", "MODELS",
          "DATASETS", "__version__", "sweep", "SweepResult"]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_entry_point_is_in_dir_and_all(name):
    assert name in rb.__all__ and name in dir(rb)
    assert getattr(rb, name) is not None


def test_all_names_resolve_and_dir_lists_them_before_first_use():
    code = ("import sys, robustbench_ode as rb\n"
            "names = dir(rb)\n"
            "assert 'torch' not in sys.modules, 'dir() imported torch'\n"
            "missing = [n for n in rb.__all__ if n not in names]\n"
            "assert not missing, missing\n"
            "assert all(getattr(rb, n) is not None for n in rb.__all__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_every_rb_name_the_docs_use_is_public():
    used = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        used |= set(re.findall(r"\brb\.([A-Za-z_]\w*)", doc.read_text()))
    assert used, "the README names rb.benchmark and rb.solve"
    assert used <= set(rb.__all__), sorted(used - set(rb.__all__))


def test_no_public_name_is_shadowed_by_a_submodule():
    # importing a submodule binds it as an attribute of the package: a submodule named as a public
    # function (robustbench_ode/benchmark.py once) replaced rb.benchmark by the module for whoever
    # imported, say, robustbench_ode.assertion first. Checked in a fresh interpreter, every
    # submodule imported before the names are read.
    import pkgutil
    import subprocess
    import sys

    import robustbench_ode as rb
    names = {m.name.split(".")[-1] for m in pkgutil.iter_modules(rb.__path__)}
    assert not names & set(rb.__all__), names & set(rb.__all__)
    code = ("import importlib, pkgutil, types, robustbench_ode as rb\n"
            "for m in pkgutil.iter_modules(rb.__path__):\n"
            "    if m.name not in ('__main__',):\n"
            "        importlib.import_module('robustbench_ode.' + m.name)\n"
            "bad = [n for n in rb.__all__ if isinstance(getattr(rb, n), types.ModuleType)]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
