"""docs/own_model.md's example (the README's long "Your own model", moved there), run as written:
a model trained with plain torchdiffeq code (Euler, 2 steps, on two rings), benchmarked under
solver substitution, shows a real ODE gap; and the output printed there is what the block prints."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _blocks():
    section = (ROOT / "docs" / "own_model.md").read_text()  # the README's short version: test_readme.py
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"Its output.*?\n```\n(.*?)```", section, re.S).group(1)
    return code, shown


def test_readme_example_runs_as_written_and_shows_the_gap(tmp_path):
    code, shown = _blocks()
    assert "from torchdiffeq import odeint" in code and "rb.benchmark(model" in code
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "euler@2 inferred: True"
    header = next(i for i, line in enumerate(lines) if "ode_gap" in line)
    values = dict(zip(lines[header].split(), map(float, lines[header + 1].split())))
    assert values["ode_gap"] > 0.1, out.stdout
    assert values["acc_train"] > 0.9
    # the README prints this very output (the first lines; the numbers are deterministic on CPU)
    assert shown.strip().splitlines()[0] == lines[0]
    assert shown.strip().splitlines()[1].split() == lines[header].split()
