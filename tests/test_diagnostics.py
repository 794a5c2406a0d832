"""Fold and error-accumulation diagnostics (robustbench_ode.diagnostics, issue 19): cases with
known answers. Everything runs in float64 on a few dozen samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import robustbench_ode as rb
from robustbench_ode.diagnostics import (
    MIN_FLIPS,
    ROBUST_MAX_FLIP,
    Counts,
    Variational,
    diagnose,
    diagnose_model,
    exact_flow_jacobians,
    first_change,
    flow_jacobians,
    step_jacobians_autodiff,
    transport_indices,
    verdict,
)
from robustbench_ode.models.fields import prepared

F64 = torch.float64


@pytest.fixture(autouse=True)
def one_thread():
    """These tests run thousands of tiny ops: with two intra-op threads on a busy two-core machine
    each op waits on the other thread (a 16x16 tanh: 7 us on one thread, 340 us on two). One
    thread for this module, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Linear(torch.nn.Module):
    """dz/dt = A z on (B, 2), with its closed-form flow."""

    def __init__(self, a) -> None:
        super().__init__()
        self.register_buffer("a", torch.tensor(a, dtype=F64))

    def forward(self, t, z):
        return z @ self.a.T

    def exact_flow(self, z0, t0, t1):
        return z0 @ torch.linalg.matrix_exp(self.a * (float(t1) - float(t0))).T


def first_coordinate_head(z):
    """Class 1 where z_0 > 0: the decision boundary is the line z_0 = 0."""
    return torch.stack([-z[:, 0], z[:, 0]], 1)


def points(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g, dtype=F64)


# ---------------------------------------------------------------- folds: known determinants

def test_euler_one_step_on_diag_minus3_0_folds_every_sample():
    # Psi = I + h A = diag(-2, 1): det -2 at every point; the flow exp(A) = diag(e^-3, 1): det e^-3
    d = diagnose(Linear([[-3.0, 0.0], [0.0, 0.0]]), points(), first_coordinate_head, solver="euler",
                 steps=1, reference="exact")
    s = d.scalars
    assert s["diagnostics_status"] == "ok"
    assert s["fold_fraction"] == 1.0 and s["fold_step_fraction"] == 1.0
    assert (d.per_step["det_sign"] == -1).all()
    assert s["min_log_det"] == pytest.approx(math.log(2.0), abs=1e-12)
    assert s["ref_fold_fraction"] == 0.0
    assert np.allclose(d.per_step["ref_log_det"], -3.0, atol=1e-12)
    # z_0 -> -2 z_0: every sample changes side, at the fold step: the fold effect
    assert s["flip_fraction"] == 1.0 and s["flips_at_fold_share"] == 1.0
    assert (d.per_sample["flip_step"] == 0).all()
    assert s["effect"] == "fold"


class LateFold(torch.nn.Module):
    """dz/dt = 0 for t < 1/2, then diag(-3, 0) z: the time-dependent linear field and its flow."""

    def forward(self, t, z):
        t = float(t)
        return torch.stack([-3.0 * z[:, 0] * (t >= 0.5), 0.0 * z[:, 1]], 1)

    def exact_flow(self, z0, t0, t1):
        active = max(0.0, float(t1) - max(float(t0), 0.5))
        return torch.stack([z0[:, 0] * math.exp(-3.0 * active), z0[:, 1]], 1)


def test_flip_step_is_the_step_that_folds():
    # Euler, 2 steps: step 0 is the identity (det 1), step 1 is diag(1 - 3/2, 1) (det -1/2): the
    # sign of z_0 changes at step 1, and only there
    d = diagnose(LateFold(), points(), first_coordinate_head, solver="euler", steps=2, reference="exact")
    steps = d.per_step
    assert (steps.loc[steps["step"] == 0, "det_sign"] == 1).all()
    assert (steps.loc[steps["step"] == 1, "det_sign"] == -1).all()
    assert np.allclose(steps.loc[steps["step"] == 1, "log_det"], math.log(0.5))
    assert (d.per_sample["flip_step"] == 1).all() and d.per_sample["flip_at_fold"].all()
    assert np.allclose(d.per_sample["flip_time"], 0.5)
    # the whole global error is made in step 1: step 0's contribution is zero
    assert np.allclose(d.arrays["contribution"][:, 0], 0.0, atol=1e-15)
    assert d.scalars["effect"] == "fold" and d.scalars["top1_share_median"] == 1.0


