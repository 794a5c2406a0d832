"""The torchode backend (robustbench_ode/solvers/torchode_backend.py) against known solutions,
torchdiffeq and itself: order, tolerances, control modes, counters, statuses, adjoints, dtypes;
then through the pipeline: a suite mixing torchdiffeq and torchode test solvers (both controls,
and a torchode train solver with its adjoint) runs end to end. Skipped without torchode."""

import math

import pytest
import torch

pytest.importorskip("torchode")

import robustbench_ode as rb  # noqa: E402
from robustbench_ode import SOLVERS, Status  # noqa: E402
from robustbench_ode.solvers.torchode_backend import STEPPERS, torchode_solve  # noqa: E402

METHODS = [n for n in SOLVERS.names() if SOLVERS.get(n).backend == "torchode"]
ORDER = {n: SOLVERS.get(n).order for n in METHODS}
STAGES = {n: SOLVERS.get(n).stages for n in METHODS}
FSAL = {n: STEPPERS[SOLVERS.get(n).method][1] for n in METHODS}


def integrate(f, z0, t_span, method, **kw):
    """One solve through the registry (rb.solve), as (z, stats)."""
    sol = rb.solve(f, z0, method, t_span=t_span, **kw)
    return sol.z, sol.stats


def oscillator(t, z):
    return torch.stack([z[..., 1], -z[..., 0]], -1)


def gaussian(t, z):  # non-autonomous: exercises the nodes c and the t passed to f
    return -2.0 * t * z


# (name, f, z0, t_span, exact z(t1)); z0 batched (B, d) as the models pass it
KNOWN = [
    ("oscillator", oscillator, [[1.0, 0.0], [0.5, 0.5]], (0.0, 4.0),
     lambda z0: torch.stack([z0[:, 0] * math.cos(4.0) + z0[:, 1] * math.sin(4.0),
                             -z0[:, 0] * math.sin(4.0) + z0[:, 1] * math.cos(4.0)], 1)),
    ("gaussian", gaussian, [[1.0], [-2.0]], (0.0, 2.0), lambda z0: z0 * math.exp(-4.0)),
]


def _problem(p, dtype=torch.float64):
    _, f, z0, t_span, exact = p
    z0 = torch.tensor(z0, dtype=dtype)
    return f, z0, t_span, exact(z0.double())


def _err(z, exact):
    return (z.double() - exact).abs().max().item()


# --- fixed grids: order of convergence and the grid itself ------------------------------------

@pytest.mark.parametrize("problem", KNOWN, ids=lambda p: p[0])
@pytest.mark.parametrize("method", METHODS)
def test_observed_order_on_fixed_grid(method, problem):
    f, z0, t_span, exact = _problem(problem)
    order = ORDER[method]
    n = 8 if order == 5 else 32  # error far above float64 rounding at 4n steps
    errors = []
    for m in (n, 2 * n, 4 * n):
        z, stats = integrate(f, z0, t_span, method, steps=m)
        assert stats.status is Status.OK and stats.steps == stats.accepted == m
        assert stats.rejected == 0 and stats.control == "fixed"
        # FSAL: one f(t0) then stages - 1 per step; Heun: 2 per step
        assert stats.nfe == (1 + m * (STAGES[method] - 1) if FSAL[method] else m * STAGES[method])
        errors.append(_err(z, exact))
    observed = math.log2(errors[1] / errors[2])
    assert order - 0.35 <= observed <= order + 1.2, (errors, observed)


def test_fixed_grid_times_are_the_grid():
    times = []

    def f(t, z):
        assert t.ndim == 0  # one shared t: a 0-dim tensor
        times.append(float(t))
        return -z

    integrate(f, torch.ones(4, 3, dtype=torch.float64), (0.2, 0.5), "heun_torchode", steps=7,
              control="per_sample")
    h = 0.3 / 7
    assert times[::2] == pytest.approx([0.2 + k * h for k in range(7)], abs=1e-12)
    assert max(times) <= 0.5 + 1e-12 and len(times) == 14


