"""Step and tolerance adaptation on a stub model whose accuracies are set per solve, the critical
step count on a synthetic results table, and one tiny adapted suite end to end."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from robustbench_ode.config import AdaptationConfig, parse_suite
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.harness.cell import cells
from robustbench_ode.harness.grid import TestPoint, grid_points
from robustbench_ode.models import MODELS, SolveSpec
from robustbench_ode.outputs.critical import critical_steps
from robustbench_ode.solvers import SOLVERS, SolveStats
from robustbench_ode.training.adaptation import StepController, ToleranceController, starting_step
from robustbench_ode.training.loop import train_model


class Stub(nn.Module):
    """Logits whose accuracy on an all-zero label batch is ``acc(spec)``; NFE is ``nfe(spec)``."""

    def __init__(self, acc, nfe=lambda spec: spec.steps or 10) -> None:
        super().__init__()
        self.acc, self.nfe, self.seen = acc, nfe, []

    def forward(self, x, spec):
        self.seen.append(spec)
        n = x.shape[0]
        k = round(self.acc(spec) * n)
        logits = torch.zeros(n, 2)
        logits[:k, 0] = 1.0
        logits[k:, 1] = 1.0
        return logits, SolveStats(nfe=self.nfe(spec), steps=spec.steps or 0)


X, Y = torch.zeros(100, 2), torch.zeros(100, dtype=torch.long)
STEP = AdaptationConfig(mode="step")


def step_ctrl(steps: int, cfg: AdaptationConfig = STEP, solver: str = "euler") -> StepController:
    return StepController(cfg, solver, 1.0 / steps)


def test_gap_above_threshold_halves_the_step():
    ctrl = step_ctrl(10)
    model = Stub(lambda s: 0.9 if s.solver == "midpoint" else 0.5)
    d = ctrl.check(model, X, Y, 50)
    assert (d.action, d.before, d.after, ctrl.steps) == ("halve", 10, 20, 20)
    assert d.acc_train == pytest.approx(0.5) and d.acc_test == pytest.approx(0.9)
    assert d.nfe == 10 + 10  # the two check solves, counted


def test_gap_within_threshold_grows_when_the_trial_passes():
    ctrl = step_ctrl(20)
    model = Stub(lambda s: 0.9)
    d = ctrl.check(model, X, Y, 50)
    assert d.action == "grow" and ctrl.steps == math.ceil(20 / 1.1) == 19
    assert d.acc_trial == pytest.approx(0.9)
    assert [s.steps for s in model.seen] == [20, 20, 19]


def test_growth_is_refused_when_the_trial_fails():
    ctrl = step_ctrl(20)
    model = Stub(lambda s: 0.5 if s.solver == "euler" and s.steps < 20 else 0.9)
    d = ctrl.check(model, X, Y, 50)
    assert d.action == "keep" and ctrl.steps == 20 and d.acc_trial == pytest.approx(0.5)


def test_growth_crosses_integer_counts_and_stops_at_one_step():
    ctrl = step_ctrl(5)
    model = Stub(lambda s: 0.9)
    counts = [ctrl.check(model, X, Y, i).after for i in range(40)]
    assert counts[-1] == 1 and min(counts) == 1 and ctrl.h == pytest.approx(1.0)
    assert all(b <= a for a, b in zip(counts, counts[1:]))


@pytest.mark.parametrize("start", [300, 500])
def test_the_cap_holds(start):
    ctrl = step_ctrl(start)
    model = Stub(lambda s: 0.9 if s.solver == "midpoint" else 0.1)
    for i in range(3):
        ctrl.check(model, X, Y, i)
    assert ctrl.steps == 500 and ctrl.decisions[-1].action == "halve_capped"
    assert max(s.steps for s in model.seen if s.solver == "euler") == 500


@pytest.mark.parametrize("solver", [n for n in SOLVERS.names() if not SOLVERS.get(n).gridless])
def test_check_solver_is_declared_and_at_least_as_accurate(solver):
    """Every train solver declares its check solver (solvers/catalog.py), registered and of the
    same kind; a fixed-step check of no higher order runs at twice the steps."""
    declared = SOLVERS.get(solver).check_solver
    assert declared in SOLVERS and SOLVERS.get(declared).adaptive == SOLVERS.get(solver).adaptive
    mode = "tolerance" if SOLVERS.get(solver).adaptive else "step"
    cfg = AdaptationConfig(mode=mode)
    check = cfg.check_solver(solver)
    assert check == declared and cfg.incompatibility(solver) is None
    if mode == "step":
        higher = SOLVERS.get(check).order > SOLVERS.get(solver).order
        assert higher or cfg.step_factor(solver) >= 2
    else:
        assert 0 < SOLVERS.get(solver).check_tol_ratio < 1
    assert AdaptationConfig(mode=mode, test_solver="dopri8").check_solver(solver) == "dopri8"


def test_the_paper_check_solvers():
    """Ott et al.'s pairs: euler against midpoint, the rest against rk4; fehlberg2 at tol / 5."""
    assert {n: SOLVERS.get(n).check_solver for n in ("euler", "midpoint", "heun", "rk4", "rk4_38")} == \
        {"euler": "midpoint", "midpoint": "rk4", "heun": "rk4", "rk4": "rk4", "rk4_38": "rk4"}
    assert SOLVERS.get("fehlberg2").check_tol_ratio == 0.2 and SOLVERS.get("dopri5").check_tol_ratio == 0.1


