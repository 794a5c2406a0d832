"""The ResNet baselines: the discrete network is Euler at h = 1/N, separate weights become a
piecewise-constant-in-time field, blocks come from the train steps, and a suite may train them
only as Euler at N = blocks steps."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from robustbench_ode.cli import main
from robustbench_ode.config import DatasetConfig, ModelConfig, TrainingConfig, parse_suite
from robustbench_ode.core.status import Status
from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.harness.cell import CellConfig, cells
from robustbench_ode.harness.execution import run_cells
from robustbench_ode.harness.grouping import stack_key
from robustbench_ode.models import MODELS, PiecewiseField, SolveSpec
from robustbench_ode.models.stacked import can_stack
from robustbench_ode.solvers import SOLVERS

BASES = [{"base": "ott_conv1d", "width": 8},
         {"base": "ott_conv1d", "width": 8, "fast": False, "augment": 1},
         {"base": "mlp", "hidden": 8, "time_input": True}]  # time_input: the t_k passed must agree


@pytest.mark.parametrize("params", BASES, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("name", ["resnet_shared", "resnet"])
def test_discrete_network_equals_euler_at_n_steps(name, params):
    torch.manual_seed(0)
    model = MODELS.get(name)((2,), 2, blocks=5, **params)
    x = torch.randn(9, 2)
    model.train()
    discrete, stats = model(x, SolveSpec("rk4", steps=1))  # training mode: the spec is not used
    assert stats.nfe == stats.steps == 5 and stats.status is Status.OK
    model.eval()
    euler, _ = model(x, SolveSpec("euler", steps=5))
    assert torch.allclose(discrete, euler, atol=1e-6, rtol=0)
    # and the solve really is a different computation at another step count
    assert not torch.allclose(discrete, model(x, SolveSpec("euler", steps=10))[0], atol=1e-4)
    # gradients agree too: training the discrete net is training Euler at N steps
    model.train()
    g_discrete = torch.autograd.grad(model(x, None)[0].square().sum(), list(model.parameters()))
    model.eval()
    g_euler = torch.autograd.grad(euler.square().sum(), list(model.parameters()))
    for a, b in zip(g_discrete, g_euler):
        assert torch.allclose(a, b, atol=1e-5)


def test_separate_weights_made_identical_equal_the_shared_resnet():
    torch.manual_seed(1)
    shared = MODELS.get("resnet_shared")((2,), 2, blocks=4, width=8)
    separate = MODELS.get("resnet")((2,), 2, blocks=4, width=8)
    fields = separate.block.field.fields
    assert not torch.equal(fields[0].conv2.weight, fields[1].conv2.weight)  # separately initialised
    for f in fields:
        f.load_state_dict(shared.block.field.state_dict())
    separate.head.load_state_dict(shared.head.state_dict())
    x = torch.randn(11, 2)
    shared.train(), separate.train()
    assert torch.allclose(shared(x, None)[0], separate(x, None)[0], atol=1e-6)
    shared.eval(), separate.eval()
    for spec in (SolveSpec("rk4", steps=7), SolveSpec("dopri5", rtol=1e-6, atol=1e-6)):
        a, b = shared(x, spec)[0], separate(x, spec)[0]
        assert torch.allclose(a, b, atol=1e-5), spec.label()


class Constant(nn.Module):
    """f(t, z) = value everywhere: which block answered is read off the solution."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, t, z):
        return torch.full_like(z, self.value)


@pytest.mark.parametrize("n", [1, 3, 7, 10, 32])
def test_piecewise_field_picks_block_k_on_its_interval(n):
    field = PiecewiseField([Constant(k) for k in range(n)])
    for m in (n, 2 * n, 3 * n, 5 * n):
        h = 1.0 / m
        for i in range(m):
            want = i * n // m
            assert field.index(0.0 + i * h) == want, (n, m, i)  # as the fixed-step loop computes t
            # torchdiffeq's float32 grid
            assert field.index(torch.linspace(0.0, 1.0, m + 1)[i]) == want, (n, m, i)
            assert field.index(i * h + 0.5 * h) == want  # inside the block
    assert field.index(1.0) == n - 1  # t1 belongs to the last block
    assert field.index(torch.tensor(1.0)) == n - 1
    assert field(0.0, torch.zeros(2)).tolist() == [0.0, 0.0]


def test_what_higher_order_stages_see_at_a_boundary():
    """rk4 at N steps: the end-of-step stage of step n sees block n + 1 (the last step: block N-1)."""
    n = 4
    field = PiecewiseField([Constant(k) for k in range(n)])
    z0 = torch.zeros(1)
    euler = SOLVERS.get("euler").solve(field, z0, (0.0, 1.0), steps=n).z
    assert euler.item() == pytest.approx(sum(range(n)) / n)
    rk4 = SOLVERS.get("rk4").solve(field, z0, (0.0, 1.0), steps=n).z
    want = sum((5 * k + min(k + 1, n - 1)) / 6 for k in range(n)) / n
    assert rk4.item() == pytest.approx(want)
    # dopri5 resolves the jumps: the integral of the step function, sum_k k / N
    dopri = SOLVERS.get("dopri5").solve(field, z0, (0.0, 1.0), rtol=1e-7, atol=1e-7).z
    assert dopri.item() == pytest.approx(sum(range(n)) / n, abs=1e-4)  # rk4 is 0.125 off


