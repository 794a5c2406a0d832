"""Dupont et al. 2019's representability cases (docs/dupont.md): the exact argument (a 1-D flow is
increasing, so a NODE's MSE on g(x) = -x is at least the isotonic bound), a tiny NODE and ANODE
trained here, and every number docs/dupont.md states, recomputed from the committed runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from robustbench_ode import DATASETS, MODELS
from robustbench_ode.models.spec import SolveSpec
from robustbench_ode.studies.dupont import draw, isotonic_bound, reflection_bound

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "dupont.md"
REFLECTION = ROOT / "results" / "dupont_reflection"
ANODE = ROOT / "results" / "anode"
SPEC = SolveSpec("rk4", steps=10)


def test_isotonic_bound_known_answers():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert isotonic_bound(x, x) == 0.0  # increasing data: fitted exactly
    assert isotonic_bound(x, -x) == pytest.approx(np.var(-x))  # decreasing: the constant mean
    # one violation pooled: fit (0, 1.5, 1.5, 3) of (0, 2, 1, 3)
    assert isotonic_bound(x, np.array([0.0, 2.0, 1.0, 3.0])) == pytest.approx(0.125)
    assert isotonic_bound(x[::-1], np.array([3.0, 1.0, 2.0, 0.0])) == pytest.approx(0.125)


def _train(augment: int, seed: int = 0, iterations: int = 150):
    torch.manual_seed(seed)
    data = DATASETS.get("reflection")(seed, n_train=128, n_test=128)
    model = MODELS.get("augmented_trajectory")(data.in_shape, 0, times=data.times, hidden=16,
                                               augment=augment)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(iterations):
        opt.zero_grad()
        loss = ((model(data.x_train, SPEC)[0] - data.y_train) ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        mse = float(((model(data.x_test, SPEC)[0] - data.y_test) ** 2).mean())
    return model, data, mse


@pytest.fixture
def one_thread():
    """Tiny solves: a second thread only adds contention (restored after the test)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_trained_node_is_monotone_and_held_at_the_bound_anode_fits(one_thread):
    node, data, node_mse = _train(0)
    grid = torch.linspace(-1.0, 1.0, 201)[:, None]
    with torch.no_grad():
        mapped = node(grid, SPEC)[0][:, 0, 0]
    assert (mapped.diff() > 0).all()  # the 1-D flow map is increasing: it cannot reach -x
    bound = isotonic_bound(data.x_test[:, 0].double().numpy(), data.y_test[:, 0, 0].double().numpy())
    assert node_mse >= bound - 1e-6 and node_mse > 0.5
    _, _, anode_mse = _train(1)
    assert anode_mse < 0.05  # one extra dimension: (x, 0) rotates to (-x, 0)


def _table(heading: str) -> list[list[str]]:
    section = DOC.read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("|")]
    return rows[2:]


def _cell(results: pd.DataFrame, model: str, seed: int) -> float:
    rows = results[(results["model"] == model) & (results["seed"] == seed) & results["is_train_config"]]
    assert len(rows) == 1 and rows["test_solver"].iloc[0] == "rk4" and rows["test_steps"].iloc[0] == 20
    return float(rows["mse"].iloc[0])


def test_the_reflection_table_is_the_committed_run():
    results = pd.read_csv(REFLECTION / "results.csv")
    log = pd.read_csv(REFLECTION / "training.csv")
    body = _table("## g(x) = -x in 1-D")
    assert [int(r[0]) for r in body] == sorted(results["seed"].unique().tolist()) == [0, 1, 2]
    for row in body:
        seed = int(row[0])
        n_test = int(results.loc[results["seed"] == seed, "n_test"].iloc[0])
        last = {m: float(log[(log["model"] == m) & (log["seed"] == seed)]
                         .sort_values("iteration")["loss"].iloc[-1]) for m in ("node", "anode")}
        node, bound = _cell(results, "node", seed), reflection_bound(seed, n_test)
        assert row[1:] == [f"{node:.4f}", f"{bound:.4f}", f"{_cell(results, 'anode', seed):.1e}",
                           f"{last['node']:.4f}", f"{last['anode']:.1e}"], row
        # the exact argument, on the committed run: every ODE-accurate test of the NODE is held
        accurate = results[(results["model"] == "node") & (results["seed"] == seed)
                           & (results["test_solver"] != "euler")]
        assert (accurate["mse"] >= bound - 1e-6).all() and node >= bound


def test_the_stated_bound_for_these_intervals_is_e_x_squared():
    assert "E[x^2] = 7/12" in DOC.read_text()
    assert (1.0 ** 3 - 0.5 ** 3) / 3 / 0.5 == pytest.approx(7 / 12)
    assert reflection_bound(0, 200) == pytest.approx(7 / 12, abs=0.03)


def test_the_concentric_rings_table_is_the_committed_anode_run():
    log = pd.read_csv(ANODE / "training.csv", usecols=["dataset", "model", "seed", "train_solver",
                                                       "iteration", "loss"])
    body = _table("## Concentric rings")
    assert {(r[0], int(r[1])) for r in body} == {(d, s) for d in ("annuli", "sphere2") for s in (0, 1)}
    for dataset, seed, *stated in body:
        means = []
        for model in ("node", "anode"):
            rows = log[(log["dataset"] == dataset) & (log["model"] == model) & (log["seed"] == int(seed))
                       & (log["train_solver"] == "dopri5")].sort_values("iteration")
            assert len(rows) == 1000
            means.append(f"{rows['loss'].tail(50).mean():.1e}")
        assert stated == means, (dataset, seed)


def test_the_figure_is_drawn_from_the_committed_runs(tmp_path):
    assert re.search(r"!\[[^]]*\]\(img/dupont_loss_curves\.png\)", DOC.read_text())
    assert (ROOT / "docs" / "img" / "dupont_loss_curves.png").is_file()
    out = tmp_path / "curves.png"
    draw(REFLECTION, ANODE, out)
    assert out.stat().st_size > 10_000


def test_augment_zero_is_the_trajectory_model_and_augment_pads_with_zeros(one_thread):
    data = DATASETS.get("reflection")(0, n_train=8, n_test=8)
    built = []
    for name, extra in (("trajectory", {}), ("augmented_trajectory", {"augment": 0}),
                        ("augmented_trajectory", {"augment": 1})):
        torch.manual_seed(0)
        built.append(MODELS.get(name)(data.in_shape, 0, times=data.times, hidden=8, **extra))
    with torch.no_grad():
        plain, zero, one = (m(data.x_test, SPEC)[0] for m in built)
        assert torch.equal(plain, zero) and one.shape == plain.shape == (8, 1, 1)
        lifted = built[2].input_map(data.x_test)
    assert lifted.shape == (8, 2) and torch.equal(lifted[:, 0], data.x_test[:, 0])
    assert torch.count_nonzero(lifted[:, 1]) == 0