def tol_ctrl(tol=1e-3, solver="dopri5") -> ToleranceController:
    return ToleranceController(AdaptationConfig(mode="tolerance"), solver, tol)


def nfe_of_tol(spec: SolveSpec) -> int:
    return 6 * round(-math.log10(spec.rtol))  # tighter tolerance, more evaluations


def test_tolerance_gap_halves_and_test_tol_is_tightened_past_the_train_nfe():
    ctrl = tol_ctrl(1e-3)
    model = Stub(lambda s: 0.5 if s.rtol >= 1e-3 else 0.9, nfe_of_tol)
    d = ctrl.check(model, X, Y, 50)
    assert d.action == "halve" and ctrl.tol == pytest.approx(5e-4)
    test_tols = [s.rtol for s in model.seen[1:]]
    assert test_tols[0] == pytest.approx(1e-4)  # tol / 10 for dopri5
    assert nfe_of_tol(model.seen[-1]) > nfe_of_tol(model.seen[0])
    assert d.nfe == sum(nfe_of_tol(s) for s in model.seen)


def test_tolerance_fehlberg2_checks_at_a_fifth():
    ctrl = tol_ctrl(1e-2, "fehlberg2")
    model = Stub(lambda s: 0.9, lambda s: 10 if s.solver == "fehlberg2" else 20)
    ctrl.check(model, X, Y, 0)
    assert model.seen[1].solver == "dopri5" and model.seen[1].rtol == pytest.approx(2e-3)


def test_tolerance_grows_then_reverts_on_a_failed_trial():
    ctrl = tol_ctrl(1e-3)
    model = Stub(lambda s: 0.9, nfe_of_tol)
    assert ctrl.check(model, X, Y, 0).action == "grow" and ctrl.tol == pytest.approx(1.1e-3)
    model.acc = lambda s: 0.5 if s.solver == "dopri5" and s.rtol > 1.15e-3 else 0.9
    d = ctrl.check(model, X, Y, 1)
    assert d.action == "revert" and ctrl.tol == pytest.approx(1.1e-3)


def test_tolerance_reverts_when_nfe_is_flat_over_the_window():
    ctrl = tol_ctrl(1e-3)
    model = Stub(lambda s: 0.9, lambda s: 10 if s.rtol > 5e-5 else 50)  # train NFE never moves
    actions = [ctrl.check(model, X, Y, i).action for i in range(6)]
    assert actions == ["grow"] * 4 + ["revert", "revert"]
    assert ctrl.tol == pytest.approx(1e-3 * 1.1**4)


