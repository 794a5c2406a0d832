"""Solvers against ODEs with known solutions: order of convergence, step grid, counters, statuses."""

import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import robustbench_ode as rb
from robustbench_ode import SOLVERS, Status
from robustbench_ode.solvers import Kind


def installed(names):
    """The registry's solvers as parameters; those whose backend is not installed here (torchode
    is optional) are skipped with the install hint as the reason."""
    return [pytest.param(n, marks=pytest.mark.skipif(SOLVERS.get(n).missing() is not None,
                                                     reason=SOLVERS.get(n).missing() or ""))
            for n in names]


REAL_SOLVERS = installed([n for n in SOLVERS.names() if hasattr(SOLVERS.get(n), "order")
                          and SOLVERS.get(n).order > 0])


def oscillator(t, z):
    return torch.stack([z[..., 1], -z[..., 0]], -1)


def gaussian(t, z):  # non-autonomous: exercises the nodes c of the tableau
    return -2.0 * t * z


# (name, f, z0, t_span, exact z(t1))
KNOWN_SOLUTIONS = [
    ("oscillator", oscillator, [1.0, 0.0], (0.0, 4.0), [math.cos(4.0), -math.sin(4.0)]),
    ("gaussian", gaussian, [1.0], (0.0, 2.0), [math.exp(-4.0)]),
]


def _start_steps(order: int) -> int:
    # coarse enough that the error stays far above float64 rounding for high orders
    return {1: 32, 2: 32, 3: 16, 4: 16, 5: 8}.get(order, 4)


@pytest.mark.parametrize("problem", KNOWN_SOLUTIONS, ids=lambda p: p[0])
@pytest.mark.parametrize("name", REAL_SOLVERS)
def test_observed_order_of_convergence(name, problem):
    _, f, z0, t_span, exact = problem
    solver = SOLVERS.get(name)
    z0, exact = torch.tensor(z0, dtype=torch.float64), torch.tensor(exact, dtype=torch.float64)
    n = _start_steps(solver.order)
    errors = [(rb.solve(f, z0, name, steps=m, t_span=t_span).z - exact).norm().item()
              for m in (n, 2 * n, 4 * n)]
    observed = math.log2(errors[1] / errors[2])
    assert solver.order - 0.35 <= observed <= solver.order + 1.2, (errors, observed)


@pytest.mark.parametrize("name", [n for n in SOLVERS.names()
                                  if SOLVERS.get(n).kind is Kind.FIXED])
def test_fixed_step_takes_exactly_n_equal_steps(name):
    solver = SOLVERS.get(name)
    times = []

    def f(t, z):
        times.append(float(t))
        return -z

    sol = rb.solve(f, torch.ones(3, dtype=torch.float64), name, steps=7, t_span=(0.2, 0.5))
    assert sol.stats.nfe == len(times) == 7 * solver.stages
    assert sol.stats.steps == 7 and sol.stats.status is Status.OK
    first_stage_times = times[:: solver.stages]
    h = 0.3 / 7
    assert first_stage_times == pytest.approx([0.2 + k * h for k in range(7)], abs=1e-15)
    assert max(times) <= 0.5 + 1e-15


@pytest.mark.parametrize("name", installed([n for n in SOLVERS.names() if SOLVERS.get(n).adaptive]))
def test_adaptive_counters_and_accuracy(name):
    z0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    exact = torch.tensor([math.cos(4.0), -math.sin(4.0)], dtype=torch.float64)
    loose = rb.solve(oscillator, z0, name, rtol=1e-3, atol=1e-3, t_span=(0.0, 4.0))
    tight = rb.solve(oscillator, z0, name, rtol=1e-7, atol=1e-7, t_span=(0.0, 4.0))
    for sol in (loose, tight):
        assert sol.status is Status.OK
        assert sol.stats.accepted == sol.stats.steps > 0
        assert sol.stats.rejected >= 0
        assert sol.stats.nfe >= sol.stats.steps
    assert tight.stats.nfe > loose.stats.nfe
    assert (tight.z - exact).norm() < (loose.z - exact).norm()
    assert (tight.z - exact).norm() < 1e-4


def test_adaptive_max_steps_is_a_status():
    sol = rb.solve(oscillator, torch.tensor([1.0, 0.0]), "dopri5", rtol=1e-10, max_steps=3,
                   t_span=(0.0, 10.0))
    assert sol.status is Status.MAX_STEPS
    assert torch.isnan(sol.z).all()


@pytest.mark.parametrize("name", ["euler", "rk4", "dopri5"])
def test_non_finite_is_a_status(name):
    kw = {"steps": 4} if not SOLVERS.get(name).adaptive else {"rtol": 1e-3}
    sol = rb.solve(lambda t, z: z * float("nan"), torch.ones(2), name, **kw)
    assert sol.status is Status.NON_FINITE


