"""The density task's summary metrics (outputs/summary.py: nll_train, nll_ref, nll_gap, the energy
distances, their seed spread) and the critical step count on the NLL gap (outputs/critical.py,
both thresholds in nats per dimension), on made-up results tables whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from robustbench_ode.outputs import critical, summary

# the NLL gap of each train step count (the rise of the test NLL under the accurate checks)
GAPS = {2: 5.0, 8: 0.05, 32: 0.01, 128: 0.002}


def _rows(seed: int, steps: int, gap: float, base: float = 1.3) -> list[dict]:
    """One Euler-trained flow's rows: its train configuration (NLL ``base``), Euler at 4x its steps
    and rk4 at its steps (both ``base + gap``), the reference (``base + gap``)."""
    common = dict(cell=f"c{seed}-{steps}", dataset="two_moons", model="cnf", training="default",
                  train_solver="euler", train_steps=steps, train_tol=math.nan, seed=seed,
                  accuracy=math.nan, status="ok", test_tol=math.nan)
    tests = [("euler", steps, base, True, False, 0.01),
             ("euler", 4 * steps, base + gap, False, False, 0.02),
             ("rk4", steps, base + gap, False, False, 0.02),
             ("dopri5", math.nan, base + gap, False, True, 0.03)]
    return [dict(common, test_solver=s, test_steps=n, nll=nll, is_train_config=train, is_reference=ref,
                 energy_distance=e, test_tol=1e-7 if ref else math.nan)
            for s, n, nll, train, ref, e in tests]


def _table(seeds=(0, 1, 2), gaps=GAPS) -> pd.DataFrame:
    return pd.DataFrame([r for seed in seeds for steps, gap in gaps.items()
                         for r in _rows(seed, steps, gap + 0.001 * seed)])


def test_nll_gap_is_reference_minus_train_positive_when_worse_than_claimed():
    out = summary.summarize(_table(seeds=(0,)))
    row = out[out["train_steps"] == 2].iloc[0]
    assert row["nll_train"] == pytest.approx(1.3) and row["nll_ref"] == pytest.approx(6.3)
    assert row["nll_gap"] == pytest.approx(5.0) and row["nll_worst"] == pytest.approx(6.3)
    assert row["energy_train"] == pytest.approx(0.01) and row["energy_ref"] == pytest.approx(0.03)
    assert out["acc_train"].isna().all()
    # a classifier's summary gets no density columns
    classified = _table(seeds=(0,)).assign(accuracy=0.9).drop(columns=["nll"])
    assert "nll_gap" not in summary.summarize(classified).columns


def test_the_density_metrics_are_declared_records_on_the_density_page():
    names = [m.name for m in summary.shown("density")]
    assert names[:5] == ["nll_train", "nll_ref", "nll_gap", "energy_train", "energy_ref"]
    gap = next(m for m in summary.METRICS if m.name == "nll_gap")
    assert gap.better == "zero" and "leaderboard_present" in gap.shown
    assert not {"nll_train", "nll_gap"} & {m.name for m in summary.shown("report")}


def test_seed_spread_is_the_mean_and_std_over_seeds():
    spread = summary.seed_spread(summary.summarize(_table()), ["nll_gap"])
    row = spread[spread["train_steps"] == 8].iloc[0]
    assert row["seeds"] == 3
    assert row["nll_gap"] == pytest.approx(0.051) and row["nll_gap_std"] == pytest.approx(0.001)


def test_the_critical_step_count_on_the_nll_gap_under_both_thresholds():
    table = critical.critical_table(_table())
    fixed = table[table["critical_checks"] == "fixed"].set_index("critical_rule")
    # strict (0.02 nats/dim): 8 steps rise by 0.05, so 32; adaptation (0.1): 8 already holds
    assert fixed.loc["strict", "critical_steps"] == 32 and fixed.loc["adaptation", "critical_steps"] == 8
    assert fixed.loc["strict", "critical_tol"] == critical.DENSITY_RULES["strict"]
    assert fixed.loc["strict", "critical_per_seed"] == "0:32 1:32 2:32"
    # the summary's critical_steps is the strict one, and drops are rises of the NLL
    assert (summary.summarize(_table())["critical_steps"] == 32).all()
    drops = critical.cell_drops(_table(seeds=(0,))).set_index("train_steps")["drop"]
    assert drops.to_dict() == pytest.approx({s: g for s, g in GAPS.items()})


def test_a_fall_of_the_nll_is_no_drop_and_a_rise_at_a_fine_step_moves_the_critical_count():
    better = critical.cell_drops(_table(seeds=(0,), gaps={2: -1.0, 8: -0.5}))
    assert np.allclose(better["drop"], 0.0)
    late = critical.critical_steps(_table(seeds=(0,), gaps={2: 0.0, 8: 0.5, 32: 0.0}))
    assert late["critical_steps"].iloc[0] == 32  # not 2: a larger count fails in between
