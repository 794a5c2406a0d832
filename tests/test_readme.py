"""The README is a front page whose commands and code work as written: at most about 200 lines,
every link resolving, the "Your own model" snippet at most 15 lines and runnable, and (slow) every
command of its bash blocks run top to bottom in a fresh clone of the repository.

In the clone, ``make install`` is replaced by a link to this checkout's virtual environment (no
network at test time) and ``make test`` is not run (it is the suite this test belongs to); every
other line runs as written, in order, with the clone first on PYTHONPATH and its .venv/bin first
on PATH."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def blocks(lang: str, text: str = README) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def commands(text: str = README) -> list[str]:
    """Every command line of the bash blocks, in order, comments stripped."""
    out = []
    for block in blocks("bash", text):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 210
    for heading in ("## Set up", "## The effect in one minute", "## Your own model",
                    "## At the paper's scale", "## Documentation"):
        assert heading in README
    # the two set-up commands first, the demo next
    cmds = commands()
    assert cmds[:3] == ["make install", "make test", "make demo"], cmds[:3]
    assert "results/demo/accuracy_vs_steps.png" in README
    # no dated measurement notes: those live in BENCHMARKS.md and docs/reproductions.md
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", README), re.findall(r"\b20\d\d-\d\d-\d\d\b", README)


@pytest.mark.parametrize("doc", ["README.md", "docs/index.md", "docs/tutorial.md", "docs/cli.md",
                                 "docs/suites.md", "docs/metrics.md", "docs/own_model.md",
                                 "docs/layout.md"])
def test_every_relative_link_resolves(doc):
    path = ROOT / doc
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    missing = [link for link in local if not (path.parent / link).exists()]
    assert not missing, missing
    assert local or doc == "docs/suites.md"  # the link pattern finds links


def test_docs_index_maps_every_doc():
    index = (ROOT / "docs" / "index.md").read_text()
    unmapped = [p.name for p in sorted((ROOT / "docs").glob("*.md"))
                if p.name != "index.md" and f"]({p.name})" not in index]
    assert not unmapped, unmapped


def _env(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1",
            "PATH": f"{root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def test_own_model_snippet_is_short_and_runs(tmp_path):
    (code,) = [b for b in blocks("python") if "rb.benchmark(" in b]
    assert len(code.strip().splitlines()) <= 15
    script = tmp_path / "own_model.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(ROOT),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    header, values = out.stdout.strip().splitlines()[-2:]
    assert header.split() == ["acc_train", "acc_ref", "ode_gap"]
    assert float(values.split()[0]) > 0.9  # it learned its own 2-step map


def test_the_fast_cli_commands_run():
    """The README's list and validate lines, as written (seconds, no torch)."""
    fast = [c for c in commands() if re.match(r"python -m robustbench_ode (list|validate)\b", c)]
    assert len(fast) >= 2
    for cmd in fast:
        out = subprocess.run(cmd.replace("python", sys.executable, 1), shell=True, cwd=ROOT,
                             env=_env(ROOT), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (cmd, out.stderr[-2000:])


@pytest.mark.slow
def test_readme_commands_run_top_to_bottom_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=300)
    (clone / ".venv").symlink_to((ROOT / ".venv").resolve())
    ran = []
    for cmd in commands((clone / "README.md").read_text()):
        if cmd in ("make install", "make test"):
            continue  # see the module docstring
        out = subprocess.run(cmd, shell=True, cwd=clone, env=_env(clone), capture_output=True,
                             text=True, timeout=1200)
        assert out.returncode == 0, (cmd, out.stdout[-2000:], out.stderr[-2000:])
        ran.append(cmd)
    assert "make demo" in ran and "make regress" in ran
    assert (clone / "results" / "smoke_short" / "report.html").exists()