# --- tolerances -------------------------------------------------------------------------------

TOLS = {"tsit5": (1e-3, 1e-6, 1e-9), "dopri5_torchode": (1e-3, 1e-6, 1e-9),
        "heun_torchode": (1e-2, 1e-3, 1e-4)}


@pytest.mark.parametrize("control", ["batch", "per_sample"])
@pytest.mark.parametrize("problem", KNOWN, ids=lambda p: p[0])
@pytest.mark.parametrize("method", METHODS)
def test_error_falls_and_nfe_grows_with_tolerance(method, problem, control):
    f, z0, t_span, exact = _problem(problem)
    errs, nfes = [], []
    for tol in TOLS[method]:
        z, stats = integrate(f, z0, t_span, method, rtol=tol, atol=tol, control=control)
        assert stats.status is Status.OK and stats.accepted == stats.steps > 0
        errs.append(_err(z, exact))
        nfes.append(stats.nfe)
        # global error within a loose proportional bound of the (local) tolerance
        assert errs[-1] < 200 * tol, (tol, errs)
    assert errs[0] > errs[1] > errs[2], errs
    assert nfes[0] < nfes[1] < nfes[2], nfes


@pytest.mark.parametrize("tol", [1e-4, 1e-6, 1e-8])
def test_batch_control_matches_torchdiffeq_dopri5(tol):
    """Batch control is torchdiffeq's norm (RMS over the whole batch) and step rule: same NFE."""
    torch.manual_seed(0)
    a = torch.randn(4, 4, dtype=torch.float64)
    z0 = torch.randn(16, 4, dtype=torch.float64)

    def f(t, z):
        return torch.tanh(z @ a.T)

    ref = rb.solve(f, z0, "dopri5", rtol=tol, atol=tol)
    z, stats = integrate(f, z0, (0.0, 1.0), "dopri5_torchode", rtol=tol, atol=tol)
    assert stats.nfe == pytest.approx(ref.stats.nfe, rel=0.15)
    assert (z - ref.z).abs().max() < 100 * tol


# --- batch vs per-sample control --------------------------------------------------------------

def _mixed_batch(dtype=torch.float64):
    """Two slow oscillators (omega 1) and two fast ones (omega 10): easy and hard samples."""
    w = torch.tensor([1.0, 10.0, 1.0, 10.0], dtype=dtype)

    def f(t, z):  # z: (4, 1, 2)
        return torch.stack([w[:, None] * z[..., 1], -w[:, None] * z[..., 0]], -1)

    z0 = torch.zeros(4, 1, 2, dtype=dtype)
    z0[..., 0] = 1.0
    exact = torch.stack([torch.cos(4 * w), -torch.sin(4 * w)], -1)[:, None].double()
    return f, w, z0, exact


@pytest.mark.parametrize("method", ["tsit5", "dopri5_torchode"])
def test_batch_and_per_sample_agree_and_per_sample_is_cheaper_per_sample(method):
    f, _, z0, exact = _mixed_batch()
    tol = 1e-7
    zb, sb = integrate(f, z0, (0.0, 4.0), method, rtol=tol, atol=tol, control="batch")
    zp, sp = integrate(f, z0, (0.0, 4.0), method, rtol=tol, atol=tol, control="per_sample")
    assert sb.status is sp.status is Status.OK
    assert sb.samples == 1 and sp.samples == 4
    assert zb.shape == zp.shape == z0.shape
    # both within tolerance of the exact answer and of each other
    assert _err(zb, exact) < 500 * tol and _err(zp, exact) < 500 * tol
    assert (zb - zp).abs().max() < 500 * tol
    # the easy samples take fewer steps than the hard ones...
    assert sp.sample_steps[0] < sp.sample_steps[1] and sp.sample_steps[2] < sp.sample_steps[3]
    # ... so the NFE each sample costs under per-sample control is below the batch's
    assert sp.nfe_per_sample_mean < sb.nfe
    # the batched calls are set by the hardest sample: the steps of the longest-running sample
    assert sp.steps + sp.rejected == int(sp.sample_steps.max())