def test_starting_step_shrinks_with_a_faster_field():
    torch.manual_seed(0)
    model = MODELS.get("ott_conv1d")((2,), 2)
    x = torch.rand(64, 2) - 0.5
    h = starting_step(model, x, order=1)
    with torch.no_grad():
        for p in model.block.field.parameters():
            p.mul_(3.0)
    assert 0 < starting_step(model, x, order=1) < h <= 1.0


SUITE = {
    "name": "t", "dataset": {"name": "sphere2", "n_train": 128, "n_test": 64},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 25, "batch_size": 32, "lr": 0.01,
                 "adaptation": {"mode": "step", "check_every": 10}},
    "train": {"grid": [{"solver": "euler", "steps": [3]}]},
    "test": [{"solver": "euler", "step_factors": [1, 2]}, {"solver": "rk4", "step_factors": [4]},
             {"solver": "rk4", "steps": [4]}],
}


def test_suite_rejects_a_mode_that_does_not_fit_the_solver():
    bad = {**SUITE, "train": {"grid": [{"solver": "dopri5", "tol": [1e-3]}]}}
    with pytest.raises(SuiteError, match=r"training.adaptation.mode"):
        parse_suite(bad)
    with pytest.raises(SuiteError, match=r"training.adaptation.every: unknown key"):
        parse_suite({**SUITE, "training": {"adaptation": {"mode": "step", "every": 3}}})


def test_cell_key_comes_from_the_config_and_is_unchanged_without_adaptation():
    plain = {**SUITE, "training": {k: v for k, v in SUITE["training"].items() if k != "adaptation"}}
    a, b = cells(parse_suite(SUITE))[0], cells(parse_suite(plain))[0]
    assert a.key != b.key and "adaptation" not in b.training.model_dump()


def test_factor_points_follow_the_final_step_count():
    suite = parse_suite(SUITE)
    cell = cells(suite)[0]
    pts = grid_points(suite.test, suite.reference, SolveSpec("euler", steps=7), cell.training.max_steps)
    got = {(p.spec.solver, p.spec.steps, p.factor, p.is_train) for p in pts}
    assert got == {("euler", 7, None, True), ("euler", 14, 2.0, False), ("rk4", 28, 4.0, False),
                   ("rk4", 4, None, False), ("dopri5", None, None, False)}
    assert [p.spec.rtol for p in pts if p.is_reference] == [1e-7]  # the reference solve survives
    assert isinstance(pts[0], TestPoint) and pts[0].is_train


def test_adapted_suite_end_to_end(tmp_path):
    from robustbench_ode.run.runner import run_suite

    run_suite(parse_suite(SUITE), tmp_path, progress=False)
    log = pd.read_csv(tmp_path / "training.csv")
    res = pd.read_csv(tmp_path / "results.csv")
    final = int(log["steps_in_force"].iloc[-1])
    checks = log[log["check_decision"].notna()]
    assert list(checks["iteration"]) == [10, 20] and (checks["check_nfe"] > 0).all()
    assert res["adapted"].all() and (res["train_steps"] == final).all()
    rk4 = res[(res.test_solver == "rk4") & (res.test_factor == 4)]
    assert list(rk4["test_steps"]) == [4 * final]
    assert not (tmp_path / "critical.csv").exists()  # one adapted cell: no sweep
    assert (tmp_path / "adaptation_steps.png").stat().st_size > 0


def _row(seed, steps, solver, test_steps, acc, train=False):
    return {"cell": f"{seed}-{steps}", "dataset": "d", "model": "m", "seed": seed,
            "train_solver": "euler", "train_steps": steps, "train_tol": float("nan"),
            "test_solver": solver, "test_steps": test_steps, "accuracy": acc, "status": "ok",
            "is_train_config": train, "adapted": False}


