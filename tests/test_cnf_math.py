"""Known answers for the density task's math (models/trace.py, models/cnf.py,
diagnostics/discrete_map.py, diagnostics/density.py): the exact trace and Hutchinson's estimate
on a linear field, a linear flow's log-likelihood against its closed form, the discrete map's
log-determinant against the methods' stability polynomials, folds, the mass of a density on the
2-D window, sampling and the energy distance."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robustbench_ode import SOLVERS
from robustbench_ode.diagnostics.density import energy_distance, log_density_grid, window_mass
from robustbench_ode.diagnostics.discrete_map import discrete_log_likelihood
from robustbench_ode.diagnostics.logdet import discrete_log_det
from robustbench_ode.models import SolveSpec
from robustbench_ode.models.cnf import CNF, cnf, standard_normal_logprob
from robustbench_ode.models.trace import ExactTrace, Hutchinson, draw_probes
from robustbench_ode.solvers import solve

A3 = torch.tensor([[0.3, -1.2, 0.5], [0.8, -0.4, 0.1], [-0.6, 0.2, 0.7]], dtype=torch.float64)


class Linear(nn.Module):
    """f(t, z) = z A^T, so df/dz = A everywhere."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.clone())

    def forward(self, t, z):
        return z @ self.a.T


def _linear_cnf(a: torch.Tensor, trace: str = "exact") -> CNF:
    est = ExactTrace() if trace == "exact" else Hutchinson("rademacher")
    return CNF(Linear(a), a.shape[0], est, est).double()


def _estimates(estimator, a, n, probes=1, noise="gaussian", seed=0):
    """n independent estimates (one per row of a batch) of tr(A) and ||A||_F^2."""
    z = torch.zeros(n, a.shape[0], dtype=torch.float64, requires_grad=True)
    f = z @ a.T
    e = draw_probes(noise, probes, z, torch.Generator().manual_seed(seed))
    return estimator(f, z, e, False)


def test_exact_trace_and_frobenius_of_a_linear_field():
    trace, frob = _estimates(ExactTrace(), A3, 5)
    assert torch.allclose(trace, torch.trace(A3).expand(5))
    assert torch.allclose(frob, A3.pow(2).sum().expand(5))


@pytest.mark.parametrize("noise", ["gaussian", "rademacher"])
def test_hutchinson_is_unbiased_with_the_known_variance(noise):
    """E[e^T A e] = tr A; Var = 2 ||A_s||_F^2 (Gaussian), 2 (||A_s||_F^2 - sum A_ii^2)
    (Rademacher), A_s = (A + A^T) / 2; E ||e^T A||^2 = ||A||_F^2."""
    n = 20_000
    trace, frob = _estimates(Hutchinson(noise), A3, n, noise=noise)
    sym = (A3 + A3.T) / 2
    variance = 2 * sym.pow(2).sum() - (2 * torch.diag(A3).pow(2).sum() if noise == "rademacher" else 0)
    se = math.sqrt(float(variance) / n)
    assert abs(float(trace.mean() - torch.trace(A3))) < 4 * se
    assert float(trace.var()) == pytest.approx(float(variance), rel=0.06)
    assert float(frob.mean()) == pytest.approx(float(A3.pow(2).sum()), rel=0.03)
    exact, _ = _estimates(ExactTrace(), A3, 1)
    assert float(exact) == pytest.approx(float(torch.trace(A3)))


def test_hutchinsons_variance_shrinks_with_the_probe_count():
    one, _ = _estimates(Hutchinson(), A3, 8000, probes=1, seed=1)
    many, _ = _estimates(Hutchinson(), A3, 8000, probes=16, seed=2)
    assert abs(float(many.mean() - torch.trace(A3))) < 4 * math.sqrt(float(one.var()) / 16 / 8000)
    assert 12 < float(one.var() / many.var()) < 21  # 16 in expectation


def test_a_linear_flows_log_likelihood_is_the_closed_form():
    """z(T) = exp(A T) x and a(T) = -T tr A, so log p(x) = log N(exp(AT) x) + T tr A."""
    model = _linear_cnf(A3).eval()
    x = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        s, stats = model.final_state(x, SolveSpec("dopri5", rtol=1e-10, atol=1e-10))
    expected = standard_normal_logprob(x @ torch.linalg.matrix_exp(A3).T) + torch.trace(A3)
    assert torch.allclose(model.log_likelihood(s), expected, atol=1e-7)
    assert torch.allclose(model.logits(s), -expected / 3, atol=1e-7)
    assert stats.nfe > 0