def test_parameter_counts():
    shared = MODELS.get("resnet_shared")((2,), 2, blocks=6)
    separate = MODELS.get("resnet")((2,), 2, blocks=6)
    ode = MODELS.get("ott_conv1d")((2,), 2)

    def count(m):
        return sum(p.numel() for p in m.parameters())

    field = count(ode.block.field)
    assert count(shared) == count(ode)  # the same model, discretised
    assert count(separate.block.field) == 6 * field
    assert count(separate) == count(ode) + 5 * field


def test_base_parameters_are_checked():
    with pytest.raises(ValueError, match="model.hidden: not a parameter of base 'ott_conv1d'"):
        MODELS.get("resnet")((2,), 2, blocks=2, hidden=8)
    with pytest.raises(ValueError, match="blocks"):
        MODELS.get("resnet")((2,), 2)
    mlp = MODELS.get("resnet_shared")((2,), 2, blocks=2, base="mlp", hidden=5, depth=3, fast=False)
    assert [m.out_features for m in mlp.block.field.net if isinstance(m, nn.Linear)] == [5, 5, 5, 2]


SUITE = {
    "name": "resnet-tiny",
    "dataset": {"name": "sphere2", "n_train": 64, "n_test": 32},
    "model": {"name": "resnet", "width": 4},
    "training": {"iterations": 3, "batch_size": 32, "lr": 0.01},
    "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1, 3]}]},
    "test": [{"solver": "euler", "step_factors": [1, 2]}, {"solver": "dopri5", "tol": [1e-3]}],
    "reference": {"tol": 1e-3},  # the default 1e-7 costs seconds on a field with jumps in t
}


def test_blocks_are_filled_from_the_train_steps():
    """The suite's cells, run as the runner runs them (run_cells; the CLI adds only tables)."""
    suite = parse_suite(SUITE)
    assert suite.model[0].params["blocks"] is None
    for cell in cells(suite):
        model = build_model(cell, load_data(cell))
        assert model.blocks == cell.steps == len(model.block.field.fields)
        (result,) = run_cells([cell], suite.test, suite.reference)
        assert result.status is Status.OK
        # the discrete forward reports one evaluation per block: N blocks = the train steps
        assert [r["nfe"] for r in result.log] == [cell.steps] * 3
        assert sum(1 for k in result.record.weights.load() if k.endswith("conv1.weight")) == cell.steps
        rows = {(r["test_solver"], r["test_steps"]): r for r in result.rows}
        assert all(r["status"] == "ok" for r in result.rows)
        assert rows[("euler", 2 * cell.steps)]["nfe"] == 2 * cell.steps  # tested as an ODE
        assert rows[("euler", cell.steps)]["is_train_config"]


@pytest.mark.parametrize("change, key", [
    ({"train": {"seeds": [0], "grid": [{"solver": "rk4", "steps": [3]}]}}, "train.grid.0.solver"),
    ({"train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [2]},
                                       {"solver": "dopri5", "tol": [0.01]}]}}, "train.grid.1.solver"),
    ({"model": {"name": "resnet_shared", "blocks": 3}}, "train.grid.0.steps"),
    ({"model": {"name": "resnet", "hidden": 8}}, "model.hidden"),
    ({"training": {"iterations": 3, "adaptation": {"mode": "step"}}}, "training.adaptation"),
    ({"training": {"iterations": 3, "gradient": "adjoint"}}, "training.gradient"),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_resnet_trained_other_than_euler_at_blocks_steps_exits_2(tmp_path, capsys, change, key,
                                                                  command):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**SUITE, **change}))
    argv = [command, str(path)] + (["--out", str(tmp_path / "o")] if command == "run" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{key}:" in err, err
    assert not (tmp_path / "o").exists()


def test_blocks_equal_to_the_steps_is_accepted():
    suite = parse_suite({**SUITE, "model": {"name": "resnet_shared", "blocks": 3},
                         "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [3]}]}})
    assert suite.model[0].params["blocks"] == 3


def _cell(name="resnet_shared", seed=0, **kw):
    spec = {"solver": "euler", "steps": 2, **kw}
    return CellConfig(dataset=DatasetConfig(name="sphere2", n_train=64, n_test=32),
                      model=ModelConfig(name=name, width=4),
                      training=TrainingConfig(iterations=2, batch_size=32), seed=seed, **spec)


def test_seed_grouped_through_vmap_not_the_matmul_form():
    group = [_cell(seed=s) for s in range(3)]
    assert stack_key(group[0]) is not None and len({stack_key(c) for c in group}) == 1
    # resnet_shared's field is an OttConv1d, but its discrete loop is not the stacked classifier's
    # solve: the model class keeps it off the matmul form (it stacks through torch.vmap)
    assert not can_stack(build_model(group[0], load_data(group[0])))


def test_a_cell_without_steps_is_a_failed_status_not_a_crash():
    cell = _cell(name="resnet", solver="dopri5", steps=None, tol=1e-3)  # bypasses suite validation
    (result,) = run_cells([cell], [], parse_suite(SUITE).reference)
    assert result.status is Status.FAILED and "blocks" in result.record.message