def test_critical_step_count_and_its_seed_spread():
    # Drops (train acc - worst check): seed 0 passes from 4 steps, seed 1 from 8; 2 steps fail
    # for both; 1 step "passes" at chance but lies below a failing count, so it is not critical.
    drops = {(0, 1): 0.0, (0, 2): 0.3, (0, 4): 0.01, (0, 8): 0.0,
             (1, 1): 0.0, (1, 2): 0.3, (1, 4): 0.05, (1, 8): 0.01}
    rows = []
    for (seed, steps), drop in drops.items():
        rows += [_row(seed, steps, "euler", steps, 0.9, True), _row(seed, steps, "euler", 2 * steps, 0.9),
                 _row(seed, steps, "euler", 4 * steps, 0.9 - drop), _row(seed, steps, "rk4", steps, 0.95)]
    out = critical_steps(pd.DataFrame(rows), tol=0.02)
    r = out.iloc[0]
    assert r.critical_steps == 8  # mean drop at 4 steps is 0.03 > 0.02
    assert (r.critical_steps_min, r.critical_steps_max, r.critical_seeds) == (4, 8, 2)
    assert r.critical_steps_mean == pytest.approx(6.0)
    assert critical_steps(pd.DataFrame(rows), tol=0.04).iloc[0].critical_steps == 4


def test_adaptation_plots(tmp_path):
    from robustbench_ode.outputs.figures.adapted import adapted_vs_fixed
    from robustbench_ode.outputs.figures.training import steps_over_training

    log = pd.DataFrame({"iteration": [0, 50, 100] * 2, "seed": [0] * 3 + [1] * 3,
                        "steps_in_force": [8, 16, 12, 8, 8, 10], "tol_in_force": [None] * 6})
    crit = pd.DataFrame([{"train_solver": "euler", "critical_steps": 8, "critical_steps_min": 4,
                          "critical_steps_max": 16}])
    assert steps_over_training(log, tmp_path / "a.png", crit).stat().st_size > 0
    res = pd.DataFrame([_row(0, 8, "euler", n, 0.9, n == 8) for n in (4, 8, 16)])
    assert adapted_vs_fixed(res.assign(train_steps=12), res, tmp_path / "b.png").stat().st_size > 0
    assert steps_over_training(pd.DataFrame(), tmp_path / "c.png") is None


def test_a_model_that_did_not_learn_is_not_critical():
    rows = []
    for steps, base, drop in [(4, 0.45, 0.0), (8, 0.9, 0.0), (16, 0.9, 0.0), (2, 0.9, 0.3)]:
        rows += [_row(0, steps, "euler", steps, base, True), _row(0, steps, "euler", 2 * steps, base),
                 _row(0, steps, "euler", 4 * steps, base - drop), _row(0, steps, "rk4", steps, base)]
    assert critical_steps(pd.DataFrame(rows)).iloc[0].critical_steps == 8
    assert critical_steps(pd.DataFrame(rows), learned_margin=0.5).iloc[0].critical_steps == 4


@pytest.mark.parametrize("mode", ["step", "tolerance"])
def test_adapted_training_resumed_from_a_checkpoint_equals_the_uninterrupted_one(mode):
    """Killed after a checkpoint and resumed, an adapted training continues from the controller's
    last state (not the initial one) and reproduces the uninterrupted run exactly."""

    grid = {"solver": "euler", "steps": [3]} if mode == "step" else {"solver": "bosh3", "tol": [1e-2]}
    training = {**SUITE["training"], "iterations": 30, "checkpoint_every": 12,
                "adaptation": {"mode": mode, "check_every": 5}}
    suite = parse_suite({**SUITE, "training": training, "train": {"grid": [grid]}})
    cell = cells(suite)[0]
    data = load_data(cell)
    whole = train_model(build_model(cell, data), data, cell.train_spec, cell.training, seed=cell.seed)
    saved = []

    def save_then_die(state):
        saved.append(state)
        if len(saved) == 2:
            raise KeyboardInterrupt  # the kill, right after the checkpoint at iteration 24

    with pytest.raises(KeyboardInterrupt):
        train_model(build_model(cell, data), data, cell.train_spec, cell.training, seed=cell.seed,
              on_checkpoint=save_then_die)
    assert saved[-1]["iteration"] == 24 and saved[-1]["adaptation"]
    resumed = train_model(build_model(cell, data), data, cell.train_spec, cell.training, seed=cell.seed,
                    resume=saved[-1])
    key = "steps_in_force" if mode == "step" else "tol_in_force"
    assert [r[key] for r in resumed.log] == [r[key] for r in whole.log]
    assert [r["loss"] for r in resumed.log] == [r["loss"] for r in whole.log]
    assert (resumed.final_steps, resumed.final_tol) == (whole.final_steps, whole.final_tol)


