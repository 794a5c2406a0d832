"""Known answers for the fold test and the verdict (robustbench_ode/diagnostics/calibration.py;
docs/diagnostics.md, "Calibration"): a map that folds at a given step is ``fold`` at that step, one
that only accumulates error is ``accumulation``, a close approximation of a flow is ``robust``,
each at the default sample size (256). Float64 throughout."""

from __future__ import annotations

import math

import pytest
import torch

import robustbench_ode as rb
from robustbench_ode.diagnostics import ROBUST_MAX_FLIP, diagnose, diagnose_model
from robustbench_ode.diagnostics.calibration import Pleat, Rotation, sign_head, uniform_square, unit_circle

N = 256  # the suites' default diagnostics.samples


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("k, steps", [(0, 1), (3, 8)])
def test_a_pleat_is_fold_at_its_step(k, steps):
    field = Pleat(k, steps)
    z0 = uniform_square(N)
    d = diagnose(field, z0, sign_head, steps=steps, ref_rtol=1e-9)
    s, ps = d.scalars, d.per_sample
    # the flips are exactly the known ones, all made at step k
    assert ps["flipped"].tolist() == field.flipped(z0).tolist()
    assert (ps.loc[ps["flipped"], "flip_step"] == k).all()
    # the map folds at step k and nowhere else
    assert s["fold_map_first_step"] == k and s["fold_map_steps"] == 1
    # the per-sample determinant sees about half of the flips (the pleat's preserving sheets) ...
    own = (ps["flipped"] & (ps["fold_steps"] > 0)).sum() / ps["flipped"].sum()
    assert 0.4 < own < 0.6
    # ... the fold test of the map sees all of them
    assert s["flips_at_fold_share"] == 1.0 and s["flips_at_fold_low"] > 0.95
    assert s["effect"] == "fold"


def test_the_fold_test_without_probes_is_the_per_sample_one():
    # per_segment=0: segments only through their end samples; the pleat's flips with det > 0 at
    # themselves are then counted at a fold only via a neighbour that folds, and fewer are seen
    z0 = uniform_square(N)
    full = diagnose(Pleat(), z0, sign_head, steps=1, ref_rtol=1e-9)
    bare = diagnose(Pleat(), z0, sign_head, steps=1, ref_rtol=1e-9, per_segment=0)
    assert bare.scalars["fold_probes"] == 0 and full.scalars["fold_probes"] > 0
    assert bare.scalars["flips_at_fold_share"] <= full.scalars["flips_at_fold_share"]


def test_a_rotation_only_accumulates():
    field = Rotation(math.pi)
    z0 = unit_circle(N)
    d = diagnose(field, z0, sign_head, steps=8, reference="exact")
    s = d.scalars
    assert d.per_sample["flipped"].tolist() == field.flipped(z0, 8).tolist()
    assert s["flips"] >= 5  # about 4.6 % of the circle
    assert s["fold_segment_fraction"] == 0.0 and s["fold_near_fraction"] == 0.0
    assert math.isnan(s["fold_map_first_step"])
    assert s["flips_concentrated_share"] == 0.0  # the lag is spread evenly over the 8 steps
    assert s["effect"] == "accumulation"


def test_one_step_of_the_rotation_is_never_accumulation():
    # the same rotation in one Euler step: no fold either, but one step makes all the error
    d = diagnose(Rotation(math.pi), unit_circle(N), sign_head, steps=1, reference="exact")
    assert d.scalars["fold_segment_fraction"] == 0.0 and d.scalars["flips_concentrated_share"] == 1.0
    assert d.scalars["effect"] == "mixed"


def _xor_fan(n: int):
    splits = rb.DATASETS.get("xor")(0, n_test=n, noise=0.2)
    model = rb.MODELS.get("elliptic_fan")(splits.in_shape, 2, w1=3.0, centre_x=0.5, centre_y=0.5)
    return model, splits.prepare(splits.x_test), splits.y_test


def test_the_xor_fan_under_a_fine_step_is_robust():
    model, x, y = _xor_fan(N)
    d = diagnose_model(model, x, y, "rk4", 64, reference="exact", dtype=torch.float64)
    s = d.scalars
    assert s["flips"] == 0 and s["flip_fraction_high"] < ROBUST_MAX_FLIP
    assert s["fold_segment_fraction"] == 0.0 and s["effect"] == "robust"
    # 0 flips among 100 samples cannot bound the rate below 2 % at 95 %: robust needs >= 149
    small = diagnose_model(model, x[:100], y[:100], "rk4", 64, reference="exact", dtype=torch.float64)
    assert small.scalars["flips"] == 0 and small.scalars["effect"] == "undetermined"
    # unless the 100 are the whole test set: then 0 flips is exact
    whole = diagnose_model(model, x[:100], y[:100], "rk4", 64, reference="exact", dtype=torch.float64,
                           population=100)
    assert whole.scalars["effect"] == "robust"
