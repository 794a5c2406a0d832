"""Robustness metrics on cases with known answers.

A linear vector field dz/dt = A z has the exact flow expm(A); explicit Euler with N steps gives
(I + A/N)^N. With a head that labels a point by the sign of its first coordinate, every metric
of the summary has a closed form.
"""

import math

import pandas as pd
import pytest
import torch
from torch import nn

from robustbench_ode import benchmark
from robustbench_ode.core.status import Status
from robustbench_ode.datasets import DataSplits
from robustbench_ode.harness.evaluation import evaluate, evaluate_points, relative_distance
from robustbench_ode.harness.grid import TestPoint
from robustbench_ode.models import SolveSpec
from robustbench_ode.models.interface import as_classifier
from robustbench_ode.outputs.summary import summarize

W = math.pi / 2  # exact flow: a quarter turn
A = torch.tensor([[0.0, -W], [W, 0.0]], dtype=torch.float64)
REF = SolveSpec("dopri5", rtol=1e-7, atol=1e-7)


class LinearField(nn.Module):
    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a.float())  # evaluation feeds float32 (DataSplits.prepare)

    def forward(self, t, z):
        return z @ self.a.T


class SignHead(nn.Module):
    """Class 1 iff the first coordinate is positive."""

    def forward(self, z):
        return torch.stack([-z[:, 0], z[:, 0]], 1)


class LinearModel(nn.Module):
    """Defined here, outside the package: the benchmark() interface (input_map, field, head)."""

    def __init__(self) -> None:
        super().__init__()
        self.input_map = nn.Identity()
        self.field = LinearField(A)
        self.head = SignHead()


def euler_flow(n: int) -> torch.Tensor:
    return torch.linalg.matrix_power(torch.eye(2, dtype=torch.float64) + A / n, n)


@pytest.fixture(scope="module")
def data():
    """Points in float64 for the closed forms; the model runs them in float32, so points whose
    label a rounding error could flip (near the boundary under any flow used) are dropped."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 2, generator=g, dtype=torch.float64)
    flows = [torch.linalg.matrix_exp(A)] + [euler_flow(n) for n in (1, 2, 4, 8, 16)]
    margin = torch.stack([(x @ f.T)[:, 0].abs() / (x @ f.T).norm(dim=1) for f in flows]).min(0).values
    x = x[margin > 1e-3][:400]
    y = ((x @ torch.linalg.matrix_exp(A).T)[:, 0] > 0).long()  # labels from the exact flow
    return x, y


def splits(x, y) -> DataSplits:
    return DataSplits(x[:0], y[:0], x, y, n_classes=2)


def final_states(model, data, spec, batch_size):
    """The ODE block's final states on the test split (what evaluate keeps for the drift)."""
    keep = []
    row = evaluate(model, data, spec, batch_size, states=keep)
    return (torch.cat(keep) if keep else None), Status(row["status"])


def drift(model, data, spec, ref, batch_size):
    """The drift of two separate solves."""
    (z, _), (z_ref, _) = (final_states(model, data, s, batch_size) for s in (spec, ref))
    return relative_distance(z, z_ref)


def test_reference_solve_matches_matrix_exponential(data):
    x, y = data
    model = as_classifier(LinearModel())
    z, status = final_states(model, splits(x, y), REF, batch_size=128)
    assert status is Status.OK
    assert relative_distance(z, x @ torch.linalg.matrix_exp(A).T) < 1e-5


@pytest.mark.parametrize("steps", [1, 2, 8])
def test_drift_is_the_distance_of_euler_to_the_exact_flow(data, steps):
    x, y = data
    model = as_classifier(LinearModel())
    got = drift(model, splits(x, y), SolveSpec("euler", steps=steps), REF, batch_size=128)
    exact = x @ torch.linalg.matrix_exp(A).T
    expected = ((x @ euler_flow(steps).T - exact).norm(dim=1) / exact.norm(dim=1)).mean().item()
    assert got == pytest.approx(expected, rel=1e-4)
    assert got > 0.01  # Euler is visibly off at these step counts


def test_relative_distance_known_values():
    z_ref = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    z = torch.tensor([[3.0, 4.0], [1.0, 1.0]])  # distances 0 and 1, norms 5 and 1
    assert relative_distance(z, z_ref) == pytest.approx(0.5)


