"""critical.csv has both definitions of the critical step count (strict 0.02 and the adaptation
algorithm's own 0.1), each with and without adaptive test rows, per seed and pooled
(robustbench_ode/outputs/critical.py; docs/adaptation.md), and the adapted models are compared
against both."""

from __future__ import annotations

import math

import pandas as pd

from robustbench_ode.outputs.critical import RULES, adapted_vs_critical, critical_table


def _row(seed, steps, solver, test_steps, acc, train=False, adapted=False, factor=math.nan):
    return {"cell": f"{seed}-{steps}-{adapted}", "dataset": "d", "model": "m", "seed": seed,
            "train_solver": "euler", "train_steps": steps, "train_tol": math.nan, "test_solver": solver,
            "test_steps": test_steps, "test_factor": factor, "accuracy": acc, "status": "ok",
            "is_train_config": train, "adapted": adapted}


def _sweep():
    # Euler drops at 4x: 0.3 at 2 steps, 0.05 at 4 (between the rules), 0.0 at 8; seed 1's
    # dopri5 (adaptive, no test_steps) row loses 0.05 at 8 steps.
    drops = {2: 0.3, 4: 0.05, 8: 0.0}
    rows = []
    for seed in (0, 1):
        for steps, drop in drops.items():
            rows += [_row(seed, steps, "euler", steps, 0.9, True), _row(seed, steps, "euler", 2 * steps, 0.9),
                     _row(seed, steps, "euler", 4 * steps, 0.9 - drop),
                     _row(seed, steps, "dopri5", math.nan, 0.85 if (seed, steps) == (1, 8) else 0.9)]
    return pd.DataFrame(rows)


def test_both_rules_and_both_check_sets():
    t = critical_table(_sweep()).set_index(["critical_rule", "critical_checks"])
    assert set(RULES) == {"strict", "adaptation"} and RULES["adaptation"] == 0.1
    assert t.loc[("strict", "fixed"), "critical_steps"] == 8
    assert t.loc[("adaptation", "fixed"), "critical_steps"] == 4  # the 0.05 drop passes at 0.1
    assert t.loc[("strict", "fixed"), "critical_per_seed"] == "0:8 1:8"
    # with the adaptive dopri5 rows, seed 1 loses 5 points at 8 steps: no strict count for it
    assert t.loc[("strict", "fixed+adaptive"), "critical_per_seed"] == "0:8 1:-"
    assert t.loc[("adaptation", "fixed+adaptive"), "critical_per_seed"] == "0:4 1:4"


def test_adapted_models_against_both_definitions():
    adapted = pd.DataFrame([_row(0, 6, "euler", 6, 0.9, True, True),
                            _row(0, 6, "rk4", 24, 0.88, adapted=True, factor=4.0)])
    out = adapted_vs_critical(adapted, critical_table(_sweep())).iloc[0]
    assert (out.critical_steps_strict, out.critical_steps_adaptation) == (8, 4)
    assert (out.ratio_to_critical_strict, out.ratio_to_critical_adaptation) == (0.75, 1.5)
    assert abs(out["drop"] - 0.02) < 1e-12
