"""Regularised dynamics: the integrals ride along with the state and equal their closed forms."""

import copy
import math

import pytest
import torch
from torch import nn

from robustbench_ode.config import RegularizationConfig, parse_suite
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.models import ODEClassifier, SolveSpec
from robustbench_ode.training.forward import regularized_forward

A = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)


class Diagonal(nn.Module):
    """dz/dt = a * z: z(t) = z0 exp(a t), so both integrals have closed forms."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(A.clone())

    def forward(self, t, z):
        return self.a * z


def _model() -> ODEClassifier:
    return ODEClassifier(nn.Identity(), Diagonal(), nn.Identity())


def test_integrals_match_their_closed_forms():
    z0 = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.1, -1.0]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(7), dtype=z0.dtype)
    cfg = RegularizationConfig(kinetic=1.0, jacobian=1.0)
    logits, stats, logged, penalty = regularized_forward(
        _model(), z0, SolveSpec("dopri5", rtol=1e-10, atol=1e-10), cfg, gen)
    # kinetic: sum_i a_i z0_i^2 (exp(2 a_i) - 1) / 2; Jacobian: sum_i eps_i^2 a_i^2 (constant in t)
    kinetic = (A * z0.pow(2) * (torch.exp(2 * A) - 1) / 2).sum(1).mean()
    jacobian = (eps.pow(2) * A.pow(2)).sum(1).mean()
    assert logged["kinetic"] == pytest.approx(float(kinetic), rel=1e-7)
    assert logged["jacobian"] == pytest.approx(float(jacobian), rel=1e-7)
    assert float(penalty.detach()) == pytest.approx(float(kinetic + jacobian), rel=1e-7)
    assert torch.allclose(logits, z0 * torch.exp(A), rtol=1e-8)  # the state itself is unchanged
    assert stats.status.value == "ok"


def test_hutchinson_estimates_the_frobenius_norm():
    z0 = torch.ones(4000, 3, dtype=torch.float64)
    cfg = RegularizationConfig(jacobian=1.0)
    _, _, logged, _ = regularized_forward(_model(), z0, SolveSpec("euler", steps=2), cfg,
                                          torch.Generator().manual_seed(0))
    assert logged["jacobian"] == pytest.approx(float(A.pow(2).sum()), rel=0.05)
    assert logged["kinetic"] > 0


@pytest.mark.parametrize("solver, kw", [("euler", {"steps": 4}), ("rk4", {"steps": 4}),
                                        ("dopri5", {"rtol": 1e-6, "atol": 1e-6})])
def test_penalty_gradients_reach_the_field(solver, kw):
    model = _model()
    z0 = torch.randn(5, 3, dtype=torch.float64)
    cfg = RegularizationConfig(kinetic=0.0, jacobian=1.0)
    _, _, _, penalty = regularized_forward(model, z0, SolveSpec(solver, **kw), cfg,
                                           torch.Generator().manual_seed(1))
    penalty.backward()
    # d/da of sum eps^2 a^2 is 2 a eps^2: nonzero for every component
    assert (model.block.field.a.grad.abs() > 0).all()
    assert math.isfinite(float(penalty.detach()))


BASE = {"name": "r", "dataset": {"name": "sphere2", "n_train": 64, "n_test": 32},
        "model": {"name": "ott_conv1d", "width": 8},
        "training": {"iterations": 3, "batch_size": 16, "regularization": {"kinetic": 0.5}},
        "train": {"grid": [{"solver": "euler", "steps": [2]}]}, "test": [{"solver": "rk4", "steps": [4]}]}


def test_regularised_training_logs_penalties_and_leaves_unset_keys_alone():
    from robustbench_ode.harness.cell import cells
    from robustbench_ode.harness.execution import run_cells

    suite = parse_suite(copy.deepcopy(BASE))
    cell = cells(suite)[0]
    (result,) = run_cells([cell], suite.test, suite.reference)
    assert result.status.value == "ok"
    last = result.log[-1]
    assert last["loss"] == pytest.approx(last["task_loss"] + 0.5 * last["kinetic"], rel=1e-5)
    plain = copy.deepcopy(BASE)
    plain["training"].pop("regularization")
    assert "regularization" not in cells(parse_suite(plain))[0].model_dump()["training"]


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["training"]["regularization"].update(kinetic=-1), "training.regularization.kinetic"),
    (lambda d: d["training"]["regularization"].update(frobenius=1), "regularization.frobenius: unknown key"),
    (lambda d: d.update(model={"name": "resnet"}), "training.regularization: resnet trains as discrete"),
])
def test_bad_regularisation_names_the_key(mutate, expected):
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(SuiteError, match=expected):
        parse_suite(data)
