"""The XOR case: dataset, elliptic fan and its exact flow, the ``exact`` reference solver."""

from __future__ import annotations

import math

import pytest
import torch

from robustbench_ode import DATASETS, MODELS, SOLVERS, Status, solve
from robustbench_ode.config import parse_suite
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.datasets.xor import XOR_LABELS, XOR_POINTS
from robustbench_ode.harness.cell import cells
from robustbench_ode.harness.execution import run_cells
from robustbench_ode.models import EllipticFan, SolveSpec
from robustbench_ode.models.fields import MLP

FOUR = torch.tensor(XOR_POINTS, dtype=torch.float64)

# (centre, axis ratio, w0, w1): a centred circle, an off-centre ellipse, one like a trained model
FANS = [((0.0, 0.0), 1.0, 0.0, 1.0), ((0.3, 0.6), 1.4, -1.0, 2.0), ((0.6, -0.7), 1.3, -4.0, 3.0)]


def _fan(params) -> EllipticFan:
    return EllipticFan(*params).double()


@pytest.mark.parametrize("params", FANS)
def test_exact_flow_matches_dopri5(params):
    fan = _fan(params)
    with torch.no_grad():
        ref = solve(fan, FOUR, "dopri5", rtol=1e-9, atol=1e-9, max_steps=100_000)
        exact = fan.exact_flow(FOUR, 0.0, 1.0)
    assert ref.status is Status.OK
    assert (exact - ref.z).abs().max().item() < 1e-6
    # and it is not trivially the identity: the points really moved
    assert (exact - FOUR).abs().max().item() > 0.1


@pytest.mark.parametrize("params", FANS)
def test_exact_flow_keeps_elliptic_radius_and_composes(params):
    fan = _fan(params)
    with torch.no_grad():
        z1 = fan.exact_flow(FOUR, 0.0, 1.0)
        u0, v0, _ = fan._normalised(FOUR)
        u1, v1, _ = fan._normalised(z1)
        assert torch.allclose(u0**2 + v0**2, u1**2 + v1**2, atol=1e-12)
        halves = fan.exact_flow(fan.exact_flow(FOUR, 0.0, 0.4), 0.4, 1.0)
        assert torch.allclose(halves, z1, atol=1e-12)


def test_euler_step_leaves_the_ellipse():
    # The mechanism of the effect: one Euler step scales the elliptic radius by sqrt(1 + h^2 w^2).
    fan, h = _fan(FANS[1]), 0.5
    with torch.no_grad():
        z1 = solve(fan, FOUR, "euler", steps=1, t_span=(0.0, h)).z
        u0, v0, _ = fan._normalised(FOUR)
        u1, v1, _ = fan._normalised(z1)
        w = fan.omega(u0**2 + v0**2)
        assert torch.allclose((u1**2 + v1**2).sqrt(), (u0**2 + v0**2).sqrt() * (1 + h**2 * w**2).sqrt())


def test_xor_dataset_is_the_four_points():
    data = DATASETS.get("xor")(0)
    assert data.x_train.tolist() == XOR_POINTS.tolist() == data.x_test.tolist()
    assert data.y_train.tolist() == XOR_LABELS.tolist() == [0, 1, 1, 0]
    assert data.n_classes == 2 and data.in_shape == (2,)


def test_xor_noisy_samples_are_balanced_and_seeded():
    make = DATASETS.get("xor")
    kw = {"n_train": 400, "n_test": 100, "noise": 0.1}
    a, b, c = make(3, **kw), make(3, **kw), make(4, **kw)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.x_train[:100], a.x_test)
    assert a.y_train.bincount().tolist() == [200, 200]
    # each sample is near the corner of its class
    nearest = torch.cdist(a.x_train.double(), torch.tensor(XOR_POINTS)).argmin(1)
    assert (torch.tensor(XOR_LABELS)[nearest] == a.y_train).float().mean() > 0.99


def test_exact_solver_fails_cleanly_without_exact_flow():
    sol = SOLVERS.get("exact").solve(MLP(2), torch.zeros(3, 2), (0.0, 1.0))
    assert sol.status is Status.FAILED and "exact_flow" in sol.stats.message
    assert not SOLVERS.get("exact").adaptive


def _suite(model=None, test=None, train=None):
    return {"name": "xor_tiny", "dataset": {"name": "xor"},
            "model": model or {"name": "elliptic_fan"},
            "training": {"iterations": 5, "batch_size": 4, "lr": 0.05},
            "train": {"grid": train or [{"solver": "euler", "steps": [1]}]},
            "test": test or [{"solver": "rk4", "steps": [8]}, {"solver": "exact"}]}