def test_fixed_step_rejects_tolerances_and_adaptive_needs_them():
    with pytest.raises(ValueError):
        rb.solve(oscillator, torch.ones(2), "euler", rtol=1e-3)
    with pytest.raises(ValueError):
        rb.solve(oscillator, torch.ones(2), "dopri5")


@pytest.mark.parametrize("name", ["euler", "midpoint", "rk4_38", "dopri5"])
def test_adjoint_gradient_matches_backprop(name):
    # The adjoint integrates the continuous adjoint ODE, so for a fixed-step solver it matches the
    # exact gradient of the discrete map only up to the discretisation error: fine grid, loose tol.
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 3).double()
    z0 = torch.randn(5, 3, dtype=torch.float64)
    solver = SOLVERS.get(name)
    kw = {"rtol": 1e-9, "atol": 1e-9} if solver.adaptive else {"steps": 200}
    tol = 1e-6 if solver.adaptive else 0.05 / 200 ** (solver.order - 1) + 1e-6
    grads = []
    for adjoint in (False, True):
        lin.zero_grad()
        with warnings.catch_warnings():
            # e.g. torchdiffeq's "Solver 'euler' does not support callbacks" for a fixed-step
            # solve handed a field that declares adaptive-step callbacks
            warnings.simplefilter("error")
            sol = rb.solve(lambda t, z: torch.tanh(lin(z)), z0, name, adjoint=adjoint, **kw) \
                if not adjoint else rb.solve(_Field(lin), z0, name, adjoint=True, **kw)
            sol.z.square().sum().backward()
        grads.append(lin.weight.grad.clone())
    assert grads[0].abs().max() > 1e-2  # a real gradient, not zeros on both sides
    assert torch.allclose(grads[0], grads[1], atol=tol, rtol=tol)


class _Field(torch.nn.Module):
    def __init__(self, lin):
        super().__init__()
        self.lin = lin

    def forward(self, t, z):
        return torch.tanh(self.lin(z))


# --- adaptive solvers against scipy's embedded pairs (the end state is the method's own) ---------

def _linear_3d():
    a = torch.tensor([[-0.5, 2.0, 0.0], [-2.0, -0.5, 0.3], [0.0, -0.3, -1.0]], dtype=torch.float64)
    z0 = torch.tensor([1.0, 0.5, -0.3], dtype=torch.float64)
    return (lambda t, z: z @ a.T), (lambda t, z: a.numpy() @ z), z0, torch.linalg.matrix_exp(a) @ z0


def _growth():
    # dz/dt = cos(t) z: non-autonomous, z(t) = z0 exp(sin t)
    z0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    return (lambda t, z: torch.cos(t) * z), (lambda t, z: math.cos(t) * z), z0, z0 * math.exp(math.sin(1.0))


# scipy's counterpart of each adaptive pair; the order-2 pairs and Tsit5 have none there
SCIPY_PAIRS = {"bosh3": "RK23", "dopri5": "RK45", "dopri8": "DOP853", "dopri5_torchode": "RK45"}
ADAPTIVE = installed([n for n in SOLVERS.names() if SOLVERS.get(n).adaptive])


@pytest.mark.parametrize("tol", [1e-6, 1e-8])
@pytest.mark.parametrize("problem", [_linear_3d, _growth], ids=["linear3d", "growth"])
@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptive_end_state_is_the_methods_own(name, problem, tol):
    """At rtol = atol = tol the global error is within a small factor of scipy's same pair (which
    ends on t1 with the method's own step). Before the end point was landed on, bosh3 and dopri8
    returned their 4th-order interpolant past t1: 30x and 1400x scipy's error at 1e-8."""
    scipy_integrate = pytest.importorskip("scipy.integrate")
    f, f_np, z0, exact = problem()
    sol = rb.solve(f, z0, name, rtol=tol, atol=tol)
    assert sol.status is Status.OK
    err = (sol.z - exact).norm().item()
    pair = SCIPY_PAIRS.get(name)
    if pair is None:
        # no scipy pair: the order-2 methods' own error at this tolerance, a loose proportional bound
        assert err < 2000 * tol, err
        return
    ref = scipy_integrate.solve_ivp(f_np, (0.0, 1.0), z0.numpy(), method=pair, rtol=tol, atol=tol)
    scipy_err = float(torch.linalg.norm(torch.as_tensor(ref.y[:, -1]) - exact))
    assert err <= 5 * scipy_err + 1e-13, (err, scipy_err)


# --- solver metadata: adjoint, step controls, optional backends -----------------------------------