def test_per_sample_control_solves_each_sample_as_if_alone():
    """Per-sample control is independent per sample: each row equals its solve alone, and the
    batch costs what its hardest sample costs alone (the batched NFE)."""
    f_batch, w, z0, _ = _mixed_batch()
    zp, sp = integrate(f_batch, z0, (0.0, 4.0), "tsit5", rtol=1e-6, atol=1e-6, control="per_sample")
    alone_nfe = []
    for i in range(4):
        wi = float(w[i])

        def fi(t, z, wi=wi):
            return torch.stack([wi * z[..., 1], -wi * z[..., 0]], -1)

        zi, si = integrate(fi, z0[i:i + 1], (0.0, 4.0), "tsit5", rtol=1e-6, atol=1e-6)
        assert torch.allclose(zi, zp[i:i + 1], rtol=0, atol=1e-12)
        assert int(sp.sample_steps[i]) == si.accepted + si.rejected
        alone_nfe.append(si.nfe)
    assert sp.nfe == max(alone_nfe)
    assert sp.nfe_per_sample_mean == pytest.approx(sum(alone_nfe) / 4)


def test_batch_control_dilutes_a_hard_sample():
    """The batch norm is the RMS over all samples: one hard sample among easy ones is averaged
    down, so batch control is less accurate on it than per-sample control (documented)."""
    f, _, z0, exact = _mixed_batch()
    zb, _ = integrate(f, z0, (0.0, 4.0), "tsit5", rtol=1e-6, atol=1e-6, control="batch")
    zp, _ = integrate(f, z0, (0.0, 4.0), "tsit5", rtol=1e-6, atol=1e-6, control="per_sample")
    hard = [1, 3]
    assert _err(zp[hard], exact[hard]) < _err(zb[hard], exact[hard])


def test_nfe_counts_batched_calls():
    calls = []

    def f(t, z):
        calls.append(z.shape)
        return oscillator(t, z)

    z0 = torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64)
    for control in ("batch", "per_sample"):
        calls.clear()
        _, s = integrate(f, z0, (0.0, 4.0), "tsit5", rtol=1e-6, control=control)
        assert s.nfe == len(calls) and all(c == z0.shape for c in calls)
        # two calls for the initial step size (f(t0) reused, FSAL), then 6 new stages a step
        assert s.nfe == 2 + (s.accepted + s.rejected) * 6


# --- time passed to f ---------------------------------------------------------------------------

def test_per_sample_control_passes_per_sample_time():
    seen = []

    def f(t, z):
        seen.append(tuple(t.shape))
        return gaussian(t, z)

    z0 = torch.ones(3, 2, 2, dtype=torch.float64)
    z, s = integrate(f, z0, (0.0, 2.0), "tsit5", rtol=1e-8, control="per_sample")
    assert set(seen) == {(3, 1, 1)}  # broadcasts against z
    assert _err(z, torch.full_like(z0, math.exp(-4.0))) < 1e-6
    seen.clear()
    integrate(f, z0, (0.0, 2.0), "tsit5", rtol=1e-8, control="batch")
    assert set(seen) == {()}


def test_time_dependent_fields_are_refused_under_per_sample_control():
    field = rb.MODELS.get("ott_conv1d")((2,), 2, width=8, time_input=True).block.field
    z0 = torch.randn(4, 1, 2)
    with pytest.raises(ValueError, match="per-sample control"):
        integrate(field, z0, (0.0, 1.0), "tsit5", rtol=1e-4, control="per_sample")
    with pytest.raises(ValueError, match="scalar t"):  # a plain function reading float(t)
        integrate(lambda t, z: z * float(t), z0, (0.0, 1.0), "tsit5", rtol=1e-4,
                  control="per_sample")
    _, s = integrate(field, z0, (0.0, 1.0), "tsit5", rtol=1e-4, control="batch")
    assert s.status is Status.OK
    resnet = rb.MODELS.get("resnet")((2,), 2, blocks=4).block.field  # picks its block from float(t)
    with pytest.raises(ValueError, match="scalar t"):
        integrate(resnet, torch.randn(4, 1, 2), (0.0, 1.0), "tsit5", rtol=1e-4, control="per_sample")


