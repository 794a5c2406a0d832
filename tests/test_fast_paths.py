"""Every fast path equals its plain path up to float rounding: the fixed-step loop, OttConv1d's
matrix-product field (with gradients), seed-batched training (weights, losses, divergence), the
planner that groups cells, and a whole suite run with ``training.fast`` on and off."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from robustbench_ode.config import DatasetConfig, ModelConfig, TrainingConfig, parse_suite
from robustbench_ode.core.context import CPU
from robustbench_ode.harness import execution
from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.harness.cell import CellConfig, cells
from robustbench_ode.harness.grouping import stack_key
from robustbench_ode.models import MODELS, SolveSpec
from robustbench_ode.models.stacked import can_stack
from robustbench_ode.run.jobs import plan_training
from robustbench_ode.run.runner import run_suite
from robustbench_ode.solvers import SOLVERS, Kind
from robustbench_ode.training.forward import StackedForward
from robustbench_ode.training.loop import Member, train, train_model

FIXED = [n for n in SOLVERS.names() if SOLVERS.get(n).kind is Kind.FIXED]


def train_group(models, datas, seeds, spec, cfg):
    """The seeds trained as one stack: their outcomes (log, final state) in seed order."""
    return train(StackedForward(models, "cpu"), [Member(d, s) for d, s in zip(datas, seeds)], spec, cfg)


def plain_loop(f, z0, tableau, steps, t1=1.0):
    """The textbook loop: z_{n+1} = z_n + h * sum_i b_i k_i, every coefficient used."""
    h, z = t1 / steps, z0
    for n in range(steps):
        ks = []
        for i in range(tableau.stages):
            zi = z + h * sum((a * k for a, k in zip(tableau.a[i], ks)), torch.zeros_like(z))
            ks.append(f(n * h + tableau.c[i] * h, zi))
        z = z + h * sum((b * k for b, k in zip(tableau.b, ks)), torch.zeros_like(z))
    return z


@pytest.mark.parametrize("name", FIXED)
def test_fixed_step_solve_equals_plain_loop_with_gradients(name):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    f = lambda t, z: net(z) * (1.0 + t)  # time-dependent, so the nodes c matter
    z0 = torch.randn(5, 3, requires_grad=True)
    solver = SOLVERS.get(name)
    sol = solver.solve(f, z0, (0.0, 1.0), steps=7)
    ref = plain_loop(f, z0, solver.tableau, 7)
    assert sol.stats.nfe == 7 * solver.stages and sol.stats.steps == 7
    assert torch.allclose(sol.z, ref, atol=1e-6)
    ga = torch.autograd.grad(sol.z.square().sum(), [z0, *net.parameters()])
    gb = torch.autograd.grad(ref.square().sum(), [z0, *net.parameters()])
    for a, b in zip(ga, gb):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("time_input", [False, True])
def test_fast_conv1d_gradients_equal_conv1d(time_input):
    torch.manual_seed(1)
    fast = MODELS.get("ott_conv1d")((2,), 2, width=8, time_input=time_input, fast=True)
    slow = MODELS.get("ott_conv1d")((2,), 2, width=8, time_input=time_input, fast=False)
    slow.load_state_dict(fast.state_dict())
    x, spec = torch.randn(16, 2), SolveSpec("midpoint", steps=3)
    grads = []
    for model in (fast, slow):
        logits, _ = model(x, spec)
        grads.append(torch.autograd.grad(logits.square().sum(), list(model.parameters())))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def _cells(model: dict, n: int = 3, solver: str = "rk4", steps: int = 3, **training):
    tc = TrainingConfig(**{"iterations": 25, "batch_size": 32, "lr": 0.01, **training})
    return [CellConfig(dataset=DatasetConfig(name="sphere2", n_train=160, n_test=64),
                       model=ModelConfig(**model), training=tc, solver=solver, steps=steps, seed=s)
            for s in range(n)]


@pytest.mark.parametrize("model", [{"name": "ott_conv1d", "width": 8},
                                   {"name": "ott_conv1d", "width": 8, "time_input": True, "augment": 1},
                                   {"name": "mlp", "hidden": 16, "time_input": True}])
def test_seed_group_equals_separate_runs(model):
    group = _cells(model)
    datas = [load_data(c) for c in group]
    models = [build_model(c, d) for c, d in zip(group, datas)]
    assert all(can_stack(m) for m in models)
    outcomes = train_group(models, datas, [c.seed for c in group], group[0].train_spec, group[0].training)
    for cell, data, outcome in zip(group, datas, outcomes):
        alone = build_model(cell, data)
        ref = train_model(alone, data, cell.train_spec, cell.training, seed=cell.seed)
        assert outcome.status is ref.status and len(outcome.log) == len(ref.log) == 25
        for a, b in zip(outcome.log, ref.log):
            assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
            assert a["accuracy"] == b["accuracy"] and a["nfe"] == b["nfe"]
        for k, v in alone.state_dict().items():
            assert torch.allclose(outcome.state_dict[k], v, atol=1e-6), k
    # the seeds really differ: the group did not train one model three times
    assert not torch.equal(outcomes[0].state_dict["head.weight"], outcomes[1].state_dict["head.weight"])


def test_a_diverging_seed_stops_alone_as_in_its_own_run():
    group = _cells({"name": "ott_conv1d", "width": 8}, solver="euler", steps=2)
    datas = [load_data(c) for c in group]
    bad = datas[1].x_train.clone()
    bad[:, 0] = float("nan")  # seed 1's data makes its loss NaN at the first iteration
    datas[1] = dataclasses.replace(datas[1], x_train=bad)
    models = [build_model(c, d) for c, d in zip(group, datas)]
    outcomes = train_group(models, datas, [0, 1, 2], group[0].train_spec, group[0].training)
    for cell, data, outcome in zip(group, datas, outcomes):
        alone = build_model(cell, data)
        ref = train_model(alone, data, cell.train_spec, cell.training, seed=cell.seed)
        assert (outcome.status, outcome.message, len(outcome.log)) == (ref.status, ref.message, len(ref.log))
        for k, v in alone.state_dict().items():
            assert torch.allclose(outcome.state_dict[k], v, atol=1e-6, equal_nan=True), k
    assert outcomes[1].status.value == "diverged" and outcomes[0].status.value == "ok"


def test_plan_groups_only_cells_that_differ_by_seed_and_may():
    def plan(cs):
        return [members for members, _ in plan_training(cs, [], None, CPU)]

    fixed = _cells({"name": "ott_conv1d"}, n=3) + _cells({"name": "ott_conv1d"}, n=2, steps=4)
    assert plan(fixed) == [[0, 1, 2], [3, 4]]
    # every setting stacked training does not implement keeps its cells apart: fast off, adjoint,
    # step adaptation, amp, regularisation; so do adaptive training and non-stackable models
    for cs in (_cells({"name": "ott_conv1d"}, fast=False),
               _cells({"name": "ott_conv1d"}, gradient="adjoint"),
               _cells({"name": "ott_conv1d"}, solver="euler", adaptation={"mode": "step"}),
               _cells({"name": "ott_conv1d"}, amp=True),
               _cells({"name": "ott_conv1d"}, regularization={"kinetic": 1.0}),
               _cells({"name": "ott_conv1d", "fast": False}),
               _cells({"name": "cnf"})):  # a family declared not stackable (cannot run under vmap)
        assert plan(cs) == [[0], [1], [2]], cs[0].model_dump()
    # every other family stacks (torch.vmap where the field has no stacked form)
    for model in ({"name": "ott_conv2d", "width": 4}, {"name": "resnet_shared", "base": "mlp"}):
        assert plan(_cells(model, solver="euler")) == [[0, 1, 2]], model
    adaptive = [c.model_copy(update={"solver": "dopri5", "steps": None, "tol": 1e-3}) for c in fixed[:2]]
    assert plan(adaptive) == [[0], [1]]
    # the settings stacked training honours for any value do not: record_memory, lr, ...
    honoured = _cells({"name": "ott_conv1d"}, record_memory=False, lr=0.5, checkpoint_every=3)
    assert plan(honoured) == [[0, 1, 2]]


def test_record_memory_false_takes_effect_on_grouped_cells():
    """Last round's bug: the grouped path ignored record_memory (and logged no saved_mb at all)."""
    for record in (True, False):
        group = _cells({"name": "ott_conv1d", "width": 4}, n=2, solver="euler", steps=2, iterations=3,
                       record_memory=record, memory_every=1)
        assert stack_key(group[0]) is not None
        results = execution.run_cells(group, [], parse_suite(SUITE).reference)
        for result in results:
            saved = [row["saved_mb"] for row in result.log]
            assert (all(v is not None and v > 0 for v in saved) if record else all(v is None for v in saved))