def test_contracting_field_with_small_steps_does_not_fold():
    a = [[-1.0, 0.0], [0.0, -2.0]]
    n = 16
    h = 1.0 / n
    d = diagnose(Linear(a), points(), first_coordinate_head, solver="euler", steps=n, reference="exact",
                 population=24)
    assert d.scalars["fold_fraction"] == 0.0 and d.scalars["ref_fold_fraction"] == 0.0
    assert d.scalars["fold_segment_fraction"] == 0.0 and math.isnan(d.scalars["fold_map_first_step"])
    assert np.allclose(d.per_step["log_det"], math.log((1 - h) * (1 - 2 * h)), atol=1e-12)
    assert np.allclose(d.per_step["ref_log_det"], -3.0 * h, atol=1e-12)  # trace A * h
    # a diagonal contraction keeps the sign of z_0: nothing flips; the 24 samples are the whole
    # population here, so 0 flips is exact and the model is robust
    assert d.scalars["flip_fraction"] == 0.0 and d.scalars["effect"] == "robust"
    # as a sample of a larger population, 0 of 24 cannot bound the flip rate below 2 % at 95 %
    sample = diagnose(Linear(a), points(), first_coordinate_head, solver="euler", steps=n, reference="exact")
    assert sample.scalars["flip_fraction_high"] > ROBUST_MAX_FLIP
    assert sample.scalars["effect"] == "undetermined"
    # with the reference by Liouville's formula (dopri5), the same log det: trace A * h per step
    liouville = diagnose(Linear(a), points(), first_coordinate_head, solver="euler", steps=n, ref_rtol=1e-10)
    assert np.allclose(liouville.per_step["ref_log_det"], -3.0 * h, atol=1e-9)


def test_point_reflection_crosses_without_folding():
    # A = -3 I, one Euler step: z -> -2 z, det +4 (a rotation by pi, orientation kept), yet every
    # segment z -> -2 z passes through the origin, so every pair of trajectories crosses. The flow
    # e^-3 z moves each point along its own ray: no pair crosses.
    d = diagnose(Linear([[-3.0, 0.0], [0.0, -3.0]]), points(), first_coordinate_head, solver="euler",
                 steps=1, reference="exact")
    s = d.scalars
    assert s["fold_fraction"] == 0.0 and s["min_log_det"] == pytest.approx(math.log(4.0))
    assert s["crossing_fraction"] == 1.0 and s["crossing_pairs"] == 24 * 23 / 2
    assert s["ref_crossing_fraction"] == 0.0


def test_rotation_flips_by_accumulation_without_folds():
    # Rotation by 90 degrees per unit time, Euler 4 steps: each step is a rotation by atan(h w)
    # scaled by sqrt(1 + h^2 w^2) (det > 0, no fold); the exact flow turns by h w per step. After
    # 4 steps the Euler angle lags by 4 (h w - atan(h w)) = 0.072 rad: the points whose end angle
    # falls within that lag of the boundary z_0 = 0 flip, 2 * 0.072 / (2 pi) = 2.3 % of them.
    w = math.pi / 2
    angle = torch.linspace(0, 2 * math.pi, 401, dtype=F64)[:-1] + 1e-3  # none exactly on the boundary
    z0 = torch.stack([angle.cos(), angle.sin()], 1)
    d = diagnose(Linear([[0.0, -w], [w, 0.0]]), z0, first_coordinate_head, solver="euler", steps=4,
                 reference="exact")
    s = d.scalars
    assert s["fold_fraction"] == 0.0
    euler_end = angle + 4 * math.atan(w / 4)
    exact_end = angle + w
    want = (torch.cos(euler_end).sign() != torch.cos(exact_end).sign()).double().mean().item()
    assert 0.02 < want < 0.03
    assert s["flip_fraction"] == pytest.approx(want, abs=1e-12)
    assert s["flips_with_fold_share"] == 0.0 and s["fold_segment_fraction"] == 0.0
    # every step makes the same local error relative to |z_k|, and Euler's |z_k| grows by
    # r = sqrt(1 + h^2 w^2) per step: the last of the 4 terms is the largest, r^3 / sum r^k of
    # the sum (0.277): no single step carries the error
    r = math.sqrt(1 + (w / 4) ** 2)
    assert s["top1_share_median"] == pytest.approx(r ** 3 / sum(r ** k for k in range(4)), abs=1e-6)
    assert s["flips_concentrated_share"] == 0.0
    assert s["flips"] >= MIN_FLIPS and s["effect"] == "accumulation"