# --- statuses -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{"rtol": 1e-3, "control": "batch"},
                                {"rtol": 1e-3, "control": "per_sample"}, {"steps": 4}],
                         ids=["batch", "per_sample", "fixed"])
def test_nan_field_is_non_finite(kw):
    z, s = integrate(lambda t, z: z * float("nan"), torch.ones(3, 2), (0.0, 1.0), "tsit5", **kw)
    assert s.status is Status.NON_FINITE and s.message
    assert torch.isnan(z).all()


@pytest.mark.parametrize("control", ["batch", "per_sample"])
def test_max_steps_is_a_status(control):
    z, s = integrate(oscillator, torch.tensor([[1.0, 0.0]] * 2), (0.0, 10.0), "tsit5",
                     rtol=1e-10, max_steps=3, control=control)
    assert s.status is Status.MAX_STEPS and "max_steps" in s.message
    assert torch.isnan(z).all()


def test_per_sample_max_steps_keeps_finished_samples():
    f, _, z0, exact = _mixed_batch()
    z, s = integrate(f, z0, (0.0, 4.0), "tsit5", rtol=1e-6, control="per_sample", max_steps=40)
    assert s.status is Status.MAX_STEPS
    assert s.sample_status == [Status.OK, Status.MAX_STEPS, Status.OK, Status.MAX_STEPS]
    assert torch.isnan(z[[1, 3]]).all()
    assert _err(z[[0, 2]], exact[[0, 2]]) < 1e-4


def test_pid_controller():
    f, z0, t_span, exact = _problem(KNOWN[0])
    z_i, s_i = integrate(f, z0, t_span, "tsit5", rtol=1e-7)
    sol = torchode_solve(f, z0, t_span, "Tsit5", rtol=1e-7, pid=(0.2, 0.5, 0.0))  # torchode's default
    z_p, s_p = sol.z, sol.stats
    assert s_p.status is Status.OK and _err(z_p, exact) < 1e-5
    assert s_p.nfe != s_i.nfe or s_p.rejected != s_i.rejected  # a different controller ran


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        integrate(oscillator, torch.ones(2), (0.0, 1.0), "tsit5")  # no tolerance, no steps
    with pytest.raises(ValueError):
        integrate(oscillator, torch.ones(2), (0.0, 1.0), "tsit5", rtol=1e-3, steps=4)
    with pytest.raises(ValueError):
        torchode_solve(oscillator, torch.ones(2), (0.0, 1.0), "Bosh3", rtol=1e-3)
    with pytest.raises(ValueError, match="supports only batch and per_sample"):
        integrate(oscillator, torch.ones(2), (0.0, 1.0), "tsit5", rtol=1e-3, control="sample")


# --- gradients ----------------------------------------------------------------------------------

class _Tanh(torch.nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3).to(dtype)

    def forward(self, t, z):
        return torch.tanh(self.lin(z))