def _stability(order: int, x: torch.Tensor) -> torch.Tensor:
    """sum_{k <= order} X^k / k!: the stability function of an explicit RK method with as many
    stages as its order (Euler, midpoint, Heun, RK4, the 3/8 rule)."""
    out, term = torch.eye(len(x), dtype=x.dtype), torch.eye(len(x), dtype=x.dtype)
    for k in range(1, order + 1):
        term = term @ x / k
        out = out + term
    return out


FIXED = [n for n in SOLVERS.names() if SOLVERS.get(n).kind.value == "fixed"]


@pytest.mark.parametrize("steps", [1, 3, 10])
@pytest.mark.parametrize("solver", FIXED)
def test_the_discrete_maps_log_det_is_the_stability_polynomials(solver, steps):
    s = SOLVERS.get(solver)
    assert s.stages == s.order  # the closed form below holds for these methods
    field = Linear(A3)
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    dm = discrete_log_det(field, x, solver, steps=steps)
    r = _stability(s.order, A3 / steps)
    sign, logabs = torch.linalg.slogdet(r)
    assert torch.allclose(dm.log_abs, steps * logabs.expand(8), atol=1e-10)
    assert bool((dm.step_sign == sign).all()) and not bool(dm.folded.any())
    with torch.no_grad():
        z = solve(field, x, solver, steps=steps).z
    assert torch.allclose(dm.z, z, atol=1e-12)  # the map is the solve
    assert torch.allclose(dm.z, x @ torch.linalg.matrix_power(r, steps).T, atol=1e-10)


def test_a_field_that_folds_at_a_coarse_step_is_flagged():
    """f = diag(-3, 1) z: one Euler step of h = 1 has det (1 - 3)(1 + 1) = -4 < 0 (a fold),
    eight steps do not fold, nor does one RK4 step (R(-3) = 1.375)."""
    field = Linear(torch.diag(torch.tensor([-3.0, 1.0], dtype=torch.float64)))
    x = torch.randn(6, 2, dtype=torch.float64)
    coarse = discrete_log_det(field, x, "euler", steps=1)
    assert bool(coarse.folded.all())
    assert torch.allclose(coarse.log_abs, torch.full((6,), math.log(4.0), dtype=torch.float64))
    assert not bool(discrete_log_det(field, x, "euler", steps=8).folded.any())
    assert not bool(discrete_log_det(field, x, "rk4", steps=1).folded.any())


def test_a_nonlinear_fold_is_flagged_exactly_where_it_happens():
    """f = -4 tanh(z) in 1-D: one Euler step has derivative 1 - 4 sech^2(x), negative exactly
    for |x| < acosh(2)."""
    field = lambda t, z: -4 * torch.tanh(z)
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)[:, None]
    dm = discrete_log_det(field, x, "euler", steps=1)
    inside = x[:, 0].abs() < math.acosh(2.0)
    assert torch.equal(dm.folded, inside) and 0 < int(inside.sum()) < 61
    assert torch.allclose(dm.log_abs, torch.log((1 - 4 / torch.cosh(x[:, 0]) ** 2).abs()))


def test_the_discrete_maps_likelihood_against_the_solvers_report():
    """Euler on f = A z reports a(T) = -T tr A exactly (the trace is constant), but the map's
    log-det is N log|det(I + A / N)|: the two likelihoods differ by exactly that."""
    model = _linear_cnf(A3)
    x = torch.randn(16, 3, dtype=torch.float64)
    n = 4
    logp, dm = discrete_log_likelihood(model, x, "euler", n)
    with torch.no_grad():
        s, _ = model.eval().final_state(x, SolveSpec("euler", steps=n))
    reported = model.log_likelihood(s)
    assert torch.allclose(s[:, :3], dm.z, atol=1e-12)
    gap = n * torch.linalg.slogdet(torch.eye(3, dtype=torch.float64) + A3 / n)[1] - torch.trace(A3)
    assert torch.allclose(logp - reported, gap.expand(16), atol=1e-10)


