"""The hand-derived backward of a fixed-step dense ReLU solve (solvers/dense_backward.py) equals
autograd's gradients through the package's own fixed-step loop, on every registered fixed-step
solver, for the Ott Conv1d field's dense fast path and for an MLP field."""

from __future__ import annotations

import pytest
import torch

from robustbench_ode.models.fields import MLP, OttConv1d
from robustbench_ode.solvers import SOLVERS
from robustbench_ode.solvers.dense_backward import dense_solve
from robustbench_ode.solvers.fixed import integrate

FIXED = [n for n in SOLVERS.names() if SOLVERS.get(n).tableau is not None and not SOLVERS.get(n).adaptive]


def ott_layers(field: OttConv1d, length: int):
    return list(field._dense_layers(length))  # noqa: SLF001 - the field's own dense matrices


def mlp_layers(field: MLP):
    return [(m.weight.t(), m.bias) for m in field.net if isinstance(m, torch.nn.Linear)]


def grads(loss, tensors):
    return torch.autograd.grad(loss, tensors)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize("family", ["ott_conv1d", "mlp"])
@pytest.mark.parametrize("name", FIXED)
def test_gradients_equal_autograd(name, family, dtype, tol):
    assert {"euler", "midpoint", "heun", "rk4", "rk4_38"} <= set(FIXED)
    torch.manual_seed(0)
    solver = SOLVERS.get(name)
    if family == "ott_conv1d":
        field = OttConv1d(1, 8).to(dtype)
        z0 = torch.randn(16, 1, 2, dtype=dtype)
        layers = ott_layers(field, 2)
    else:
        field = MLP(3, hidden=8, depth=2).to(dtype)
        z0 = torch.randn(16, 3, dtype=dtype)
        layers = mlp_layers(field)
    z0.requires_grad_(True)
    params = list(field.parameters())
    target = torch.randn(z0.shape, dtype=dtype)
    ref = integrate(solver, field, z0, (0.0, 1.0), steps=5).z
    ours = dense_solve(layers, z0.flatten(1), solver, 5).view_as(z0)
    assert torch.allclose(ours, ref, rtol=tol, atol=tol)
    expected = grads(((ref - target) ** 2).sum(), [z0, *params])
    got = grads(((ours - target) ** 2).sum(), [z0, *params])
    for e, g in zip(expected, got):
        assert torch.allclose(g, e, rtol=tol, atol=tol * max(1.0, float(e.abs().max())))


def test_a_solver_without_a_tableau_is_refused():
    field = MLP(2, hidden=4)
    with pytest.raises(ValueError, match="fixed-step"):
        dense_solve(mlp_layers(field), torch.zeros(3, 2), SOLVERS.get("dopri5"), 2)


@pytest.mark.parametrize("fast", [True, False])
def test_training_takes_the_hand_backward_behind_the_speed_switch(fast, monkeypatch):
    """With HAND_BACKWARD set, ODEBlock's fixed-step training solve goes through dense_solve where
    the fast path is on (training.fast: false turns it off), never under no_grad (tests) or with
    the adjoint; its gradients equal autograd's through the usual solve."""
    from robustbench_ode.models.classifier import ODEBlock
    from robustbench_ode.models.spec import SolveSpec
    from robustbench_ode.solvers import dense_backward

    assert dense_backward.HAND_BACKWARD is False  # off by default until measured faster
    monkeypatch.setattr(dense_backward, "HAND_BACKWARD", True)
    calls = []
    real = dense_backward.dense_solve
    monkeypatch.setattr(dense_backward, "dense_solve", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    block = ODEBlock(OttConv1d(1, 8, fast=fast)).double()
    z0 = torch.randn(8, 1, 2, dtype=torch.float64)
    z, stats = block(z0, SolveSpec("rk4_38", steps=3))
    assert len(calls) == int(fast) and stats.nfe == 12
    g = grads(z.square().sum(), list(block.parameters()))
    with torch.no_grad():
        block(z0, SolveSpec("rk4_38", steps=3))
    block(z0, SolveSpec("rk4_38", steps=3, adjoint=True))
    assert len(calls) == int(fast)
    ref = integrate(SOLVERS.get("rk4_38"), block.field, z0, (0.0, 1.0), steps=3).z
    assert torch.allclose(z, ref, atol=1e-12)
    for a, b in zip(g, grads(ref.square().sum(), list(block.parameters()))):
        assert torch.allclose(a, b, atol=1e-10)
