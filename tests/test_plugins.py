"""Acceptance (issue 28, item 1, plugins): the entry-point group ``robustbench_ode.plugins``.

A fake installed distribution (a ``*.dist-info`` folder with ``entry_points.txt`` on sys.path)
declares a plugin module. Its factories may be named by import path without ``--allow-import``;
reading the group imports nothing (the plugin module records its import in a file); a module
the distribution does not declare, beside it on the same path, is still refused and not imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tiny_suite import tiny_suite

from robustbench_ode import cli
from robustbench_ode.core import imports

PLUGIN, OTHER = "rbo_plugin_factory", "rbo_undeclared_factory"


@pytest.fixture
def marks(tmp_path, monkeypatch) -> dict[str, Path]:
    """Two modules on sys.path, each writing ``<name>.imported`` when imported; a distribution
    declaring only PLUGIN in the group."""
    folder = tmp_path / "site"
    folder.mkdir()
    for name in (PLUGIN, OTHER):
        (folder / f"{name}.py").write_text(
            f"from pathlib import Path\nPath({str(folder / (name + '.imported'))!r}).write_text('yes')\n"
            "def make(in_shape, n_classes):\n    raise RuntimeError('never built')\n")
    info = folder / "rbo_fake_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rbo-fake-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{imports.GROUP}]\nfake = {PLUGIN}:make\n"
                                           f"[console_scripts]\nother = {OTHER}:make\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv(imports.ENV, raising=False)
    imports.plugins.cache_clear()
    yield {name: folder / f"{name}.imported" for name in (PLUGIN, OTHER)}
    imports.plugins.cache_clear()
    for name in (PLUGIN, OTHER):
        sys.modules.pop(name, None)


def _suite(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps({**tiny_suite(), "model": {"name": model}}))
    return path


def test_reading_the_plugin_group_imports_nothing(marks):
    assert imports.plugins() == (PLUGIN,)
    assert imports.is_allowed(PLUGIN) and not imports.is_allowed(OTHER)
    assert not any(m.exists() for m in marks.values())
    assert PLUGIN not in sys.modules and OTHER not in sys.modules


def test_a_plugin_factory_needs_no_allow_import(tmp_path, marks, capsys):
    assert cli.main(["validate", str(_suite(tmp_path, f"{PLUGIN}:make"))]) == 0, capsys.readouterr().err
    assert marks[PLUGIN].exists() and not marks[OTHER].exists()


def test_a_suite_naming_a_plugin_does_not_import_the_others(tmp_path, marks, capsys):
    assert cli.main(["validate", str(_suite(tmp_path, "ott_conv1d"))]) == 0, capsys.readouterr().err
    assert not any(m.exists() for m in marks.values())


def test_a_module_the_distribution_does_not_declare_is_refused(tmp_path, marks, capsys):
    assert cli.main(["validate", str(_suite(tmp_path, f"{OTHER}:make"))]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and imports.GROUP in err and "--allow-import" in err
    assert not any(m.exists() for m in marks.values())
