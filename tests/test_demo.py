"""The one-minute demonstration (``make demo``, suites/demo.yaml, the README's first example): it
validates, and (slow, about a minute) it shows the effect: the model trained with 2 Euler steps
collapses at the finest test steps and under the reference solve, the one trained with 64 holds."""

from pathlib import Path

import pandas as pd
import pytest

from robustbench_ode.cli import main
from robustbench_ode.config import load_suite

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "suites" / "demo.yaml"


def demo_effect(results: pd.DataFrame) -> dict:
    """Seed-averaged accuracy drops from each Euler-trained model's own step count: at the finest
    Euler and the finest rk4 test step count, and under the reference solve."""
    ok = results[(results["status"] == "ok") & (results["train_solver"] == "euler")]
    out = {}
    for steps, part in ok.groupby("train_steps"):
        own = part[part["is_train_config"].astype(bool)]["accuracy"].mean()
        drops = {"own": own, "reference": own - part[part["is_reference"].astype(bool)]["accuracy"].mean()}
        for solver in ("euler", "rk4"):
            rows = part[part["test_solver"] == solver]
            finest = rows[rows["test_steps"] == rows["test_steps"].max()]
            drops[solver] = own - finest["accuracy"].mean()
        out[int(steps)] = drops
    return out


def test_demo_suite_validates(capsys):
    assert main(["validate", str(DEMO)]) == 0
    assert "suite 'demo', 4 cells" in capsys.readouterr().out
    suite = load_suite(DEMO)  # two seeds of a coarse and a fine Euler model, tested finer
    assert suite.train.seeds == [0, 1]
    assert [(e.solver, e.steps) for e in suite.train.grid] == [("euler", [2, 64])]
    assert max(max(e.steps or [0]) for e in suite.test if e.solver == "euler") >= 128


def test_demo_effect_on_a_made_up_table():
    rows = []
    for train, accs in ((2, {2: 1.0, 256: 0.5}), (64, {64: 0.98, 256: 0.97})):
        for solver, k, v in [("euler", k, v) for k, v in accs.items()] + [("rk4", 128, accs[max(accs)])]:
            rows.append(dict(train_solver="euler", train_steps=train, test_solver=solver, test_steps=k,
                             accuracy=v, status="ok", is_train_config=k == train, is_reference=False))
        rows.append(dict(train_solver="euler", train_steps=train, test_solver="dopri5", test_steps=None,
                         accuracy=accs[max(accs)] - 0.01, status="ok", is_train_config=False,
                         is_reference=True))
    got = demo_effect(pd.DataFrame(rows))
    assert got[2]["euler"] == pytest.approx(0.5) and got[64]["euler"] == pytest.approx(0.01)
    assert got[64]["reference"] == pytest.approx(0.02) and got[2]["rk4"] == pytest.approx(0.5)


@pytest.mark.slow
def test_demo_shows_the_effect(tmp_path):
    assert main(["run", str(DEMO), "--out", str(tmp_path), "--no-progress", "--threads", "1"]) == 0
    got = demo_effect(pd.read_csv(tmp_path / "results.csv"))
    coarse, fine = got[2], got[64]
    assert coarse["own"] >= 0.9 and fine["own"] >= 0.9  # both learned
    for where in ("euler", "rk4", "reference"):  # the finest test steps, and the reference solve
        assert coarse[where] > 0.2, (where, coarse)
        assert abs(fine[where]) <= 0.05, (where, fine)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "accuracy_vs_steps.png").is_file()
