"""The regression gate and compare, both ways, on a small synthetic results table."""

import pandas as pd
import pytest

from robustbench_ode.cli import main
from robustbench_ode.outputs.gate import comparison, regressions
from robustbench_ode.outputs.tables import results_frame, write_csv


def table() -> pd.DataFrame:
    base = {"cell": "c", "dataset": "sphere2", "model": "ott_conv1d", "seed": 0,
            "train_solver": "euler", "train_steps": 8, "train_tol": None}
    rows = [{**base, "test_solver": "euler", "test_steps": n, "test_tol": None,
             "accuracy": 0.9 - 0.01 * i, "loss": 0.3, "nfe": float(n), "status": "ok"}
            for i, n in enumerate([2, 4, 8, 16])]
    rows.append({**base, "test_solver": "dopri5", "test_steps": None, "test_tol": 1e-7,
                 "accuracy": 0.88, "loss": 0.3, "nfe": 98.0, "status": "ok"})
    return results_frame(rows)


@pytest.fixture
def dirs(tmp_path):
    """A baseline file, an identical run and a run with three regressions."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    write_csv(table(), tmp_path / "baseline.csv")
    write_csv(table(), good / "results.csv")
    worse = table()
    worse.loc[worse["test_steps"] == 4, "accuracy"] -= 0.05  # beyond --acc-tol 0.02
    worse.loc[worse["test_tol"] == 1e-7, "nfe"] *= 1.3  # beyond --nfe-tol 0.10
    worse = worse[worse["test_steps"].ne(16).fillna(True).astype(bool)]  # a baseline row missing
    write_csv(worse, bad / "results.csv")
    return tmp_path / "baseline.csv", good, bad


def test_identical_run_passes(dirs, capsys):
    baseline, good, _ = dirs
    assert main(["regress", str(good), "--baseline", str(baseline)]) == 0
    assert "no regressions" in capsys.readouterr().out


def test_regressions_fail_and_are_all_named(dirs, capsys):
    baseline, _, bad = dirs
    assert main(["regress", str(bad), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("REGRESSION")]
    assert len(lines) == 3
    assert any("accuracy:" in line and "test_steps=4" in line for line in lines)
    assert any("nfe:" in line and "test_tol=1e-07" in line for line in lines)
    assert any("missing:" in line and "test_steps=16" in line for line in lines)


def test_changes_within_tolerance_pass():
    run = table()
    run["accuracy"] -= 0.015
    run["nfe"] *= 1.05
    assert regressions(run, table(), acc_tol=0.02, nfe_tol=0.10) == []
    assert len(regressions(run, table(), acc_tol=0.01, nfe_tol=0.10)) == len(run)


def test_worse_status_is_a_regression_and_better_is_not():
    run = table()
    run.loc[0, ["status", "accuracy"]] = ["non_finite", float("nan")]
    found = regressions(run, table())
    assert [r.kind for r in found] == ["status"] and "ok -> non_finite" in found[0].detail
    assert regressions(table(), run) == []  # a row that got fixed is no regression


def test_new_rows_are_not_regressions():
    assert regressions(table(), table().iloc[:2]) == []


def test_compare_prints_differences(dirs, capsys):
    baseline, _, bad = dirs
    assert main(["compare", str(baseline), str(bad)]) == 0
    out = capsys.readouterr().out
    assert "d_accuracy" in out and "-0.05" in out
    diff = comparison(table(), table().assign(accuracy=lambda d: d.accuracy + 0.1))
    assert diff["d_accuracy"].round(9).eq(0.1).all()


def test_regress_without_results_is_bad_input(tmp_path, capsys):
    assert main(["regress", str(tmp_path), "--baseline", str(tmp_path / "x.csv")]) == 2
    assert "no results.csv" in capsys.readouterr().err


def test_step_control_is_part_of_a_rows_identity():
    """A baseline written before test_control was filled matches today's batch rows; a per-sample
    row at the same tolerance is a point of its own (compared, not dropped as a duplicate)."""
    old = table()  # test_control empty everywhere
    new = table()
    new.loc[new["test_tol"] == 1e-7, "test_control"] = "batch"
    per_sample = new[new["test_tol"] == 1e-7].copy()
    per_sample["test_control"] = "per_sample"
    per_sample["nfe"] = 200.0
    new = pd.concat([new, per_sample], ignore_index=True)
    assert regressions(new, old) == []
    worse = new.copy()
    worse.loc[worse["test_control"] == "per_sample", "nfe"] = 300.0
    found = regressions(worse, new)
    assert len(found) == 1 and found[0].kind == "nfe" and "test_control=per_sample" in found[0].row


@pytest.mark.parametrize("spoil, expected", [
    (lambda df: df.head(0), "no rows, only a header"),
    (lambda df: df.rename(columns={"accuracy": "acc"}), "no accuracy column"),
    (lambda df: df.drop(columns=["test_solver"]), "no test_solver column"),
    (lambda df: df.drop(columns=["nfe", "status"]), "no nfe, status columns"),
    (lambda df: df.assign(accuracy=float("nan")), "status ok but no accuracy or mse"),
    (lambda df: df.assign(accuracy="high"), "column accuracy, row 1: 'high' is not a number"),
])
def test_a_baseline_that_cannot_guard_anything_is_refused(dirs, tmp_path, capsys, spoil, expected):
    _, good, _ = dirs
    spoiled = tmp_path / "spoiled.csv"
    write_csv(spoil(table()), spoiled)
    assert main(["regress", str(good), "--baseline", str(spoiled)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "spoiled.csv" in err, err


def test_a_planted_accuracy_drop_is_caught(dirs, tmp_path, capsys):
    baseline, good, _ = dirs
    dropped = tmp_path / "dropped"
    dropped.mkdir()
    run = table()
    run.loc[run["test_steps"] == 8, "accuracy"] -= 0.1
    write_csv(run, dropped / "results.csv")
    assert main(["regress", str(dropped), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION accuracy:" in out and "test_steps=8" in out and "1 regressions" in out