def test_a_flows_density_integrates_to_one_on_the_window_under_the_reference():
    torch.manual_seed(3)
    model = cnf((2,), 0, hidden=16, depth=2)
    with torch.no_grad():  # a field strong enough to bend the density visibly
        model.velocity.net[-1].weight.mul_(4.0)
    logp, area, stats = log_density_grid(model, SolveSpec("dopri5", rtol=1e-6, atol=1e-6), n=60)
    assert stats.status.ok and logp.shape == (60, 60)
    base = standard_normal_logprob(torch.zeros(1, 2, dtype=torch.float64))
    assert float((logp - base).abs().max()) > 0.5  # not the base Gaussian itself
    assert window_mass(logp, area) == pytest.approx(1.0, abs=0.01)


def test_samples_of_a_linear_flow_have_the_closed_form_covariance():
    """x = exp(-A T) z with z ~ N(0, I): covariance exp(-A) exp(-A)^T."""
    model = _linear_cnf(A3 * 0.5)
    x, stats = model.sample(20_000, SolveSpec("rk4", steps=32), torch.Generator().manual_seed(0))
    m = torch.linalg.matrix_exp(-A3 * 0.5)
    assert stats.status.ok
    assert torch.allclose(torch.cov(x.T.double()), m @ m.T, atol=0.05)


def test_energy_distance_known_values():
    gen = torch.Generator().manual_seed(0)
    assert energy_distance(torch.zeros(5, 1), torch.ones(7, 1)) == pytest.approx(2.0)
    x, y = torch.randn(3000, 1, generator=gen), torch.randn(3000, 1, generator=gen)
    assert abs(energy_distance(x, y)) < 0.01
    # N(0, 1) against N(mu, 1): 2 E|X - Y| - E|X - X'| - E|Y - Y'|, X - Y ~ N(-mu, 2)
    mu, s = 1.0, math.sqrt(2.0)
    e_xy = s * math.sqrt(2 / math.pi) * math.exp(-mu**2 / (2 * s**2)) + mu * math.erf(mu / (s * math.sqrt(2)))
    expected = 2 * e_xy - 2 * (2 / math.sqrt(math.pi))
    assert energy_distance(x, y + mu) == pytest.approx(expected, abs=0.02)


def test_a_flows_samples_energy_distance_is_near_0_for_its_own_density_and_grows_with_a_shift():
    """A linear flow x = exp(-A T) z: held-out draws of that Gaussian give about 0 (scipy's
    energy_distance, 1-D only, agrees on the first coordinate's marginal), a shifted set more."""
    from scipy.stats import energy_distance as scipy_energy_distance

    from robustbench_ode.diagnostics.density import sample_energy_distance

    model = _linear_cnf(A3 * 0.5)
    m = torch.linalg.matrix_exp(-A3 * 0.5)
    held_out = torch.randn(2000, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64) @ m.T
    spec = SolveSpec("rk4", steps=32)
    same, stats = sample_energy_distance(model, spec, held_out, seed=1)
    shifted, _ = sample_energy_distance(model, spec, held_out + 1.0, seed=1)
    assert stats.status.ok and abs(same) < 0.01 and shifted > 0.5
    samples, _ = model.sample(2000, spec, torch.Generator().manual_seed(1))
    # scipy's is the square root of 2E|X-Y| - E|X-X'| - E|Y-Y'| (V-statistics, 1-D only)
    ours = energy_distance(samples[:, :1], held_out[:, :1] + 1.0)
    assert math.sqrt(ours) == pytest.approx(
        scipy_energy_distance(samples[:, 0].numpy(), held_out[:, 0].numpy() + 1.0), rel=0.02)


def test_the_flows_discrete_log_det_is_the_fold_tests_one_implementation():
    """diagnostics/discrete_map.py computes no Jacobian itself: its log-det is logdet.py's, the
    one the classifier fold test steps through (diagnostics/pieces.py)."""
    import robustbench_ode.diagnostics.discrete_map as discrete_map_module
    from robustbench_ode.diagnostics import logdet

    assert not hasattr(discrete_map_module, "step_jacobians")
    model = _linear_cnf(A3)
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    _, dm = discrete_log_likelihood(model, x, "midpoint", 3)
    direct = logdet.discrete_log_det(model.velocity, x, "midpoint", steps=3)
    assert isinstance(dm, logdet.DiscreteLogDet)
    assert torch.equal(dm.step_log_abs, direct.step_log_abs) and torch.equal(dm.folded, direct.folded)
