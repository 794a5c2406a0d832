"""The command line end to end: list, validate, run; bad input exits 2 with one line."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from robustbench_ode.cli import main

ROOT = Path(__file__).parent.parent
REQUIRED = ["dataset", "model", "seed", "train_solver", "train_steps", "train_tol", "test_solver",
            "test_steps", "test_tol", "accuracy", "mse", "loss", "nfe", "status"]


def test_list_solvers_with_order_stages_kind(capsys):
    assert main(["list", "solvers"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("rk4_38"))
    assert "order 4" in line and "4 stages" in line and "fixed-step" in line
    assert "adaptive" in next(x for x in out.splitlines() if x.strip().startswith("dopri5"))


def test_list_glob_filter(capsys):
    assert main(["list", "solvers", "--pattern", "rk4*"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    names = [x.split()[0] for x in lines if x.startswith("  ") and not x.startswith("   ")]
    assert names == ["rk4", "rk4_38"]


@pytest.mark.parametrize("axis", ["models", "datasets"])
def test_list_other_axes(axis, capsys):
    assert main(["list", axis]) == 0
    assert "sphere2" in capsys.readouterr().out or axis == "models"


def test_smoke_run_writes_tidy_outputs(smoke_run):
    files = {p.name for p in smoke_run.iterdir()}
    assert {"results.csv", "training.csv", "suite.yaml", "meta.json",
            "accuracy_vs_steps.png"} <= files
    df = pd.read_csv(smoke_run / "results.csv")
    assert [c for c in df.columns if c in REQUIRED] == REQUIRED  # all there, in this order
    assert df.columns[0] == "dataset" and (df["training"] == "default").all()
    assert (df["status"] == "ok").all()
    fixed = df[df["test_solver"] != "dopri5"]
    adaptive = df[df["test_solver"] == "dopri5"]
    assert fixed["test_tol"].isna().all() and fixed["test_steps"].notna().all()
    assert adaptive["test_steps"].isna().all() and adaptive["test_tol"].notna().all()
    assert df["accuracy"].between(0, 1).all()
    # fixed-step NFE is exactly steps x stages
    stages = {"euler": 1, "rk4": 4}
    for _, row in fixed.iterrows():
        assert row["nfe"] == row["test_steps"] * stages[row["test_solver"]]
    log = pd.read_csv(smoke_run / "training.csv")
    assert {"cell", "iteration", "loss", "accuracy", "nfe"} <= set(log.columns)
    assert len(log) == 3 * 20
    meta = json.loads((smoke_run / "meta.json").read_text())
    for key in ("version", "torch", "python", "device", "git_revision", "started", "finished"):
        assert key in meta


def test_same_suite_twice_gives_identical_numbers(smoke_run, tmp_path):
    assert main(["run", str(ROOT / "suites" / "smoke.yaml"), "--out", str(tmp_path),
                 "--no-progress"]) == 0
    cols = ["accuracy", "loss", "nfe"]
    a = pd.read_csv(smoke_run / "results.csv")[cols]
    b = pd.read_csv(tmp_path / "results.csv")[cols]
    pd.testing.assert_frame_equal(a, b)
    la = pd.read_csv(smoke_run / "training.csv")["loss"]
    lb = pd.read_csv(tmp_path / "training.csv")["loss"]
    pd.testing.assert_series_equal(la, lb)


def _bad_suite(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


SMOKE = (ROOT / "suites" / "smoke.yaml").read_text()


@pytest.mark.parametrize("text, expected", [
    ("name: [unclosed\n", "not valid YAML"),
    (b"\xff\xfe\x00binary", "not"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    (SMOKE.replace("solver: euler, steps: [2, 8]", "solver: eulerr, steps: [2, 8]"),
     "unknown solver 'eulerr'"),
    (SMOKE.replace("name: sphere2", "name: sphere9"), "unknown dataset 'sphere9'"),
    (SMOKE.replace("steps: [2, 8]", "steps: [0, 8]"), "train.grid.0.steps.0"),
    (SMOKE.replace("iterations: 20", "iterations: -5"), "training.iterations"),
    (SMOKE.replace("batch_size: 64", "batch_size: 0"), "training.batch_size"),
    (SMOKE.replace("tol: [0.01]", "tol: [0.0]"), "train.grid.1.tol.0"),
    (SMOKE + "colour: blue\n", "colour: unknown key"),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, command, text, expected):
    path = _bad_suite(tmp_path, text)
    assert main([command, str(path), "--out", str(tmp_path / "o")] if command == "run"
                else [command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err
    assert not (tmp_path / "o").exists()


def test_missing_file_and_bad_option_exit_2(tmp_path):
    for argv in (["validate", str(tmp_path / "nope.yaml")],
                 ["run", str(ROOT / "suites" / "smoke.yaml"), "--device", "tpu"],
                 ["run", str(ROOT / "suites" / "smoke.yaml"), "--bogus"],
                 ["frobnicate"]):
        proc = subprocess.run([sys.executable, "-m", "robustbench_ode", *argv],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2, argv
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_validate_ok(capsys):
    assert main(["validate", str(ROOT / "suites" / "smoke.yaml")]) == 0
    assert "3 cells" in capsys.readouterr().out


def test_failing_cells_are_statuses_and_the_suite_goes_on(tmp_path, capsys, monkeypatch):
    from robustbench_ode.run import runner

    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)  # the tables are the point
    bad = SMOKE.replace("lr: 0.01", "lr: 9.0").replace("tol: [0.01]", "tol: [0.01]")
    bad = bad.replace("training: {", "training: {max_steps: 2, ")
    # the blown-up models' diagnosis (reference solves of hundreds of steps) takes most of a minute
    bad += "\ndiagnostics: {enabled: false}\n"
    path = _bad_suite(tmp_path, bad)
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    df = pd.read_csv(tmp_path / "o" / "results.csv")
    # the dopri5-trained cell hits its 2-step limit: a status, and the euler cells still ran
    dopri = df[df["train_solver"] == "dopri5"]
    assert (dopri["train_status"] == "max_steps").all()
    assert (dopri["status"] == "skipped").all()
    assert df[df["train_solver"] == "euler"]["accuracy"].notna().any()


@pytest.mark.parametrize("argv", [
    ["regress", "results/smoke", "--baseline", "b.csv", "--acc-tol", "-1"],
    ["regress", "results/smoke", "--baseline", "b.csv", "--nfe-tol", "nan"],
    ["critical", "r.csv", "--tol", "-0.5"],
    ["run", "suites/smoke.yaml", "--gpus-per-cell", "-1"],
    ["run", "suites/smoke.yaml", "--workers", "0"],
])
def test_negative_option_values_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
