"""The log-determinants of a discrete solve and of the flow (robustbench_ode/diagnostics/logdet.py):
closed forms on linear fields, Liouville's formula where the explicit determinant underflows, and
gradients with respect to the field's parameters (the continuous normalising flows train on them)."""

from __future__ import annotations

import math

import pytest
import torch

import robustbench_ode as rb
from robustbench_ode.diagnostics import (
    discrete_log_det,
    flow_jacobians,
    liouville_log_det,
    slogdet,
    trace_jacobian,
)

F64 = torch.float64


class Linear(torch.nn.Module):
    def __init__(self, a, dtype=F64) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a, dtype=dtype))

    def forward(self, t, z):
        return z @ self.a.T


A = [[-1.0, 2.0], [-0.5, -0.3]]


def test_trace_jacobian_is_the_trace():
    f = Linear(A)
    z = torch.randn(5, 2, dtype=F64)
    fz, tr = trace_jacobian(f, 0.0, z)
    assert torch.allclose(fz, f(0.0, z)) and torch.allclose(tr, torch.full((5,), -1.3, dtype=F64))


@pytest.mark.parametrize("solver, steps", [("euler", 1), ("euler", 7), ("rk4", 3), ("midpoint", 2)])
def test_discrete_log_det_of_a_linear_field_is_the_closed_form(solver, steps):
    f = Linear(A)
    a, h = torch.tensor(A, dtype=F64), 1.0 / steps
    eye = torch.eye(2, dtype=F64)
    step = {"euler": eye + h * a, "midpoint": eye + h * a + (h * a) @ (h * a) / 2,
            "rk4": sum(torch.linalg.matrix_power(h * a, k) / math.factorial(k) for k in range(5))}[solver]
    z0 = torch.randn(6, 2, dtype=F64)
    with torch.no_grad():
        out = discrete_log_det(f, z0, solver, steps=steps)
    sign, log_abs = torch.linalg.slogdet(step)
    assert torch.allclose(out.step_log_abs, torch.full((6, steps), float(log_abs), dtype=F64), atol=1e-12)
    assert torch.allclose(out.log_abs, torch.full((6,), steps * float(log_abs), dtype=F64), atol=1e-12)
    assert (out.sign == float(sign) ** steps).all()
    assert torch.allclose(out.z, z0 @ torch.linalg.matrix_power(step, steps).T, atol=1e-12)


def test_an_euler_step_that_reflects_has_negative_sign():
    f = Linear([[-3.0, 0.0], [0.0, 0.0]])  # I + A = diag(-2, 1)
    with torch.no_grad():
        out = discrete_log_det(f, torch.randn(4, 2, dtype=F64), "euler", steps=1)
    assert (out.sign == -1).all() and torch.allclose(out.log_abs, torch.full((4,), math.log(2.0), dtype=F64))
    with torch.no_grad():  # two reflections make an orientation-preserving map of two folding steps
        two = discrete_log_det(Linear([[-6.0, 0.0], [0.0, 0.0]]), torch.randn(4, 2, dtype=F64), "euler",
                               steps=2)
    assert (two.step_sign == -1).all() and (two.sign == 1).all()


def test_liouville_is_the_trace_integral_where_the_explicit_determinant_fails():
    # dz/dt = 20 [[0, 1], [1, 0]] z over [0, 2]: a saddle, trace 0, so the flow's det is exactly 1;
    # its Jacobian [[cosh 40, sinh 40], [sinh 40, cosh 40]] has entries of 1e17, and det formed
    # from them (cosh^2 - sinh^2) cancels to 0 in float64: an explicit determinant calls the
    # flow singular, a fold. Liouville's integral of the trace is 0.
    f = Linear([[0.0, 20.0], [20.0, 0.0]])
    z0 = torch.randn(16, 2, dtype=F64)
    with torch.no_grad():
        _, j = flow_jacobians(f, z0, "dopri5", 0.0, 2.0, rtol=1e-7, atol=1e-7)
        sign, _ = slogdet(j)
        _, log_det = liouville_log_det(f, z0, (0.0, 2.0), rtol=1e-7)
    assert (sign <= 0).all()
    assert torch.allclose(log_det, torch.zeros(16, dtype=F64), atol=1e-12)
    # and a plain contraction: -40 I in float32 over [0, 1], log det -80
    g = Linear([[-40.0, 0.0], [0.0, -40.0]], dtype=torch.float32)
    with torch.no_grad():
        _, log_det = liouville_log_det(g, torch.randn(8, 2), (0.0, 1.0), rtol=1e-6)
    assert torch.allclose(log_det, torch.full((8,), -80.0), rtol=1e-5)


def test_liouville_matches_the_exact_flow_of_the_xor_fan():
    model = rb.MODELS.get("elliptic_fan")((2,), 2, w1=2.0, centre_x=0.5, centre_y=0.3, axis_ratio=1.5)
    f = model.block.field.double()
    z = torch.randn(6, 2, dtype=F64)
    with torch.no_grad():
        z1, log_det = liouville_log_det(f, z, (0.25, 0.75), rtol=1e-10)
    want = torch.autograd.functional.jacobian  # the closed form's Jacobian, sample by sample
    exact = torch.stack([torch.linalg.slogdet(want(lambda x: f.exact_flow(x[None], 0.25, 0.75)[0], zi))[1]
                         for zi in z])
    assert torch.allclose(z1, f.exact_flow(z, 0.25, 0.75), atol=1e-8)
    assert torch.allclose(log_det, exact, atol=1e-7)


def test_the_log_dets_are_differentiable_in_the_parameters():
    torch.manual_seed(0)
    model = rb.MODELS.get("mlp")((2,), 2, hidden=8, activation="tanh").double()
    f = model.block.field
    z0 = torch.randn(5, 2, dtype=F64)
    p = next(f.parameters())

    def value(kind):
        if kind == "discrete":
            return discrete_log_det(f, z0, "euler", steps=3).log_abs.sum()
        return liouville_log_det(f, z0, (0.0, 1.0), rtol=1e-10)[1].sum()

    for kind in ("discrete", "liouville"):
        (grad,) = torch.autograd.grad(value(kind), p)
        e = torch.zeros_like(p)
        e.view(-1)[0] = 1e-6
        with torch.no_grad():
            p += e
            plus = value(kind)
            p -= 2 * e
            minus = value(kind)
            p += e
        assert grad.view(-1)[0].item() == pytest.approx(((plus - minus) / 2e-6).item(), rel=1e-4, abs=1e-8)