def test_fast_is_one_switch_with_one_key_behaviour():
    """``training.fast: false`` and ``model.fast: false`` are one cell: the same key (not fast
    on's), the plain field, no seed stack; fast on keeps the key 0.1 gave it."""
    def cell(model=None, training=None):
        return cells(parse_suite({**SUITE, "model": {"name": "ott_conv1d", "width": 4, **(model or {})},
                                  "training": {**SUITE["training"], **(training or {})}}))[0]

    on, off, off_model = cell(), cell(training={"fast": False}), cell(model={"fast": False})
    assert off.key == off_model.key != on.key
    assert off.model_dump() == off_model.model_dump()  # the same config, however it is spelled
    data = load_data(on)
    assert build_model(on, data).block.field.fast and not build_model(off, data).block.field.fast
    assert stack_key(on) is not None and stack_key(off) is None and stack_key(off_model) is None
    mlp = {**SUITE, "model": {"name": "mlp", "hidden": 4}}
    mlp_on, mlp_off = (cells(parse_suite({**mlp, "training": {**SUITE["training"], "fast": f}}))[0]
                       for f in (True, False))
    assert mlp_on.key == mlp_off.key and stack_key(mlp_off) is None  # no speed switch: stacking only


SUITE = {
    "name": "fast-paths",
    "dataset": {"name": "sphere2", "n_train": 96, "n_test": 48},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 8, "batch_size": 32, "lr": 0.01},
    "train": {"seeds": [0, 1], "grid": [{"solver": "euler", "steps": [1, 2]}]},
    "test": [{"solver": "euler", "step_factors": [1, 2]}, {"solver": "dopri5", "tol": [1e-3]}],
}


