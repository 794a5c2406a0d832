"""Time-series regression: the datasets against independent solves, the trajectory model against
the exact flow of a linear field, the suite end to end, and the bad combinations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from torch import nn

from robustbench_ode import DATASETS, MODELS, Status
from robustbench_ode.cli import main
from robustbench_ode.config import DatasetConfig, ModelConfig, TrainingConfig
from robustbench_ode.datasets.timeseries import observation_times
from robustbench_ode.harness.cell import CellConfig
from robustbench_ode.harness.evaluation import evaluate
from robustbench_ode.harness.grouping import stack_key
from robustbench_ode.models import SolveSpec, TrajectoryModel, allocate_steps
from robustbench_ode.outputs.gate import regressions
from robustbench_ode.outputs.leaderboard import leaderboard

LV = (1.5, 1.0, 3.0, 1.0)


def _lv(t, z):
    a, b, c, d = LV
    return [a * z[0] - b * z[0] * z[1], d * z[0] * z[1] - c * z[1]]


def _vdp(t, z, mu=1.0):
    return [z[1], mu * (1 - z[0] ** 2) * z[1] - z[0]]


@pytest.mark.parametrize("name, rhs", [("lotka_volterra", _lv), ("van_der_pol", _vdp)])
def test_clean_trajectories_match_an_independent_solve(name, rhs):
    # scipy's DOP853, one trajectory at a time: not the generator's code, method or batching
    d = DATASETS.get(name)(3, n_train=4, n_test=3, n_points=10, sampling="irregular")
    t = d.times.numpy()
    for x, y in zip(d.x_test.double().numpy(), d.y_test.double().numpy()):
        ref = solve_ivp(rhs, (0.0, t[-1]), x, method="DOP853", t_eval=t[1:], rtol=1e-12, atol=1e-12)
        # float32 storage is the only difference: relative 1e-7, states of order 1-8
        np.testing.assert_allclose(y, ref.y.T, rtol=1e-6, atol=1e-6)


def test_van_der_pol_at_mu_0_is_the_harmonic_oscillator():
    d = DATASETS.get("van_der_pol")(0, n_train=5, n_test=5, n_points=8, t_end=7.0, mu=0.0)
    t = d.times[1:].numpy()
    x0, v0 = d.x_train.double().numpy().T
    exact = np.stack([x0[:, None] * np.cos(t) + v0[:, None] * np.sin(t),
                      -x0[:, None] * np.sin(t) + v0[:, None] * np.cos(t)], -1)
    np.testing.assert_allclose(d.y_train.double().numpy(), exact, rtol=1e-6, atol=1e-6)


def test_initial_states_in_their_boxes():
    lv = DATASETS.get("lotka_volterra")(1, n_train=500, n_test=10)
    assert (lv.x_train[:, 0] >= 1).all() and (lv.x_train[:, 0] <= 5).all()
    assert (lv.x_train[:, 1] >= 0.5).all() and (lv.x_train[:, 1] <= 3).all()
    assert (lv.y_train > 0).all()  # populations stay positive
    vdp = DATASETS.get("van_der_pol")(1, n_train=500, n_test=10)
    assert vdp.x_train.abs().max() <= 2.5


def test_irregular_times_sorted_in_range_shared_and_seeded():
    d = DATASETS.get("lotka_volterra")(4, n_train=6, n_test=6, n_points=12, t_end=3.0,
                                       sampling="irregular")
    t = d.times
    assert len(t) == 13 and t[0] == 0 and t[-1] == 3.0 and (t.diff() > 0).all()
    assert not torch.allclose(t.diff(), t.diff()[0].expand(12))  # not the regular grid
    assert np.array_equal(t.numpy(), observation_times(4, 12, 3.0, "irregular"))  # one set, from the seed
    assert not np.array_equal(t.numpy(), observation_times(5, 12, 3.0, "irregular"))
    regular = DATASETS.get("lotka_volterra")(4, n_train=6, n_test=6, n_points=12, t_end=3.0)
    assert torch.allclose(regular.times, torch.linspace(0, 3.0, 13, dtype=torch.float64))


def test_noise_only_on_training_targets():
    clean = DATASETS.get("van_der_pol")(2, n_train=200, n_test=50, noise=0.0)
    noisy = DATASETS.get("van_der_pol")(2, n_train=200, n_test=50, noise=0.1)
    assert torch.equal(clean.x_train, noisy.x_train)  # exact initial states
    assert torch.equal(clean.x_test, noisy.x_test) and torch.equal(clean.y_test, noisy.y_test)
    residual = noisy.y_train - clean.y_train
    assert residual.std().item() == pytest.approx(0.1, rel=0.05)
    assert residual.mean().abs().item() < 0.01


@pytest.mark.parametrize("times, steps", [((0.0, 0.5, 1.0, 1.5, 2.0), 8),
                                          ((0.0, 0.1, 0.2, 1.0, 1.05, 2.0), 40),
                                          ((0.0, 0.1, 0.2, 1.0, 1.05, 2.0), 3),
                                          ((0.0, 1.0), 7)])
def test_step_allocation(times, steps):
    counts = allocate_steps(times, steps)
    k = len(times) - 1
    assert len(counts) == k and min(counts) >= 1
    assert sum(counts) == max(steps, k)
    lengths = np.diff(times)
    h = lengths / np.array(counts)
    if steps > k:  # no other allocation of the same total has a shorter longest step
        for i in range(k):
            for j in range(k):
                if i != j and counts[j] > 1:
                    moved = np.array(counts)
                    moved[i] += 1
                    moved[j] -= 1
                    assert (lengths / moved).max() >= h.max() - 1e-12
    if len(set(np.round(lengths, 12))) == 1 and steps % k == 0:
        assert counts == [steps // k] * k


class _Linear(nn.Module):
    """dz/dt = A z: its flow is expm(A t)."""

    def __init__(self, a: np.ndarray) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, t, z):
        return z @ self.a.T


A = np.array([[-0.3, 1.0], [-1.0, -0.1]])
TIMES = (0.0, 0.2, 0.5, 1.3, 1.4, 2.0)


def test_trajectory_model_against_the_exact_flow_of_a_linear_field():
    model = TrajectoryModel(_Linear(A), TIMES)
    z0 = torch.tensor([[1.0, 0.5], [-0.2, 2.0]], dtype=torch.float64)
    exact = np.stack([z0.numpy() @ expm(A * t).T for t in TIMES[1:]], 1)
    z, stats = model(z0, SolveSpec("dopri5", rtol=1e-10, atol=1e-10))
    assert z.shape == (2, 5, 2) and stats.status is Status.OK
    np.testing.assert_allclose(z.detach().numpy(), exact, atol=1e-8)
    assert stats.accepted == stats.steps >= 5 and stats.rejected is not None
    # Euler's N steps, spread over the intervals: each interval is (I + A h)^n on its own, so the
    # prediction lands on the observation times exactly as this product says
    n = 50
    z, stats = model(z0, SolveSpec("euler", steps=n))
    counts = allocate_steps(TIMES, n)
    state, expected = z0.numpy(), []
    for (t0, t1), c in zip(zip(TIMES[:-1], TIMES[1:]), counts):
        state = state @ np.linalg.matrix_power(np.eye(2) + A * (t1 - t0) / c, c).T
        expected.append(state)
    np.testing.assert_allclose(z.detach().numpy(), np.stack(expected, 1), atol=1e-12)
    assert stats.nfe == stats.steps == n
    # and rk4 converges to the flow at fourth order
    errors = [np.abs(model(z0, SolveSpec("rk4", steps=s))[0].detach().numpy() - exact).max()
              for s in (40, 80)]
    assert 12 < errors[0] / errors[1] < 20


def test_failed_interval_stops_the_solve_with_its_status():
    model = TrajectoryModel(_Linear(A), TIMES)
    z0 = torch.ones(2, 2, dtype=torch.float64)
    z, stats = model(z0, SolveSpec("dopri5", rtol=1e-12, atol=1e-12, max_steps=2))
    assert stats.status is Status.MAX_STEPS
    assert z.shape == (2, 5, 2) and torch.isnan(z[:, 1:]).all()
    z, stats = model(z0, SolveSpec("exact"))  # a learned field has no closed form
    assert stats.status is Status.FAILED and torch.isnan(z).all()


def test_evaluate_reports_the_mean_squared_trajectory_error():
    data = DATASETS.get("van_der_pol")(0, n_train=4, n_test=7, n_points=5)
    torch.manual_seed(0)
    model = MODELS.get("trajectory")(data.in_shape, 0, times=data.times, hidden=8)
    spec = SolveSpec("rk4", steps=10)
    row = evaluate(model, data, spec, batch_size=3)  # batches 3, 3, 1
    with torch.no_grad():
        pred, _ = model(data.x_test, spec)
    expected = ((pred.double() - data.y_test.double()) ** 2).mean().item()
    assert row["mse"] == pytest.approx(expected, rel=1e-6) and row["loss"] == row["mse"]
    assert np.isnan(row["accuracy"]) and row["status"] == "ok"


def test_trajectory_cells_are_seed_grouped_through_vmap():
    """Seeds of a trajectory model stack (torch.vmap; equality in tests/test_stack_vmap.py)."""
    cell = CellConfig(dataset=DatasetConfig(name="van_der_pol"), model=ModelConfig(name="trajectory"),
                      training=TrainingConfig(), solver="euler", steps=20)
    other = cell.model_copy(update={"seed": 1})
    assert stack_key(cell) is not None and stack_key(cell) == stack_key(other)


TINY = """
name: tiny_vdp
dataset: {name: van_der_pol, n_train: 32, n_test: 16, n_points: 4, t_end: 2.0}
model: {name: trajectory, hidden: 8}
training: {iterations: 5, batch_size: 16, lr: 0.01}
train:
  seeds: [0]
  grid:
    - {solver: euler, steps: [4]}
    - {solver: dopri5, tol: [0.01]}
