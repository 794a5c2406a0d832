"""docs/architecture.md's "to add X, edit Y" table, row by row: each test adds a throwaway entry
exactly as the row says and runs it through the pipeline."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from pydantic import Field
from torch import nn

from robustbench_ode import DATASETS, MODELS, SOLVERS, solve
from robustbench_ode.config import TrainingConfig, parse_suite
from robustbench_ode.config.training import setting
from robustbench_ode.core.schema import RESULT_NAMES
from robustbench_ode.core.types import Count
from robustbench_ode.datasets import DatasetInfo
from robustbench_ode.datasets.base import DataSplits, split_rng
from robustbench_ode.datasets.params import Params as DatasetParams
from robustbench_ode.harness.cell import CellConfig, cells
from robustbench_ode.harness.execution import run_cells
from robustbench_ode.harness.grouping import stack_key
from robustbench_ode.models import ModelInfo
from robustbench_ode.models.classifier import ODEClassifier, init_weights
from robustbench_ode.models.fields import Field as PackageField
from robustbench_ode.models.params import Params as ModelParams
from robustbench_ode.outputs import figures, report
from robustbench_ode.solvers import ButcherTableau, Kind, Solver


class BlobsParams(DatasetParams):
    n_train: Count = 64
    n_test: Count = 32


def blobs(seed: int, **params) -> DataSplits:
    """Two Gaussian blobs (the throwaway dataset)."""
    q = BlobsParams(**params)
    parts = []
    for split, n in (("train", q.n_train), ("test", q.n_test)):
        rng = split_rng(seed, split)
        y = np.arange(n) % 2
        x = rng.standard_normal((n, 2)) * 0.3 + np.where(y[:, None] == 1, 1.0, -1.0)
        parts += [torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)]
    return DataSplits(*parts, n_classes=2)


class LinearParams(ModelParams):
    scale: float = Field(default=1.0, gt=0.0)


class LinearField(PackageField):
    def __init__(self, dim: int, scale: float) -> None:
        super().__init__()
        self.lin, self.scale = nn.Linear(dim, dim), scale

    def forward(self, t, z):
        return self.scale * torch.tanh(self.lin(z))


def linear(in_shape, n_classes, **params) -> ODEClassifier:
    """A tanh-linear field (the throwaway model family)."""
    q = LinearParams(**params)
    model = ODEClassifier(nn.Flatten(), LinearField(math.prod(in_shape), q.scale), nn.Linear(2, n_classes))
    init_weights(model)
    return model


@pytest.fixture
def registered():
    DATASETS.register("blobs_tmp", blobs, "two blobs (test)", meta=DatasetInfo(BlobsParams))
    MODELS.register("linear_tmp", linear, "tanh-linear field (test)", meta=ModelInfo(LinearParams))
    yield
    DATASETS.remove("blobs_tmp")
    MODELS.remove("linear_tmp")


def _suite(**over):
    return parse_suite({"name": "extend", "dataset": {"name": "blobs_tmp"},
                        "model": {"name": "linear_tmp", "scale": 2.0},
                        "training": {"iterations": 20, "batch_size": 16, "lr": 0.05},
                        "train": {"grid": [{"solver": "euler", "steps": [4]}]},
                        "test": [{"solver": "rk4", "steps": [8]}], **over})


def test_a_dataset_and_a_model_family_run_through_the_pipeline(registered):
    suite = _suite()
    assert suite.dataset[0].params == {"n_train": 64, "n_test": 32}  # defaults from the params model
    with pytest.raises(Exception, match="scale"):
        _suite(model={"name": "linear_tmp", "scale": -1})  # validated against the params model
    (result,) = run_cells(cells(suite), suite.test, suite.reference)
    assert result.status.value == "ok" and len(result.log) == 20
    assert [tuple(r) for r in result.rows] == [RESULT_NAMES] * 3
    assert result.rows[0]["accuracy"] > 0.9  # two separated blobs: learned


def test_an_explicit_runge_kutta_solver_is_a_tableau_and_an_entry():
    ralston = ButcherTableau((0.0, 2 / 3), ((), (2 / 3,)), (0.25, 0.75))
    SOLVERS.register("ralston_tmp", Solver("ralston_tmp", 2, 2, Kind.FIXED, "Ralston", None, ralston),
                     "Ralston's method (test)")
    try:
        z0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
        exact = torch.tensor([math.cos(2.0), -math.sin(2.0)], dtype=torch.float64)
        f = lambda t, z: torch.stack([z[1], -z[0]])  # noqa: E731
        errs = [(solve(f, z0, "ralston_tmp", steps=n, t_span=(0.0, 2.0)).z - exact).norm() for n in (32, 64)]
        assert math.log2(errs[0] / errs[1]) == pytest.approx(2.0, abs=0.2)
        parse_suite({**{"name": "s", "dataset": {"name": "sphere2"}, "model": {"name": "mlp"}},
                     "train": {"grid": [{"solver": "ralston_tmp", "steps": [2]}]},
                     "test": [{"solver": "ralston_tmp", "steps": [4]}]})
    finally:
        SOLVERS.remove("ralston_tmp")


def test_a_training_setting_declares_how_the_harness_treats_it():
    class Extended(TrainingConfig):
        verbose_log: bool = setting(False, speed_only=True)  # changes nothing trained
        warmup: int = setting(0, stacked="default")  # stacked training would not implement it

    assert "verbose_log" in Extended.speed_only() and "warmup" not in Extended.speed_only()
    base = CellConfig.model_validate(cells(parse_suite({
        "name": "s", "dataset": {"name": "sphere2"}, "model": {"name": "ott_conv1d"},
        "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [2]}]},
        "test": [{"solver": "euler", "steps": [2]}]}))[0].model_dump())
    quiet = base.model_copy(update={"training": Extended()})
    loud = base.model_copy(update={"training": Extended(verbose_log=True)})
    warm = base.model_copy(update={"training": Extended(warmup=5)})
    assert quiet.key == loud.key != warm.key  # speed-only: not part of the key
    assert stack_key(quiet) is not None and stack_key(warm) is None  # not stacked unless default


def test_a_figure_is_one_entry_in_the_list(tmp_path, smoke_run, monkeypatch):
    drawn = []

    def draw(sources, path):
        drawn.append(len(sources.results))
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot([0, 1])
        fig.savefig(path)
        plt.close(fig)
        return path

    extra = figures.Figure("throwaway.png", "A throwaway figure", "What it shows.", draw)
    monkeypatch.setattr(report, "FIGURES", [*figures.FIGURES, extra])
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    out = report.write_report(run)
    assert drawn == [16] and (run / "throwaway.png").is_file()
    assert "A throwaway figure" in out.read_text() and "What it shows." in out.read_text()


SEEN_CONTROLS: list[str] = []


def integrate_tmp(solver, f, z0, t_span, *, steps, rtol, atol, max_steps, adjoint, control):
    """A throwaway adaptive integrator from "another library": dopri5 underneath, records the
    control it was asked for (it declares two, so it is passed one)."""
    SEEN_CONTROLS.append(control)
    return solve(f, z0, "dopri5", steps=steps, rtol=rtol, atol=atol, t_span=t_span,
                 max_steps=max_steps, adjoint=adjoint)


def test_an_adaptive_solver_from_another_library_is_an_integrator_and_an_entry():
    entry = Solver("ext_tmp", 5, 7, Kind.ADAPTIVE, "another library's pair", backend="otherlib",
                   integrator=f"{__name__}:integrate_tmp", adjoint=True, controls=("batch", "per_sample"))
    SOLVERS.register("ext_tmp", entry, entry.description, meta=entry)
    missing = Solver("ext_missing_tmp", 5, 7, Kind.ADAPTIVE, "needs a module that is not there",
                     backend="nolib", integrator=f"{__name__}:integrate_tmp",
                     requires="no_such_module_for_tests")
    SOLVERS.register("ext_missing_tmp", missing, missing.description, meta=missing)
    try:
        SEEN_CONTROLS.clear()
        z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
        sol = solve(lambda t, z: torch.stack([z[..., 1], -z[..., 0]], -1), z0, "ext_tmp", rtol=1e-8,
                    control="per_sample")
        assert sol.status.value == "ok" and SEEN_CONTROLS == ["per_sample"]
        base = {"name": "s", "dataset": {"name": "sphere2"}, "model": {"name": "mlp"},
                "training": {"gradient": "adjoint"}}
        parse_suite({**base, "train": {"grid": [{"solver": "ext_tmp", "tol": [1e-3]}]},
                     "test": [{"solver": "ext_tmp", "tol": [1e-3], "control": "per_sample"}]})
        with pytest.raises(Exception, match="test.0.solver: solver 'ext_missing_tmp' needs "
                                            "no_such_module_for_tests"):
            parse_suite({**base, "train": {"grid": [{"solver": "euler", "steps": [2]}]},
                         "test": [{"solver": "ext_missing_tmp", "tol": [1e-3]}]})
    finally:
        SOLVERS.remove("ext_tmp")
        SOLVERS.remove("ext_missing_tmp")