# ---------------------------------------------------------------- Jacobians themselves

@pytest.mark.parametrize("name,shape,params", [("mlp", (2,), {"hidden": 8, "time_input": True}),
                                                ("ott_conv1d", (2,), {"width": 8})])
def test_batched_jacobians_are_each_samples_own(name, shape, params):
    torch.manual_seed(0)
    model = rb.MODELS.get(name)(shape, 2, **params).double()
    f = model.block.field
    z = model.input_map(torch.randn(5, *shape, dtype=F64)).detach()
    step = lambda x: rb.solve(f, x, "rk4", steps=1, t_span=(0.25, 0.75)).z  # noqa: E731
    with torch.no_grad(), prepared(f, z):
        batched = step_jacobians_autodiff(step, z)
        var = Variational(f, tuple(z.shape[1:]))
        # rk4 on the variational system, one step of the same size: the Jacobian of the rk4 map
        _, j_var = var.unpack(rb.solve(var, var.pack(z), "rk4", steps=1, t_span=(0.25, 0.75)).z)
    for i in range(z.shape[0]):
        one = torch.autograd.functional.jacobian(lambda x: step(x[None])[0], z[i]).reshape(2, 2)
        assert torch.allclose(batched[i], one, atol=1e-12)
        assert torch.allclose(j_var[i], one, atol=1e-12)


def test_variational_step_of_torchdiffeq_solver_matches_finite_differences():
    torch.manual_seed(0)
    model = rb.MODELS.get("mlp")((2,), 2, hidden=8, activation="tanh").double()
    f = model.block.field
    z = torch.randn(3, 2, dtype=F64)
    var = Variational(f, (2,))
    with torch.no_grad():
        _, j = var.unpack(rb.solve(var, var.pack(z), "dopri5", steps=1, t_span=(0.0, 0.5)).z)
        eps = 1e-6
        for k in range(2):
            e = torch.zeros(2, dtype=F64)
            e[k] = eps
            plus = rb.solve(f, z + e, "dopri5", steps=1, t_span=(0.0, 0.5)).z
            minus = rb.solve(f, z - e, "dopri5", steps=1, t_span=(0.0, 0.5)).z
            assert torch.allclose(j[:, :, k], (plus - minus) / (2 * eps), atol=1e-8)


def test_reference_flow_jacobians_match_the_exact_flow_elementwise():
    # not only the determinant: a transposed J or a wrong product order in the variational
    # system would keep det and fail here (the fan's Jacobian is not symmetric)
    model = rb.MODELS.get("elliptic_fan")((2,), 2, w1=2.0, centre_x=0.5, centre_y=0.3, axis_ratio=1.5)
    f = model.block.field.double()
    z = points(6)
    with torch.no_grad():
        z1, j = flow_jacobians(f, z, "dopri5", 0.25, 0.75, rtol=1e-10, atol=1e-10)
        want = exact_flow_jacobians(f, z, 0.25, 0.75)
        assert torch.allclose(z1, f.exact_flow(z, 0.25, 0.75), atol=1e-8)
    assert not torch.allclose(want, want.transpose(1, 2), atol=1e-3)
    assert torch.allclose(j, want, atol=1e-6)