test:
  - {solver: euler, steps: [4, 16]}
  - {solver: rk4, step_factors: [1]}
  - {solver: dopri5, tol: [0.001]}
"""


def test_tiny_van_der_pol_suite_end_to_end(tmp_path):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY)
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    df = pd.read_csv(out / "results.csv")
    cols = list(df.columns)
    assert cols.index("mse") == cols.index("accuracy") + 1
    ok = df[df["status"] == "ok"]
    assert len(ok) == len(df) > 0
    assert np.isfinite(ok["mse"]).all() and (ok["mse"] > 0).all() and ok["accuracy"].isna().all()
    assert (ok["loss"] == ok["mse"]).all()
    # the drift of the predicted trajectories is on every train row
    assert np.isfinite(df.loc[df["is_train_config"], "drift"]).all()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 and np.isfinite(summary["mse_ref_ratio"]).all()
    assert (summary["mse_worst"] >= summary["mse_train"]).all()
    assert not (out / "critical.csv").exists()  # accuracy based: skipped for regression
    log = pd.read_csv(out / "training.csv")
    assert np.isfinite(log["mse"]).all() and log["accuracy"].isna().all()
    assert "mse_train" in (out / "report.html").read_text()
    # the leaderboard ranks by the reference trajectory error, lower first
    board = leaderboard([out])
    assert board["mse_ref"].is_monotonic_increasing and board["rank"].tolist() == [1, 2]
    # the gate: a raised trajectory error is a regression, like a lowered accuracy
    worse = df.assign(mse=df["mse"] * 1.5)
    found = regressions(worse, df)
    assert found and all(r.kind == "mse" for r in found)
    assert regressions(df, df) == []


@pytest.mark.parametrize("edit, expected", [
    (("model: {name: trajectory, hidden: 8}", "model: {name: mlp}"), "is a classifier"),
    (("name: van_der_pol, n_train", "name: sphere2, n_train"), "unknown key"),
    (("dataset: {name: van_der_pol, n_train: 32, n_test: 16, n_points: 4, t_end: 2.0}",
      "dataset: {name: sphere2}"), "fits trajectories"),
    (("hidden: 8}", "hidden: 8, times: [0, 1]}"), "model.times: unknown key"),
    (("lr: 0.01}", "lr: 0.01, adaptation: {mode: step}}"), "training.adaptation"),
    (("lr: 0.01}", "lr: 0.01, regularization: {kinetic: 0.1}}"), "training.regularization"),
    (("t_end: 2.0}", "t_end: 2.0, sampling: random}"), "dataset.sampling"),
])
def test_bad_combinations_exit_2_with_one_line(tmp_path, capsys, edit, expected):
    suite = tmp_path / "bad.yaml"
    suite.write_text(TINY.replace(*edit))
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
