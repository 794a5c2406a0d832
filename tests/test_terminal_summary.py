"""Issue 25, items 2 and 3: ``run`` ends with the run's summary table on the terminal (one row per
train configuration, at most 100 columns, the numbers of summary.csv); ``-q`` leaves only
warnings and errors, ``-v`` adds debug detail; the table builder (outputs/terminal.py) on a
hand-made summary."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from robustbench_ode.outputs.terminal import WIDTH, by_configuration, grid_text, summary_text

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "suites" / "smoke.yaml"
CONFIGS = ["euler-2", "euler-8", "dopri5@0.01"]  # suites/smoke.yaml's train grid


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "robustbench_ode", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("smoke")
    done = _cli("run", str(SMOKE), "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done


def _table(stdout: str) -> list[str]:
    """The summary table's lines: its header and the rows below it."""
    lines = stdout.splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith("configuration ")]
    return lines[start:start + 1 + len(CONFIGS)]


def test_run_ends_with_the_summary_table_of_summary_csv(smoke):
    out, done = smoke
    assert f"wrote {out}/results.csv (16 rows, 3 cells" in done.stdout  # the status line stays
    header, *rows = _table(done.stdout)
    assert header.split()[:4] == ["configuration", "acc_ref", "ode_gap", "acc_train"]
    assert "effect" in header.split()  # the smoke suite diagnoses its models
    assert [r.split()[0] for r in rows] == CONFIGS  # one row per train configuration, suite order
    assert all(len(line) <= WIDTH for line in [header, *rows]), [len(x) for x in [header, *rows]]
    summary = pd.read_csv(out / "summary.csv")  # the same numbers as the file the run wrote
    column = header.split().index("acc_train")
    for row, (_, model) in zip(rows, summary.iterrows()):
        assert float(row.split()[column]) == pytest.approx(model["acc_train"], abs=5e-4)
        assert row.split()[header.split().index("effect")] == model["effect"]


def test_run_then_shows_accuracy_by_train_and_test_configuration(smoke):
    """Issue 25 item 3: the grid of train x test configurations, the seeds' mean accuracy, within
    100 columns; the numbers are results.csv's."""
    out, done = smoke
    lines = done.stdout.splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith("accuracy by train (rows) x test")]
    header, *rows = lines[start + 1:start + 2 + len(CONFIGS)]
    assert [r.split()[0] for r in rows] == CONFIGS
    grid = lines[start:next(i for i, line in enumerate(lines) if line.startswith("(more: "))]
    assert all(len(line) <= WIDTH for line in grid), [len(line) for line in grid]
    results = pd.read_csv(out / "results.csv")
    column = header.split().index("rk4-4")  # the test configuration every model has (suites/smoke.yaml)
    for row, config in zip(rows, CONFIGS):
        train = results[(results["train_solver"] + "-" + results["train_steps"].map("{:.0f}".format)
                         == config) | (results["train_solver"] + "@" + results["train_tol"].map("{:g}".format)
                                       == config)]
        mean = train[(train["test_solver"] == "rk4") & (train["test_steps"] == 4)]["accuracy"].mean()
        assert float(row.split()[1 + column]) == pytest.approx(mean, abs=5e-4)
    assert "-" in rows[0].split()  # a model not tested at a configuration (step factors): a dash


def _made_up_results() -> pd.DataFrame:
    """Two train configurations x two seeds, tested at 12 Euler step counts, two rk4 and two
    dopri5 tolerances (given out of order); accuracy = train steps / 100 + seed / 10 + a test index."""
    tests = [("euler", n, None) for n in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)]
    tests += [("dopri5", None, 1e-7), ("rk4", 8, None), ("dopri5", None, 1e-3), ("rk4", 2, None)]
    rows = []
    for steps in (2, 64):
        for seed in (0, 1):
            for j, (solver, n, tol) in enumerate(tests):
                rows.append(dict(dataset="sphere2", model="ott_conv1d", training="default", seed=seed,
                                 train_solver="euler", train_steps=steps, train_tol=None,
                                 test_solver=solver, test_steps=n, test_tol=tol,
                                 accuracy=math.nan if (steps, j) == (64, 0)
                                 else steps / 100 + seed / 10 + j / 1000))
    return pd.DataFrame(rows)


def test_the_grid_fits_100_columns_in_blocks_of_test_configurations():
    text = grid_text(_made_up_results())
    lines = text.splitlines()
    assert lines[0] == "accuracy by train (rows) x test configuration (columns) (mean over seeds):"
    assert all(len(line) <= WIDTH for line in lines), [len(line) for line in lines]
    headers = [line.split() for line in lines[1:] if line.startswith(" ") and line.strip()]
    columns = [c for h in headers for c in h if c != "\\"]
    assert len(headers) >= 2  # wrapped: the test columns go on in a second block
    assert columns == [f"euler-{n}" for n in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)] + \
        ["dopri5@0.001", "dopri5@1e-07", "rk4-2", "rk4-8"]  # by solver, then steps, tolerance coarse first
    blocks = [line.split() for line in lines[1:] if line.startswith("euler-2 ")]
    assert len(blocks) == len(headers)  # every block led by the row labels
    assert blocks[0][1] == "0.070"  # euler-1 of the 2-step model: mean of 0.02 and 0.12
    assert [line.split()[1] for line in lines[1:] if line.startswith("euler-64 ")][0] == "-"  # no score


