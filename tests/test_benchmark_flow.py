"""A plain FFJORD-style flow (tests/ffjord_plain.py: torchdiffeq.odeint on (z, delta_logp), its
own log_prob and sample) benchmarked by substitution gets the rows of the same weights through
the ``cnf`` family (issue 30 item 7; docs/cnf.md "Plain models")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import robustbench_ode as rb
from robustbench_ode.core.errors import SuiteError
from tests.ffjord_plain import FFJORD, family_twin

GRID = [{"solver": "euler", "steps": [2, 8]}, {"solver": "rk4", "steps": [4]},
        {"solver": "dopri5", "tol": [1e-3]}]
TRAIN = {"solver": "euler", "steps": 8}
SAME = ["test_solver", "test_steps", "test_tol", "is_train_config", "is_reference", "status", "nfe",
        "steps_taken", "accepted", "rejected", "n_test"]
CLOSE = ["nll", "loss", "energy_distance", "drift"]


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    plain = FFJORD(hidden=16, options={"step_size": 1 / 8})
    with torch.no_grad():  # a flow that is not the identity: larger output weights
        plain.odefunc.velocity.net[-1].weight.mul_(3.0)
    data = rb.DATASETS.get("two_moons")(0, n_train=8, n_test=60)
    return plain, family_twin(plain, hidden=16), data


def _bench(model, data, **kw):
    return rb.benchmark(model, data, GRID, diagnostics=False, batch_size=25, **kw)


def test_a_plain_flow_gets_the_familys_rows(pair):
    plain, family, data = pair
    ours = _bench(plain, data)  # train inferred from its odeint call: euler, step_size 1/8
    theirs = _bench(family, data, train=TRAIN)
    assert ours.inferred and (ours.train.solver, ours.train.steps) == ("euler", 8)
    a, b = ours.table, theirs.table
    assert len(a) == 5 and set(a["status"]) == {"ok"}
    assert a[SAME].astype(str).equals(b[SAME].astype(str)), (a[SAME], b[SAME])
    for col in CLOSE:
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-5, atol=1e-6,
                                   equal_nan=True, err_msg=col)
    assert a["nll"].notna().all() and a["energy_distance"].notna().all()
    assert a["accuracy"].isna().all() and a["nll"].nunique() > 2  # the solvers disagree: a real test
    for col in ("nll_train", "nll_ref", "nll_gap", "energy_train", "energy_ref"):
        assert math.isclose(ours.summary[col].iloc[0], theirs.summary[col].iloc[0], rel_tol=1e-5,
                            abs_tol=1e-6), col


def test_samples_alone_are_density_data_and_no_sample_method_is_nan(pair):
    plain, _, data = pair

    class NoSample(FFJORD):
        sample = None

    bare = NoSample(hidden=16)
    bare.load_state_dict(plain.state_dict())
    r = rb.benchmark(bare, data.x_test, [{"solver": "euler", "steps": [4]}], diagnostics=False)
    assert r.table["nll"].notna().all() and r.table["energy_distance"].isna().all()
    assert r.table["nll"].iloc[0] == pytest.approx(_bench(plain, data).table["nll"].iloc[0], rel=1e-6)


def test_a_density_model_returning_the_wrong_shape_is_one_line(pair):
    plain, _, data = pair

    class Wide(FFJORD):
        def log_prob(self, x):
            return super().log_prob(x).unsqueeze(1).expand(-1, 2)

    with pytest.raises(SuiteError, match="one number per sample"):
        rb.benchmark(Wide(hidden=16), data, GRID, diagnostics=False)