def test_metadata_declares_adjoint_controls_and_backend():
    for name in SOLVERS.names():
        solver = SOLVERS.get(name)
        assert "batch" in solver.controls, name
        if solver.backend == "torchode":
            assert solver.adaptive and solver.adjoint and solver.controls == ("batch", "per_sample")
            assert solver.requires == "torchode" and solver.method
        elif solver.torchdiffeq_method is not None:
            assert solver.adjoint and solver.controls == ("batch",)
    assert not SOLVERS.get("rk4").adjoint and not SOLVERS.get("exact").adjoint


@pytest.mark.parametrize("name", ["dopri5", "euler"])
def test_per_sample_control_is_refused_where_the_backend_has_none(name):
    kw = {"rtol": 1e-3} if SOLVERS.get(name).adaptive else {"steps": 2}
    with pytest.raises(ValueError, match="supports only batch step control") as err:
        rb.solve(oscillator, torch.ones(2, 2), name, control="per_sample", **kw)
    assert "\n" not in str(err.value)


WITHOUT_TORCHODE = """
import sys
sys.modules['torch'] = None            # neither torch ...
sys.modules['torchode'] = None         # ... nor torchode can be imported
import robustbench_ode
from robustbench_ode.cli import main
from robustbench_ode.solvers import SOLVERS
solver = SOLVERS.get('tsit5')
assert solver.backend == 'torchode' and 'pip install torchode' in solver.missing()
assert SOLVERS.get('dopri5').missing() is None
assert main(['list', 'solvers']) == 0
assert main(['validate', sys.argv[1]]) == 2
"""


def test_the_catalog_needs_neither_torch_nor_torchode(tmp_path):
    """Without torchode the torchode solvers are still listed (backend column, 'not installed
    here'); a suite naming one is refused in one line, exit 2."""
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ndataset: {name: sphere2}\nmodel: {name: mlp}\n"
                     "train: {grid: [{solver: euler, steps: [2]}]}\ntest: [{solver: tsit5, tol: [0.001]}]\n")
    out = subprocess.run([sys.executable, "-c", WITHOUT_TORCHODE, str(suite)], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.strip().startswith("tsit5"))
    assert "torchode" in line and "not installed here" in line
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "test.0.solver" in err[0] and "pip install torchode" in err[0], err


def test_a_solve_without_torchode_is_a_one_line_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchode", None)
    with pytest.raises(ImportError, match="pip install torchode") as err:
        rb.solve(oscillator, torch.ones(2), "tsit5", rtol=1e-3)
    assert "\n" not in str(err.value)


def test_endpoint_study_landing_costs_no_nfe_and_fixes_bosh3_and_dopri8():
    """robustbench_ode.studies.endpoint (docs/solvers.md): landing on t1 takes the same field
    calls and is 10x or more closer to the known solution for the pairs whose interpolant is
    of lower order; the adjoint's gradient follows."""
    from robustbench_ode.studies import endpoint

    for method in ("bosh3", "dopri8"):
        past, nfe_past, _ = endpoint.solve(method, 1e-8, land=False)
        land, nfe_land, _ = endpoint.solve(method, 1e-8, land=True)
        assert nfe_land == nfe_past and land * 10 < past, (method, past, land)
        _, _, grad_land = endpoint.solve(method, 1e-8, land=True, adjoint=True)
        assert grad_land < 1e-7, (method, grad_land)


def test_adjoint_gradient_study_on_a_run(tmp_path, capsys):
    """robustbench_ode.studies.adjoint_gradient (docs/reproductions.md, adjoint training): on a
    tiny run, a row per trained Euler model; the rk4 control recovers z(0); a folder without a
    cell store is a one-line usage error (exit 2)."""
    from robustbench_ode.config import parse_suite
    from robustbench_ode.run.runner import run_suite
    from robustbench_ode.studies import adjoint_gradient

    suite = parse_suite({
        "name": "tiny", "dataset": {"name": "sphere2", "n_train": 96, "n_test": 48},
        "model": {"name": "ott_conv1d", "width": 4},
        "training": {"iterations": 30, "batch_size": 32, "lr": 0.05},
        "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1, 4]}]},
        "test": [{"solver": "euler", "steps": [4]}]})
    run_suite(suite, tmp_path / "run", progress=False)
    rows = adjoint_gradient.study(tmp_path / "run", seed=0, samples=64)
    assert [r["steps"] for r in rows] == [1, 4]
    for r in rows:
        assert -1.0 <= r["cos"] <= 1.0 and r["norm_autograd"] > 0 and r["norm_adjoint"] > 0
        assert r["recovered_rk4_512"] < 1e-4  # the flow itself is invertible
        assert r["recovered_train"] > r["recovered_rk4_512"]  # Euler backwards is not
    adjoint_gradient.main([str(tmp_path / "run"), "--samples", "64"])
    assert capsys.readouterr().out.count("| sphere2/") == 2
    with pytest.raises(SystemExit) as exc:
        adjoint_gradient.main([str(tmp_path)])
    assert exc.value.code == 2