def test_suite_tables_equal_with_fast_on_and_off(tmp_path, monkeypatch):
    groups = []
    real = execution.StackedForward
    monkeypatch.setattr(execution, "StackedForward", lambda models, *a, **k: groups.append(len(models))
                        or real(models, *a, **k))
    frames = {}
    for fast in (True, False):
        suite = parse_suite({**SUITE, "training": {**SUITE["training"], "fast": fast}})
        report = run_suite(suite, tmp_path / str(fast), progress=False)
        assert len(report.trained) == 4 and not report.failed
        frames[fast] = (pd.read_csv(tmp_path / str(fast) / "results.csv"),
                        pd.read_csv(tmp_path / str(fast) / "training.csv"))
    (res_on, log_on), (res_off, log_off) = frames[True], frames[False]
    assert len(res_on) == len(res_off) and not set(res_on["cell"]) & set(res_off["cell"])  # fast: keyed
    assert (res_on["accuracy"] - res_off["accuracy"]).abs().max() <= 1 / 48 + 1e-9
    assert (log_on["loss"] - log_off["loss"]).abs().max() < 1e-5
    assert groups == [2, 2]  # fast: each step count's two seeds trained as one group; plain: none


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compile_mode_reaches_torch_compile(mode, monkeypatch):
    from robustbench_ode.training.acceleration import prepare_model

    seen = {}
    model = MODELS.get("mlp")((2,), 2)
    monkeypatch.setattr(model.block.field, "compile", lambda **kw: seen.update(kw))
    prepare_model(model, TrainingConfig(compile=True, compile_mode=mode))
    assert seen == {"mode": mode}


def test_stacked_evaluation_equals_each_seeds_own_evaluation():
    """The seeds of a group are tested as one stacked model at the fixed-step points; every row
    equals the seed's own evaluation (up to float rounding), the adaptive ones included."""
    from robustbench_ode.config import ReferenceConfig, TestEntry
    from robustbench_ode.harness.evaluation import evaluate_points, evaluate_stacked
    from robustbench_ode.harness.grid import grid_points

    group = _cells({"name": "ott_conv1d", "width": 8}, solver="euler", steps=3)
    datas = [load_data(c) for c in group]
    models = [build_model(c, d) for c, d in zip(group, datas)]
    outcomes = train_group(models, datas, [c.seed for c in group], group[0].train_spec, group[0].training)
    for model, outcome in zip(models, outcomes):
        model.load_state_dict(outcome.state_dict)
    entries = [TestEntry(solver="euler", step_factors=[0.5, 1, 2, 8]), TestEntry(solver="rk4", steps=[2, 5]),
               TestEntry(solver="dopri5", tol=[1e-3])]
    points = grid_points(entries, ReferenceConfig(tol=1e-5), group[0].train_spec)
    stacked = evaluate_stacked(models, datas, points, 40)  # 64 test points: a partial last batch
    for model, data, rows in zip(models, datas, stacked):
        alone = evaluate_points(model, data, points, 40)
        assert len(rows) == len(alone) == len(points)
        for point, a, b in zip(points, rows, alone):
            assert set(a) == set(b), point
            for k in a:
                if k == "eval_seconds":
                    continue
                if isinstance(a[k], float):
                    assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6, nan_ok=True), (point, k)
                else:
                    assert a[k] == b[k], (point, k)
    # the seeds' rows differ: each seed was tested with its own parameters and data
    assert stacked[0][0]["loss"] != stacked[1][0]["loss"]