# ---------------------------------------------------------------- the reference never folds

# One small model per registered name, on a dataset of matching shape. ``trajectory`` is a
# time-series regression model (its state is the observed system, it needs a time-series dataset
# and has no classes to flip): skipped, say so.
REFERENCE_CASES = {
    "mlp": ("moons", {}, {"hidden": 16}),
    "ott_conv1d": ("sphere2", {}, {"width": 8}),
    "ott_conv2d": ("digits", {}, {"width": 8, "input_map": "strided_conv", "map_stride": 2}),
    "elliptic_fan": ("xor", {"n_test": 16, "noise": 0.2}, {"w1": 2.0, "centre_x": 0.5, "centre_y": 0.5}),
    "resnet_shared": ("moons", {}, {"blocks": 2, "base": "mlp", "hidden": 16}),
    "resnet": ("sphere2", {}, {"blocks": 2, "width": 8}),
}
SKIPPED = {"trajectory": "time-series regression model: needs a time-series dataset, has no classes",
           "augmented_trajectory": "regression model (the trajectory model, augmented): needs a "
                                   "regression dataset, has no classes",
           "cnf": "density model (a flow): no classes; its discrete map's folds: tests/test_cnf_math.py"}


@pytest.mark.parametrize("name", rb.MODELS.names())
def test_reference_solve_never_folds(name):
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    if name not in REFERENCE_CASES:
        pytest.fail(f"model {name!r} is registered but has no case here: add one to REFERENCE_CASES")
    dataset, data_params, params = REFERENCE_CASES[name]
    torch.manual_seed(0)
    splits = rb.DATASETS.get(dataset)(0, **data_params)
    model = rb.MODELS.get(name)(splits.in_shape, splits.n_classes, **params)
    x, y = splits.prepare(splits.x_test[:16]), splits.y_test[:16]
    d = diagnose_model(model, x, y, "euler", 2, dtype=F64)
    assert d.status == "ok", d.scalars["diagnostics_message"]
    assert d.scalars["ref_fold_fraction"] == 0.0
    assert (d.per_step["ref_det_sign"] > 0).all()
    assert np.isfinite(d.per_step["ref_log_det"]).all()


# ---------------------------------------------------------------- Windermere decomposition

def test_transported_local_errors_sum_to_the_global_error():
    torch.manual_seed(0)
    model = rb.MODELS.get("mlp")((2,), 2, hidden=16, activation="tanh").double()
    f = model.block.field
    z0 = torch.randn(16, 2, dtype=F64)
    n, tol = 5, 1e-9
    # max_dim=1: fold diagnostics off, this test is about the decomposition alone
    d = diagnose(f, z0, model.logits, solver="euler", steps=n, ref_rtol=tol, max_dim=1)
    contrib = torch.as_tensor(d.arrays["contribution"])
    with torch.no_grad():
        # the global error from two independent full solves
        glob = (rb.solve(f, z0, "euler", steps=n).z
                - rb.solve(f, z0, "dopri5", rtol=tol, atol=tol).z)
        assert torch.allclose(contrib.sum(1), glob, atol=1e-6, rtol=0)
        # each term is step k's local error carried to T:
        # Phi_{k+1->T}(Psi z_k) - Phi_{k+1->T}(Phi_{k->k+1} z_k)
        pts = torch.as_tensor(d.arrays["train_points"])
        grid = d.arrays["grid"]
        for k in range(n):
            def to_end(x, k=k):
                return rb.solve(f, x, "dopri5", rtol=tol, atol=tol, t_span=(grid[k + 1], 1.0)).z
            exact_next = rb.solve(f, pts[:, k], "dopri5", rtol=tol, atol=tol,
                                  t_span=(grid[k], grid[k + 1])).z
            want = to_end(pts[:, k + 1]) - to_end(exact_next) if k + 1 < n else pts[:, n] - exact_next
            assert torch.allclose(contrib[:, k], want, atol=1e-6, rtol=0)