def test_benchmark_summary_has_closed_form_metrics(data):
    x, y = data
    grid = [{"solver": "euler", "steps": [1, 2, 4, 16]}, {"solver": "rk4", "steps": [8]}]
    result = benchmark(LinearModel(), (x, y), grid, train={"solver": "euler", "steps": 2})
    table, s = result.table, result.summary.iloc[0]

    def acc(flow):
        return float((((x @ flow.T)[:, 0] > 0).long() == y).double().mean())

    acc_train = acc(euler_flow(2))
    assert s["acc_train"] == pytest.approx(acc_train)
    assert s["acc_ref"] == 1.0  # the labels come from the exact flow
    assert s["ode_gap"] == pytest.approx(acc_train - 1.0)
    assert s["ode_gap"] < -0.05  # the case is not trivial
    worst = min(acc(euler_flow(n)) for n in (1, 2, 4, 16))
    assert s["worst_drop"] == pytest.approx(acc_train - worst)
    assert s["nfe_train"] == 2 and s["nfe_ref"] > 2
    exact = x @ torch.linalg.matrix_exp(A).T
    assert s["drift"] == pytest.approx(
        ((x @ euler_flow(2).T - exact).norm(dim=1) / exact.norm(dim=1)).mean().item(), rel=1e-4)
    assert s["n_failed"] == 0
    # the table: the train row first, the reference row added since the grid lacks it
    assert bool(table["is_train_config"].iloc[0]) and table["is_reference"].sum() == 1
    assert len(table) == 1 + 3 + 1 + 1  # train, euler 1/4/16 (2 is the train row), rk4 8, ref


def test_summary_counts_failures_by_status():
    base = {"cell": "c", "dataset": "d", "model": "m", "seed": 0, "train_solver": "euler",
            "train_steps": 4, "train_tol": None, "test_tol": None}
    rows = [
        {**base, "test_solver": "euler", "test_steps": 4, "accuracy": 0.9, "nfe": 4, "status": "ok",
         "is_train_config": True, "is_reference": False, "drift": 0.25},
        {**base, "test_solver": "euler", "test_steps": 8, "accuracy": 0.6, "nfe": 8, "status": "ok",
         "is_train_config": False, "is_reference": False},
        {**base, "test_solver": "dopri5", "test_steps": None, "test_tol": 1e-7, "accuracy": 0.7,
         "nfe": 50, "status": "ok", "is_train_config": False, "is_reference": True},
        {**base, "test_solver": "dopri5", "test_steps": None, "test_tol": 1e-3,
         "accuracy": float("nan"), "nfe": 9, "status": "max_steps", "is_train_config": False,
         "is_reference": False},
        {**base, "test_solver": "rk4", "test_steps": 1, "accuracy": float("nan"), "nfe": 4,
         "status": "non_finite", "is_train_config": False, "is_reference": False},
    ]
    s = summarize(pd.DataFrame(rows)).iloc[0]
    assert (s["acc_train"], s["acc_ref"]) == (0.9, 0.7)
    assert s["ode_gap"] == pytest.approx(0.2)
    assert s["worst_drop"] == pytest.approx(0.3)  # 0.9 -> 0.6; failed rows do not count
    assert (s["nfe_train"], s["nfe_ref"], s["drift"]) == (4, 50, 0.25)
    assert (s["n_failed"], s["failed_max_steps"], s["failed_non_finite"], s["failed_oom"]) == (2, 1, 1, 0)


def test_failed_reference_gives_nan_not_a_crash(data):
    x, y = data
    result = benchmark(LinearModel(), (x, y), [{"solver": "euler", "steps": [4]}],
                       train={"solver": "euler", "steps": 2}, max_steps=2)
    s = result.summary.iloc[0]
    assert math.isnan(s["acc_ref"]) and math.isnan(s["ode_gap"]) and math.isnan(s["drift"])
    assert s["failed_max_steps"] == 1


def test_harness_drift_reuses_the_evaluated_states(data):
    """evaluate_points gives the drift of the two separate solves, without solving again:
    the field is called exactly as often as the rows' NFE say."""
    x, y = data
    net = LinearModel()
    calls = []
    net.field.register_forward_hook(lambda *_: calls.append(1))
    model, d = as_classifier(net), splits(x, y)
    train = SolveSpec("euler", steps=2)
    points = [TestPoint(train, None, True), TestPoint(SolveSpec("rk4", steps=4)),
              TestPoint(REF, None, False, True)]
    rows = evaluate_points(model, d, points, batch_size=128)
    batches = math.ceil(len(y) / 128)
    assert len(calls) == pytest.approx(sum(r["nfe"] for r in rows) * batches)
    calls.clear()
    expected = drift(model, d, train, REF, batch_size=128)
    assert rows[0]["drift"] == pytest.approx(expected, rel=1e-6) and expected > 0.01
    assert "drift" not in rows[1] and "drift" not in rows[2]