def test_quiet_shows_no_summary_and_verbose_adds_detail(smoke):
    out, _ = smoke
    quiet = _cli("-q", "run", str(SMOKE), "--out", str(out), "--no-progress")  # loads the 3 cells
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout == "" and "configuration" not in quiet.stderr
    loud = _cli("run", str(SMOKE), "--out", str(out), "--no-progress", "-v")  # after the command too
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert "plan: 3 cells: 0 to train" in loud.stdout and "loaded 3" in loud.stdout
    assert [r.split()[0] for r in _table(loud.stdout)[1:]] == CONFIGS


def _made_up() -> pd.DataFrame:
    """Two seeds of two Euler models and one seed of a dopri5 model, one of them on another dataset."""
    rows = []
    for steps, tol, effects, acc in ((2, None, ["fold", "robust"], 0.9), (8, None, ["robust"] * 2, 0.8),
                                     (None, 0.01, [None], 0.7)):
        for seed, effect in enumerate(effects):
            rows.append(dict(cell=f"c{steps}{tol}{seed}", dataset="xor" if tol else "sphere2",
                             model="ott_conv1d", training="default",
                             train_solver="dopri5" if tol else "euler",
                             train_steps=steps, train_tol=tol, seed=seed, acc_train=acc + seed / 10,
                             acc_ref=0.5, ode_gap=acc + seed / 10 - 0.5, worst_drop=0.1, drift=1.5,
                             nfe_train=steps or 14, nfe_ref=110, n_failed=0, effect=effect,
                             critical_steps=8 if steps else math.nan))
    return pd.DataFrame(rows)


def test_the_table_builder_on_a_made_up_summary():
    table = by_configuration(_made_up())
    assert list(table["configuration"]) == ["sphere2 euler-2", "sphere2 euler-8", "xor dopri5@0.01"]
    assert list(table["seeds"]) == [2, 2, 1]
    assert table["acc_train"].tolist() == pytest.approx([0.95, 0.85, 0.7])  # the seeds' mean
    assert list(table["effect"]) == ["fold 1/2", "robust", "-"]  # seeds that disagree: a count
    assert table["critical_steps"].tolist()[:2] == [8, 8] and math.isnan(table["critical_steps"].iloc[2])
    lines = summary_text(_made_up(), width=200).splitlines()  # wide: every column
    assert lines[0] == "summary (mean over seeds): 3 train configurations of ott_conv1d"
    assert lines[1].split() == ["configuration", "seeds", "acc_ref", "ode_gap", "acc_train", "worst_drop",
                                "drift", "nfe_train", "nfe_ref", "n_failed", "effect", "critical_steps"]
    assert lines[2].split()[:3] == ["sphere2", "euler-2", "2"] and lines[4].split()[-2:] == ["-", "-"]
    assert len(lines) == 5
    fitted = summary_text(_made_up()).splitlines()  # the default: 100 columns
    assert all(len(line) <= WIDTH for line in fitted) and "not shown to fit 100 columns" in fitted[-1]


def test_a_narrow_terminal_drops_metric_columns_from_the_end_then_cuts_labels():
    narrow = summary_text(_made_up(), width=72).splitlines()
    assert narrow[1].split()[:5] == ["configuration", "seeds", "acc_ref", "ode_gap", "acc_train"]
    assert "nfe_ref" not in narrow[1] and "effect" in narrow[1] and "critical_steps" in narrow[1]
    note = " ".join(line for line in narrow if not line.startswith(("summary", "configuration", "sphere",
                                                                      "xor")))
    assert note.startswith("(not shown to fit 72 columns: ") and "nfe_ref, n_failed;" in note
    assert all(len(line) <= 72 for line in narrow)
    long = _made_up().assign(training=lambda d: [f"a_very_long_training_name_{i}" * 2 for i in range(len(d))])
    cut = summary_text(long, width=72).splitlines()
    assert all(len(line) <= 72 for line in cut) and "..." in cut[2]
    # cut in the middle: each row still ends with its train solver and steps
    assert [line.split()[-6] for line in cut[2:7]] == ["euler-2"] * 2 + ["euler-8"] * 2 + ["dopri5@0.01"]


def test_the_demo_table_in_the_cli_reference_is_the_committed_run():
    """docs/cli.md shows what `run` prints at the end of the demo: recomputed from results/demo."""
    from robustbench_ode.outputs.terminal import run_summary

    doc = (ROOT / "docs" / "cli.md").read_text()
    block = doc.split("The demo ends with:\n\n```\n", 1)[1].split("```", 1)[0]
    assert block.rstrip("\n") == run_summary(ROOT / "results" / "demo")