def test_linear_contributions_match_the_closed_form():
    a = torch.tensor([[-1.0, 2.0], [-2.0, -0.5]], dtype=F64)
    z0 = points(10)
    n = 5
    h = 1.0 / n
    d = diagnose(Linear(a.tolist()), z0, first_coordinate_head, solver="heun", steps=n, reference="exact")
    eye = torch.eye(2, dtype=F64)
    psi = eye + h * a + 0.5 * h * h * a @ a  # Heun on a linear field
    z = z0
    for k in range(n):
        local = z @ (psi - torch.linalg.matrix_exp(h * a)).T
        want = local @ torch.linalg.matrix_exp(a * (1.0 - (k + 1) * h)).T
        assert torch.allclose(torch.as_tensor(d.arrays["contribution"][:, k]), want, atol=1e-12)
        z = z @ psi.T


def test_steps_beyond_max_transport_are_grouped_in_blocks():
    model = rb.MODELS.get("mlp")((2,), 2, hidden=8).double()
    z0 = points(8)
    d = diagnose(model.block.field, z0, model.logits, solver="euler", steps=12, max_transport=4)
    assert list(d.arrays["transport_index"]) == [0, 3, 6, 9, 12]
    assert d.scalars["transport_blocks"] == 4 and "4 blocks" in d.scalars["diagnostics_message"]
    full = diagnose(model.block.field, z0, model.logits, solver="euler", steps=12)
    blocks = full.arrays["contribution"].reshape(8, 4, 3, 2).sum(2)
    assert np.allclose(d.arrays["contribution"], blocks, atol=1e-6)


def test_xor_fan_exact_flow_matches_tight_dopri5():
    splits = rb.DATASETS.get("xor")(0, n_test=32, noise=0.2)
    model = rb.MODELS.get("elliptic_fan")(splits.in_shape, 2, w1=2.0, centre_x=0.5, centre_y=0.5)
    x = splits.prepare(splits.x_test)
    kw = dict(dtype=F64)
    exact = diagnose_model(model, x, splits.y_test, "euler", 2, reference="exact", **kw)
    tight = diagnose_model(model, x, splits.y_test, "euler", 2, reference="dopri5", ref_rtol=1e-10, **kw)
    for key in ("transported", "contribution", "global_error", "ref_points"):
        assert np.allclose(exact.arrays[key], tight.arrays[key], atol=1e-6, rtol=0), key
    assert np.allclose(exact.per_step["ref_log_det"], tight.per_step["ref_log_det"], atol=1e-6)
    for key in ("fold_fraction", "flip_fraction", "ref_fold_fraction", "effect"):
        assert exact.scalars[key] == tight.scalars[key], key
    assert (exact.per_sample["flip_step"] == tight.per_sample["flip_step"]).all()


def test_tolerance_trained_config_replays_the_accepted_grid():
    torch.manual_seed(0)
    model = rb.MODELS.get("mlp")((2,), 2, hidden=16, activation="tanh").double()
    z0 = points(16)
    d = diagnose(model.block.field, z0, model.logits, solver="bosh3", tol=1e-4)
    sol = rb.solve(model.block.field, z0, "bosh3", rtol=1e-4, atol=1e-4)
    assert d.scalars["steps"] == sol.stats.accepted
    assert np.allclose(d.arrays["train_points"][:, -1], sol.z.detach().numpy(), atol=1e-10, rtol=0)
    assert "accepted steps" in d.scalars["diagnostics_message"]


class Riccati(torch.nn.Module):
    """dz/dt = (z_0^2, 0): from z_0(0) = c > 0 the solution c / (1 - c t) blows up at t = 1/c."""

    def forward(self, t, z):
        return torch.stack([z[:, 0] ** 2, torch.zeros_like(z[:, 1])], 1)