@pytest.mark.parametrize("kw", [{"rtol": 1e-9, "atol": 1e-9}, {"steps": 50}], ids=["adaptive", "fixed"])
@pytest.mark.parametrize("control", ["batch", "per_sample"])
@pytest.mark.parametrize("method", ["tsit5", "dopri5_torchode"])
def test_adjoint_gradient_matches_autograd(method, control, kw):
    torch.manual_seed(0)
    f = _Tanh(torch.float64)
    z0 = torch.randn(5, 3, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        f.zero_grad()
        z = z0.clone().requires_grad_()
        out, s = integrate(f, z, (0.0, 1.0), method, control=control, adjoint=adjoint, **kw)
        assert s.status is Status.OK
        out.square().sum().backward()
        grads.append((f.lin.weight.grad.clone(), z.grad.clone()))
    (gw, gz), (aw, az) = grads
    assert gw.abs().max() > 1e-2  # a real gradient
    assert torch.allclose(gw, aw, atol=1e-6, rtol=1e-6)
    assert torch.allclose(gz, az, atol=1e-6, rtol=1e-6)


# --- dtypes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("control", ["batch", "per_sample"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype, control):
    seen = set()

    def f(t, z):
        seen.add(t.dtype)
        return gaussian(t, z)

    problem = _problem(KNOWN[1], dtype)
    _, z0, t_span, exact = problem
    errs = []
    for tol in (1e-3, 1e-5):
        z, s = integrate(f, z0, t_span, "tsit5", rtol=tol, control=control)
        assert z.dtype == dtype and s.status is Status.OK
        errs.append(_err(z, exact))
    assert seen == {dtype}
    assert errs[1] < errs[0] < 1e-2
    z, s = integrate(f, z0, t_span, "tsit5", steps=16)
    assert z.dtype == dtype and s.steps == 16


def test_float32_gradients():
    torch.manual_seed(0)
    f = _Tanh(torch.float32)
    z = torch.randn(5, 3).requires_grad_()
    out, _ = integrate(f, z, (0.0, 1.0), "tsit5", rtol=1e-5, control="per_sample", adjoint=True)
    out.square().sum().backward()
    assert f.lin.weight.grad.dtype == torch.float32 and torch.isfinite(f.lin.weight.grad).all()




# --- through the pipeline -----------------------------------------------------------------------

MIXED = """
name: mixed_backends
dataset: {name: sphere2, n_train: 128, n_test: 64}
model: {name: ott_conv1d, width: 8}
training: {iterations: 8, batch_size: 32, lr: 0.01, gradient: adjoint}
train:
  seeds: [0]
  grid:
    - {solver: euler, steps: [2]}
    - {solver: tsit5, tol: [0.01]}        # trained with torchode and its adjoint
test:
  - {solver: euler, steps: [4]}
  - {solver: dopri5, tol: [0.001]}
  - {solver: tsit5, tol: [0.001]}
  - {solver: tsit5, tol: [0.001], control: per_sample}
  - {solver: dopri5_torchode, tol_factors: [0.1], control: per_sample}
"""


def test_a_suite_mixing_torchdiffeq_and_torchode_runs_end_to_end(tmp_path):
    from robustbench_ode.cli import main
    from robustbench_ode.outputs.tables import read_table, read_training

    suite = tmp_path / "mixed.yaml"
    suite.write_text(MIXED)
    out = tmp_path / "run"
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    rows = read_table(out / "results.csv")
    assert (rows["status"] == "ok").all(), rows[["test_solver", "status", "message"]]
    tsit = rows[(rows["train_solver"] == "euler") & (rows["test_solver"] == "tsit5")]
    assert sorted(tsit["test_control"]) == ["batch", "per_sample"]  # two points, one per control
    fixed = rows[rows["test_solver"] == "euler"]
    assert fixed["test_control"].isna().all()
    assert set(rows.loc[rows["test_solver"] == "dopri5", "test_control"]) == {"batch"}
    factor = rows[rows["test_solver"] == "dopri5_torchode"]
    assert len(factor) == 1 and factor["test_tol"].iloc[0] == pytest.approx(0.001)  # 0.1 x 0.01
    assert (tsit["nfe"] > 0).all() and (tsit["accepted"] > 0).all()
    log = read_training(out / "training.csv")
    adj = log[log["train_solver"] == "tsit5"]
    assert len(adj) == 8 and (adj["nfe_backward"] > 0).all()  # torchode's backsolve adjoint ran
    # Resume: every point (control included in its identity) is stored: nothing retrained.
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    again = read_table(out / "results.csv")
    assert len(again) == len(rows)
    assert again.drop(columns=["eval_seconds"]).equals(rows.drop(columns=["eval_seconds"]))
