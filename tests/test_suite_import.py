"""A suite naming a model defined outside the package by import path, with a checkpoint."""

import pandas as pd
import pytest
import torch
from torch import nn

from robustbench_ode import benchmark
from robustbench_ode.config import parse_suite
from robustbench_ode.core import imports
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.harness.build import load_data
from robustbench_ode.harness.cell import cells
from robustbench_ode.run.runner import run_suite


class Field(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))

    def forward(self, t, z):
        return self.net(z)


class Outside(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.input_map, self.field, self.head = nn.Identity(), Field(hidden), nn.Linear(2, 2)


def make(in_shape, n_classes, hidden: int = 8):
    return Outside(hidden)


@pytest.fixture(autouse=True)
def _allowed(monkeypatch):
    """This module (and no_such_module_xyz, to reach the import) opted in, as --allow-import does."""
    monkeypatch.setenv(imports.ENV, f"{__name__},no_such_module_xyz")


def suite(model: dict) -> dict:
    return {"name": "outside", "dataset": {"name": "moons", "n_train": 16, "n_test": 64},
            "model": model, "training": {"iterations": 2, "batch_size": 8},
            "train": {"grid": [{"solver": "euler", "steps": [2]}]},
            "test": [{"solver": "euler", "steps": [1, 8]}]}


def test_checkpointed_model_is_tested_not_trained(tmp_path):
    torch.manual_seed(3)
    trained = Outside(8)
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    cfg = parse_suite(suite({"name": f"{__name__}:make", "checkpoint": str(tmp_path / "model.pt")}))
    report = run_suite(cfg, tmp_path / "run", progress=False)
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    assert len(report.cells) == 1 and not report.failed and (rows["status"] == "ok").all()
    assert pd.read_csv(tmp_path / "run" / "training.csv").empty  # tested, not trained
    # the same numbers as benchmark() on the same model and data
    data = load_data(cells(cfg)[0])
    direct = benchmark(trained, data, [{"solver": "euler", "steps": [1, 8]}],
                       train={"solver": "euler", "steps": 2}).table
    assert list(rows["accuracy"]) == pytest.approx(list(direct["accuracy"]))
    assert (tmp_path / "run" / "report.html").is_file()


def test_imported_model_without_checkpoint_is_trained(tmp_path):
    cfg = parse_suite(suite({"name": f"{__name__}:make", "hidden": 4}))
    assert cfg.model[0].params == {"hidden": 4}
    report = run_suite(cfg, tmp_path / "run", progress=False)
    log = pd.read_csv(tmp_path / "run" / "training.csv")
    assert len(log) == 2 and not report.failed and report.trained


@pytest.mark.parametrize("model, words", [
    ({"name": "no_such_module_xyz:make"}, ["model.name", "cannot import"]),
    ({"name": f"{__name__}:nothing"}, ["model.name", "cannot import"]),
    ({"name": f"{__name__}:make", "width": 3}, ["model.width", "unknown key"]),
    ({"name": "os:system"}, ["model.name", "importing module 'os' is not allowed", "--allow-import os"]),
])
def test_bad_import_path_is_a_suite_error(model, words):
    with pytest.raises(SuiteError) as err:
        parse_suite(suite(model))
    assert all(w in str(err.value) for w in words)


@pytest.mark.parametrize("value, words", [
    ("4", ["model.hidden", "'4' is text", "a number belongs here"]),
    (True, ["model.hidden", "true is a boolean", "a number belongs here"]),
])
def test_an_imported_factorys_lax_annotation_does_not_coerce(value, words):
    """``hidden: int`` in a factory's signature lets pydantic read "4" as 4 and true as 1: the
    suite still refuses both, as it does for the registered entries' strict parameters."""
    with pytest.raises(SuiteError) as err:
        parse_suite(suite({"name": f"{__name__}:make", "hidden": value}))
    assert all(w in str(err.value) for w in words), str(err.value)
    assert parse_suite(suite({"name": f"{__name__}:make", "hidden": 4})).model[0].params == {"hidden": 4}
