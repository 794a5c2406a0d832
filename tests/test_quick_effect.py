"""The protocol's effect on the quick suite (the acceptance of the core harness). Slow: ~5 min."""

from pathlib import Path

import pandas as pd
import pytest

from robustbench_ode.cli import main

ROOT = Path(__file__).parent.parent


def check_effect(results: pd.DataFrame) -> dict:
    """Fewest-step model loses >= 20 points at >= 32 Euler test steps; most-step model (>= 128)
    reaches >= 90% and stays within 3 points at every Euler test count >= its train count."""
    euler = results[(results.train_solver == "euler") & (results.test_solver == "euler")]
    acc = euler.groupby(["train_steps", "test_steps"])["accuracy"].mean().unstack()
    few, many = acc.index.min(), acc.index.max()
    drop = acc.loc[few, few] - acc.loc[few, [s for s in acc.columns if s >= 32]].max()
    held = acc.loc[many, [s for s in acc.columns if s >= many]]
    return {"fewest": few, "most": many, "drop": drop, "most_acc": acc.loc[many, many],
            "most_worst_gap": acc.loc[many, many] - held.min()}


def test_check_effect_on_a_made_up_table():
    rows = []
    for train, accs in ((2, {2: 1.0, 32: 0.6, 64: 0.6}), (128, {32: 0.5, 128: 0.95, 256: 0.94})):
        rows += [dict(train_solver="euler", test_solver="euler", train_steps=train, test_steps=k,
                      accuracy=v) for k, v in accs.items()]
    got = check_effect(pd.DataFrame(rows))
    assert got["drop"] == pytest.approx(0.4) and got["most_worst_gap"] == pytest.approx(0.01)


@pytest.mark.slow
def test_quick_suite_reproduces_the_effect(tmp_path):
    assert main(["run", str(ROOT / "suites" / "quick.yaml"), "--out", str(tmp_path),
                 "--no-progress"]) == 0
    got = check_effect(pd.read_csv(tmp_path / "results.csv"))
    assert got["fewest"] <= 2 and got["most"] >= 128
    assert got["drop"] >= 0.20
    assert got["most_acc"] >= 0.90 and got["most_worst_gap"] <= 0.03