def test_a_sample_the_reference_cannot_integrate_is_left_out_alone():
    z0 = torch.zeros(8, 2, dtype=F64)
    z0[:, 0] = torch.linspace(-0.4, 0.4, 8, dtype=F64)
    z0[3, 0] = 2.0  # blows up at t = 1/2; Euler's 2 steps stay finite (2 -> 4 -> 12)
    d = diagnose(Riccati(), z0, first_coordinate_head, solver="euler", steps=2, max_steps=50)
    s = d.scalars
    assert s["diagnostics_status"] == "ok", s["diagnostics_message"]
    assert s["non_finite_fraction"] == 0.0 and s["ref_failed_fraction"] == 1 / 8
    assert list(d.per_sample["used"]) == [i != 3 for i in range(8)]
    assert "reference transport failed" in s["diagnostics_message"]
    assert s["ref_fold_fraction"] == 0.0 and math.isfinite(s["ref_min_log_det"])
    # the other seven are diagnosed as if alone
    alone = diagnose(Riccati(), z0[[i for i in range(8) if i != 3]], first_coordinate_head,
                     solver="euler", steps=2)
    assert np.allclose(d.arrays["contribution"][[i for i in range(8) if i != 3]],
                       alone.arrays["contribution"], atol=1e-6)


def test_a_sample_whose_train_solve_overflows_is_left_out():
    # Euler at h = 1/30 on rate -1000: |1 - 1000 h| = 32 per step, float32 overflows; a sample on
    # the axis z_0 = 0 stays finite
    f = Linear([[-1000.0, 0.0], [0.0, -1.0]]).float()
    z0 = points(10).float()
    z0[:5, 0] = 0.0
    d = diagnose(f, z0, first_coordinate_head, steps=30, reference="exact")  # dopri5: stiff, slow
    assert d.status == "ok" and d.scalars["non_finite_fraction"] == 0.5
    assert list(d.per_sample["finite"]) == [True] * 5 + [False] * 5
    assert d.scalars["fold_fraction"] == 1.0  # det (1 - 1000/30)(1 - 1/30) < 0, finite samples only
    assert "non-finite train solve" in d.scalars["diagnostics_message"]


# ---------------------------------------------------------------- status, arguments, rule

def test_fold_diagnostics_not_computed_above_the_size_limit():
    splits = rb.DATASETS.get("spheres")(0, dim=65, n_train=4, n_test=8)
    model = rb.MODELS.get("ott_conv1d")(splits.in_shape, 2, width=4)
    d = diagnose_model(model, splits.prepare(splits.x_test), splits.y_test, "euler", 2, dtype=F64)
    s = d.scalars
    assert s["diagnostics_status"] == "not_computed" and s["state_dim"] == 65
    assert "max_dim 64" in s["diagnostics_message"]
    assert all(math.isnan(s[k]) for k in ("fold_fraction", "min_log_det", "ref_fold_fraction"))
    assert d.per_step["log_det"].isna().all()
    assert math.isfinite(s["flip_fraction"])  # the decomposition does not need Jacobians
    assert s["effect"] in ("robust", "undetermined")
    # the limit is a parameter
    small = diagnose(Linear([[-1.0, 0.0], [0.0, -1.0]]), points(4), first_coordinate_head, steps=2,
                     max_dim=1)
    assert small.status == "not_computed"
    assert diagnose(Linear([[-1.0, 0.0], [0.0, -1.0]]), points(4), first_coordinate_head, steps=2,
                    max_dim=2).status == "ok"


