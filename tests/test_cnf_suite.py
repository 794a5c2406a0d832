"""The density task end to end: a tiny CNF suite trains, tests and writes nll rows; the suite
check refuses a flow on labelled data (and a classifier on a density); the discrete-map study
reads the run's stored cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustbench_ode.cli import main
from robustbench_ode.studies import cnf_map

TINY = """
name: tiny_cnf
dataset: {name: two_moons, n_train: 64, n_test: 32}
model: {name: cnf, hidden: 8, depth: 2}
training: {iterations: 4, batch_size: 32, lr: 0.01, regularization: {kinetic: 0.01, jacobian: 0.01}}
train:
  seeds: [0]
  grid:
    - {solver: euler, steps: [2]}
    - {solver: dopri5, tol: [0.01]}
test:
  - {solver: euler, steps: [2, 8]}
  - {solver: rk4, steps: [2]}
diagnostics: {enabled: false}
"""


def test_a_tiny_cnf_suite_runs_end_to_end(tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY)
    out = tmp_path / "run"
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    df = pd.read_csv(out / "results.csv")
    # per cell: the 3 test rows and the reference; the dopri5 cell's own configuration once more
    assert (df["status"] == "ok").all() and len(df) == 2 * 4 + 1
    assert np.isfinite(df["nll"]).all() and df["accuracy"].isna().all() and df["bpd"].isna().all()
    assert (df["loss"] == df["nll"]).all()
    # every ok row's samples, solved back from the base, against the held-out set
    assert np.isfinite(df["energy_distance"]).all() and (df["energy_distance"] > -0.2).all()
    summary = pd.read_csv(out / "summary.csv")
    assert np.allclose(summary["nll_gap"], summary["nll_ref"] - summary["nll_train"])
    page = (out / "report.html").read_text()
    assert "nll_gap" in page and 'id="spread"' in page and "nats/dim" in page
    log = pd.read_csv(out / "training.csv")
    assert np.isfinite(log["nll"]).all() and (log["kinetic"] > 0).all()
    # the regularised loss is the NLL plus the penalties
    assert (log["loss"] > log["nll"]).all()
    capsys.readouterr()
    cnf_map.main([str(out), "--samples", "16"])
    table = capsys.readouterr().out
    assert "| two_moons | 0 | euler 2 |" in table and "dopri5" not in table.split("|---")[-1]


@pytest.mark.parametrize("edit, expected", [
    (("name: two_moons, n_train: 64, n_test: 32", "name: moons"), "is a density model"),
    (("name: cnf, hidden: 8, depth: 2", "name: mlp"), "is not a density model"),
    (("lr: 0.01,", "lr: 0.01, adaptation: {mode: step},"), "training.adaptation"),
])
def test_bad_density_combinations_exit_2_with_one_line(tmp_path, capsys, edit, expected):
    suite = tmp_path / "bad.yaml"
    suite.write_text(TINY.replace(*edit))
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


@pytest.mark.slow
def test_the_full_toy_suite_contrasts_a_coarse_and_a_fine_flow(tmp_path):
    """suites/cnf_toy.yaml at full size (five toys x Euler 2/8/32/128 + dopri5 x 3 seeds; hours on
    one thread of a 2-core machine, make test-slow): on every toy the coarsest Euler-trained flow's
    NLL gap is beyond the adaptation threshold on every seed, and the finest Euler-trained and the
    dopri5-trained flows' mean gap is within it (docs/cnf.md's findings, issue 30's acceptance)."""
    from pathlib import Path

    from robustbench_ode.outputs import critical, summary

    suite = Path(__file__).resolve().parent.parent / "suites" / "cnf_toy.yaml"
    out = tmp_path / "run"
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    s = summary.summarize(pd.read_csv(out / "results.csv"))
    tol = critical.DENSITY_RULES["adaptation"]
    assert s["dataset"].nunique() == 5 and (s.groupby("dataset").size() == 5 * 3).all()
    for dataset, part in s.groupby("dataset"):
        euler = part[part["train_solver"] == "euler"]
        coarse = euler[euler["train_steps"] == euler["train_steps"].min()]["nll_gap"]
        fine = euler[euler["train_steps"] == euler["train_steps"].max()]["nll_gap"]
        adaptive = part[part["train_solver"] == "dopri5"]["nll_gap"]
        assert (coarse > tol).all(), (dataset, coarse.tolist())
        assert abs(fine.mean()) < tol and abs(adaptive.mean()) < tol, (dataset, fine.tolist())
        assert coarse.min() > 10 * abs(fine.mean()), (dataset, coarse.tolist(), fine.tolist())