def test_adapted_suite_rerun_loads_every_row_from_the_store(tmp_path):
    from robustbench_ode.run.runner import run_suite

    suite = parse_suite(SUITE)
    first = run_suite(suite, tmp_path, progress=False)
    table = pd.read_csv(tmp_path / "results.csv")
    again = run_suite(suite, tmp_path, progress=False)
    assert len(first.trained) == 1 and not again.trained and not again.retested
    assert len(again.loaded) == 1
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "results.csv"), table)
    assert table["adapted"].all() and len(table) == first.rows


def test_grown_grid_retests_an_adapted_cell_at_its_final_step_count(tmp_path):
    from robustbench_ode.run.runner import run_suite

    run_suite(parse_suite(SUITE), tmp_path, progress=False)
    final = int(pd.read_csv(tmp_path / "training.csv")["steps_in_force"].iloc[-1])
    grown = {**SUITE, "test": SUITE["test"] + [{"solver": "midpoint", "step_factors": [2]}]}
    again = run_suite(parse_suite(grown), tmp_path, progress=False)
    assert not again.trained and len(again.retested) == 1
    res = pd.read_csv(tmp_path / "results.csv")
    new = res[res.test_solver == "midpoint"]
    assert list(new["test_steps"]) == [2 * final]
    assert new["adapted"].all() and (res["train_steps"] == final).all()


def test_critical_command_writes_the_adaptation_figures(tmp_path, capsys):
    from robustbench_ode.cli import main
    from robustbench_ode.run.runner import run_suite

    sweep = {**SUITE, "name": "sweep", "training": {k: v for k, v in SUITE["training"].items()
                                                    if k != "adaptation"},
             "train": {"grid": [{"solver": "euler", "steps": [1, 2]}]}}
    run_suite(parse_suite(sweep), tmp_path / "sweep", progress=False)
    run_suite(parse_suite(SUITE), tmp_path / "adapted", progress=False)
    assert main(["critical", str(tmp_path / "sweep" / "results.csv"),
                 "--adapted", str(tmp_path / "adapted" / "results.csv")]) == 0
    out = capsys.readouterr().out
    assert "ratio_to_critical" in out
    for name in ("adapted_vs_fixed.png", "adaptation_steps.png"):
        assert (tmp_path / "adapted" / name).stat().st_size > 1000


def test_no_critical_step_count_for_models_at_chance(smoke_run):
    """The smoke suite's models never learn (20 iterations): its critical.csv says so instead of
    reporting a step count (the old table said 2)."""
    crit = pd.read_csv(smoke_run / "critical.csv")
    assert len(crit) == 4  # both rules x both check sets (tests/test_critical_both_ways.py)
    (row,) = crit[(crit.critical_rule == "strict") & (crit.critical_checks == "fixed")].itertuples()
    assert row.critical_status == "not_learned" and math.isnan(row.critical_steps)
    assert "chance" in row.critical_note
    # and a group that did learn still gets its count (the rule, not the smoke data, decides)
    drops = {(0, 1): 0.3, (0, 2): 0.0, (1, 1): 0.3, (1, 2): 0.0}
    rows = []
    for (seed, steps), drop in drops.items():
        rows += [{**_row(seed, steps, "euler", steps, 0.95, True), "chance": 0.5},
                 {**_row(seed, steps, "euler", 2 * steps, 0.95 - drop), "chance": 0.5}]
    learned = critical_steps(pd.DataFrame(rows)).iloc[0]
    assert learned.critical_status == "ok" and learned.critical_steps == 2