LIN = Linear([[-1.0, 0.0], [0.0, -1.0]])
BAD = {
    "unknown solver": dict(solver="eulr", steps=2),
    "fixed-step without steps": dict(solver="rk4"),
    "steps and tol": dict(solver="dopri5", steps=2, tol=1e-3),
    "adaptive without either": dict(solver="dopri5"),
    "zero steps": dict(steps=0),
    "exact as train": dict(solver="exact"),
    "fixed-step reference": dict(steps=2, reference="rk4"),
    "unknown reference": dict(steps=2, reference="dopri6"),
    "negative tolerance": dict(steps=2, ref_rtol=-1.0),
    "reversed t_span": dict(steps=2, t_span=(1.0, 0.0)),
    "max_dim zero": dict(steps=2, max_dim=0),
    "reach zero": dict(steps=2, reach=0.0),
    "negative probes per segment": dict(steps=2, per_segment=-1),
    "population zero": dict(steps=2, population=0),
    "labels of the wrong length": dict(steps=2, y=torch.zeros(3, dtype=torch.long)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_arguments_raise_a_one_line_value_error(case):
    kw = dict(BAD[case])
    y = kw.pop("y", None)
    with pytest.raises(ValueError) as err:
        diagnose(LIN, points(4), first_coordinate_head, y, **kw)
    assert "\n" not in str(err.value) and str(err.value)


def test_bad_inputs_raise_a_one_line_value_error():
    for z0 in (torch.zeros(4), torch.zeros(4, 2, dtype=torch.long), torch.full((4, 2), float("nan"))):
        with pytest.raises(ValueError, match="z0"):
            diagnose(LIN, z0, first_coordinate_head, steps=2)
    with pytest.raises(ValueError, match="exact_flow"):
        diagnose(rb.MODELS.get("mlp")((2,), 2).block.field, points(4), first_coordinate_head, steps=2,
                 reference="exact")
    traj = rb.MODELS.get("trajectory")((2,), 0, times=torch.tensor([0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="regression"):
        diagnose_model(traj, points(4).float(), None, "euler", 2)


def test_verdict_rule_thresholds():
    # robust: the flip rate's one-sided 95 % upper bound below 0.02; 256 samples allow 1 flip
    assert verdict(Counts(n=256, flips=1, at_fold=1, concentrated=1), True) == "robust"
    assert verdict(Counts(n=256, flips=2, at_fold=2, concentrated=2), True) == "undetermined"
    assert verdict(Counts(n=148, flips=0, at_fold=0, concentrated=0), True) == "undetermined"
    assert verdict(Counts(n=149, flips=0, at_fold=0, concentrated=0), True) == "robust"
    # the whole population: exact shares
    assert verdict(Counts(n=100, flips=1, at_fold=0, concentrated=0, exact=True), True) == "robust"
    assert verdict(Counts(n=4, flips=1, at_fold=0, concentrated=1, exact=True), True) == "mixed"
    assert verdict(Counts(n=256, flips=50, at_fold=50, concentrated=50), False) == "undetermined"
    assert MIN_FLIPS == 5
    assert verdict(Counts(n=256, flips=MIN_FLIPS - 1, at_fold=0, concentrated=0), True) == "undetermined"
    assert verdict(Counts(n=256, flips=MIN_FLIPS, at_fold=0, concentrated=0), True) == "accumulation"
    assert verdict(Counts(n=256, flips=MIN_FLIPS, at_fold=MIN_FLIPS, concentrated=0), True) == "fold"
    # the majority with confidence: 60 of 100 at a fold is fold, 55 is not decided
    assert verdict(Counts(n=256, flips=100, at_fold=60, concentrated=0), True) == "fold"
    assert verdict(Counts(n=256, flips=100, at_fold=55, concentrated=0), True) == "mixed"
    assert verdict(Counts(n=256, flips=100, at_fold=40, concentrated=0), True) == "accumulation"
    assert verdict(Counts(n=256, flips=100, at_fold=45, concentrated=0), True) == "mixed"
    # away from folds but one step made the error: not accumulation
    assert verdict(Counts(n=256, flips=100, at_fold=0, concentrated=100), True) == "mixed"
    assert verdict(Counts(n=0, flips=0, at_fold=0, concentrated=0), True) == "undetermined"


def test_first_change_and_transport_indices():
    classes = np.array([[0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 0, 1], [1, 1, 1, 0]])
    assert list(first_change(classes)) == [1, -1, 0, 2]
    assert list(transport_indices(3, 8)) == [0, 1, 2, 3]
    assert list(transport_indices(10, 4)) == [0, 2, 5, 8, 10]