@pytest.mark.parametrize("bad, key", [
    ({"test": [{"solver": "exact", "steps": [4]}]}, "test.0"),
    ({"test": [{"solver": "euler"}]}, "test.0"),
    ({"train": [{"solver": "exact", "steps": [1]}]}, "train.grid.0"),
])
def test_exact_config_errors_name_the_key(bad, key):
    with pytest.raises(SuiteError, match=key.replace(".", r"\.")):
        parse_suite(_suite(**bad))


@pytest.mark.parametrize("model", ["elliptic_fan", "mlp"])
def test_exact_is_a_row_of_a_tiny_suite(model):
    suite = parse_suite(_suite(model={"name": model}))
    cell = cells(suite)[0]
    (result,) = run_cells([cell], suite.test, suite.reference)
    exact = [r for r in result.rows if r["test_solver"] == "exact"]
    assert len(exact) == 1 and exact[0]["test_steps"] is None and exact[0]["test_tol"] is None
    if model == "elliptic_fan":
        assert exact[0]["status"] == "ok" and 0.0 <= exact[0]["accuracy"] <= 1.0
    else:  # an MLP has no closed-form flow: a status in the table, the suite goes on
        assert exact[0]["status"] == "failed" and math.isnan(exact[0]["accuracy"])
        assert all(r["status"] == "ok" for r in result.rows if r["test_solver"] != "exact")


def test_one_euler_step_solves_xor_but_the_exact_flow_does_not():
    # The experiment in miniature (docs/xor_fan.md): fit the fan with one Euler step.
    torch.manual_seed(0)
    model = MODELS.get("elliptic_fan")((2,), 2, centre_x=0.3, centre_y=0.6, w1=0.5)
    x, y = torch.tensor(XOR_POINTS, dtype=torch.float32), torch.tensor(XOR_LABELS)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    train = SolveSpec("euler", steps=1)
    for _ in range(400):
        loss = torch.nn.functional.cross_entropy(model(x, train)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = {s: (model(x, s)[0].argmax(1) == y).float().mean().item()
               for s in (train, SolveSpec("exact"), SolveSpec("rk4", steps=256))}
    assert acc[train] == 1.0
    assert acc[SolveSpec("exact")] <= 0.75 and acc[SolveSpec("rk4", steps=256)] <= 0.75


def test_fan_pictures_and_trajectories(tmp_path):
    from robustbench_ode.outputs.tables import read_results, results_frame, write_csv
    from robustbench_ode.run.store import CellStore
    from robustbench_ode.studies.xor_fan import write_fan

    suite = parse_suite(_suite(train=[{"solver": "euler", "steps": [2]}]))
    cell = cells(suite)[0]
    (result,) = run_cells([cell], suite.test, suite.reference)
    CellStore(tmp_path).save(result)
    write_csv(results_frame(result.rows), tmp_path / "results.csv")
    written = write_fan([cell], read_results(tmp_path / "results.csv"), tmp_path)
    names = {p.name for p in written}
    assert {"trajectories.csv", "windermere.png", "accuracy_exact.png"} <= names
    assert all((tmp_path / n).stat().st_size > 0 for n in names)
    import pandas as pd

    traj = pd.read_csv(tmp_path / "trajectories.csv")
    exact_end = traj[(traj.solver == "exact")].groupby("point").tail(1)
    assert len(exact_end) == 4 and set(traj.solver) == {"exact", "euler", "midpoint", "rk4"}


def test_the_xor_fan_command_has_runs_gates(tmp_path, capsys, monkeypatch):
    """``xor-fan`` refuses what ``run`` refuses: a suite beyond the cost limit (unless --force) and
    a folder holding another version of the suite (unless --update)."""
    import json

    from robustbench_ode import commands
    from robustbench_ode.cli import main

    def never(*args, **kwargs):
        raise AssertionError("the suite beyond the cost limit was run")

    real = commands.run_suite
    monkeypatch.setattr(commands, "run_suite", never)

    path, out = tmp_path / "s.yaml", tmp_path / "out"
    huge = _suite()
    huge["training"]["iterations"] = 10_000_000
    huge["train"]["seeds"] = list(range(1000))
    huge["train"]["grid"] = [{"solver": "rk4", "steps": [1000]}]
    path.write_text(json.dumps(huge))
    assert main(["xor-fan", str(path), "--out", str(out), "--no-progress"]) == 2
    assert "--force" in capsys.readouterr().err and not out.exists()
    monkeypatch.setattr(commands, "run_suite", real)
    path.write_text(json.dumps(_suite()))
    assert main(["xor-fan", str(path), "--out", str(out), "--no-progress"]) == 0
    changed = _suite()
    changed["training"]["iterations"] = 6
    path.write_text(json.dumps(changed))
    capsys.readouterr()
    assert main(["xor-fan", str(path), "--out", str(out), "--no-progress"]) == 2
    assert "--update" in capsys.readouterr().err
    assert main(["xor-fan", str(path), "--out", str(out), "--no-progress", "--update"]) == 0
    assert (out / "trajectories.csv").is_file() and any((out / "previous").iterdir())
