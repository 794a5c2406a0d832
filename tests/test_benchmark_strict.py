"""Acceptance (issue 28, item 7): ``benchmark()`` is as strict as a suite.

Every argument is validated as the suite setting it stands for (config/benchmark.py): a bad one
is one SuiteError line naming it; the train configuration inferred from a model's odeint call is
capped as grid steps are; NaN or inf logits give status ``non_finite``, logits of the wrong width
an error; ``report=`` refuses a file, a foreign folder and a run folder, untouched; a test point
past ``time_limit`` seconds gets status ``time_limit``.
"""

from __future__ import annotations

import json
import time

import pytest
import torch
import torchdiffeq
from torch import nn

import robustbench_ode as rb
from robustbench_ode.core.errors import SuiteError

T01 = torch.tensor([0.0, 1.0])
GRID = [{"solver": "euler", "steps": [1, 2]}]
X = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


class Plain(nn.Module):
    """A plain torchdiffeq model; ``kw`` its odeint keywords, ``width`` its logits, ``output`` a
    function of the logits (NaN, inf), ``sleep`` seconds per forward pass."""

    def __init__(self, width: int = 2, kw=None, output=None, sleep: float = 0.0) -> None:
        super().__init__()
        self.f, self.head = nn.Linear(2, 2), nn.Linear(2, width)
        self.kw = kw if kw is not None else {"method": "euler", "options": {"step_size": 0.25}}
        self.output, self.sleep = output, sleep

    def forward(self, x):
        time.sleep(self.sleep)
        z = torchdiffeq.odeint(lambda t, z: torch.tanh(self.f(z)), x, T01, **self.kw)[-1]
        out = self.head(z)
        return self.output(out) if self.output is not None else out


def _one_line(exc: pytest.ExceptionInfo, *words: str) -> None:
    text = str(exc.value)
    assert "\n" not in text and len(text) <= 300, text
    for w in words:
        assert w in text, (w, text)


@pytest.mark.parametrize("kwargs, words", [
    ({"batch_size": -1}, ["benchmark.batch_size", "greater than 0"]),
    ({"batch_size": 0}, ["benchmark.batch_size"]),
    ({"batch_size": 2.5}, ["benchmark.batch_size"]),
    ({"batch_size": True}, ["benchmark.batch_size"]),
    ({"max_steps": 0}, ["benchmark.max_steps"]),
    ({"max_steps": 10**9}, ["benchmark.max_steps", "10000000"]),
    ({"name": "a/b"}, ["benchmark.name", "pattern"]),
    ({"model_label": "has space"}, ["benchmark.model_label"]),
    ({"diagnostics": 5}, ["benchmark.diagnostics", "True, False, or a mapping"]),
    ({"diagnostics": {"bogus": 1}}, ["benchmark.diagnostics", "bogus"]),
    ({"reference": {"solver": "dopri5", "tol": -1}}, ["benchmark.reference.tol"]),
    ({"time_limit": 0}, ["benchmark.time_limit"]),
    ({"time_limit": float("nan")}, ["benchmark.time_limit"]),
    ({"device": "bogus"}, ["device=bogus", "allowed: auto, cpu, cuda"]),
    ({"threads": 10**20}, ["at most 1024"]),
    ({"train": {"solver": "euler", "steps": -2}}, ["train.steps"]),
    ({"train": {"solver": "dopri5", "tol": -1}}, ["train.tol"]),
    ({"train": {"solver": "nope", "steps": 2}}, ["train.solver", "nope"]),
])
def test_a_bad_argument_is_one_line_naming_it(kwargs, words):
    with pytest.raises(SuiteError) as exc:
        rb.benchmark(Plain(), (X, Y), GRID, **{"diagnostics": False, **kwargs})
    _one_line(exc, *words)


@pytest.mark.parametrize("grid, words", [
    ({"solver": "euler", "steps": [2]}, ["benchmark.grid", "a list of test entries"]),
    ([{"solver": "euler", "steps": [2]}, {"solver": "euler", "steps": [2]}], ["grid"]),
    ([{"solver": "euler", "steps": [-1]}], ["benchmark.grid.0.steps"]),
    ([{"solver": "euler", "steps": [10**7]}], ["benchmark.grid.0.steps", "1000000"]),
    ([{"solver": "euler", "steps": [1], "bogus": 1}], ["benchmark.grid.0", "bogus"]),
    ([], ["benchmark.grid"]),
    ([{"solver": "euler", "steps": list(range(1, 1002))}], ["at most 1000"]),
])
def test_a_bad_grid_is_one_line_naming_it(grid, words):
    with pytest.raises(SuiteError) as exc:
        rb.benchmark(Plain(), (X, Y), grid, diagnostics=False)
    _one_line(exc, *words)


@pytest.mark.parametrize("kw, words", [
    ({"method": "euler", "options": {"step_size": -0.5}}, ["train.steps", "greater than 0", "inferred"]),
    ({"method": "euler", "options": {"step_size": 1e-12}}, ["train.steps", "1000000", "inferred"]),
    ({"method": "euler", "options": {"step_size": 0.0}}, ["train", "not inferable"]),
    ({"method": "dopri5", "rtol": -1.0}, ["train.tol", "inferred"]),
    ({"method": "dopri5", "rtol": 1e-3, "atol": 2.0}, ["train.tol", "inferred"]),
])
def test_an_inferred_train_configuration_is_validated_as_a_given_one(kw, words):
    start = time.perf_counter()
    with pytest.raises(SuiteError) as exc:
        rb.benchmark(Plain(kw=kw), (X, Y), GRID, diagnostics=False)
    _one_line(exc, *words)
    assert time.perf_counter() - start < 30  # 1e12 steps would never end


def test_an_exception_while_inferring_is_one_line():
    class Raising(Plain):
        def forward(self, x):
            raise ValueError("bad model")
    with pytest.raises(SuiteError) as exc:
        rb.benchmark(Raising(), (X, Y), GRID, diagnostics=False)
    _one_line(exc, "model: Raising raised", "bad model")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_logits_are_status_non_finite_not_ok(bad):
    model = Plain(output=lambda out: out * bad)
    table = rb.benchmark(model, (X, Y), GRID, diagnostics=False).table
    assert set(table["status"]) == {"non_finite"}, table[["status", "accuracy"]]
    assert table["accuracy"].isna().all()
    assert "logits" in table["message"].iloc[0]


def test_one_non_finite_batch_makes_the_point_non_finite():
    model = Plain(output=lambda out: out * float("nan") if out.shape[0] == 8 else out)
    table = rb.benchmark(model, (X, Y), GRID, batch_size=16, diagnostics=False).table
    assert set(table["status"]) == {"non_finite"}  # the last batch of 8 is NaN: the whole point is


@pytest.mark.parametrize("width", [1, 3, 5])
def test_logits_of_the_wrong_width_are_an_error(width):
    with pytest.raises(SuiteError) as exc:
        rb.benchmark(Plain(width=width), (X, Y), GRID, diagnostics=False)
    _one_line(exc, "model:", f"(1, {width})", "not (1, 2)")


def test_a_split_declaring_more_classes_accepts_that_width():
    from robustbench_ode.datasets.base import DataSplits
    data = DataSplits(X[:0], Y[:0], X, Y, n_classes=5)
    table = rb.benchmark(Plain(width=5), data, GRID, diagnostics=False).table
    assert set(table["status"]) == {"ok"}


def test_a_point_past_the_time_limit_gets_status_time_limit():
    model = Plain(sleep=0.05)
    table = rb.benchmark(model, (X, Y), GRID, batch_size=8, diagnostics=False, time_limit=0.01).table
    assert set(table["status"]) == {"time_limit"}, table[["status", "message"]]
    assert "time limit of 0.01 s" in table["message"].iloc[0]
    assert table["accuracy"].isna().all()
    fine = rb.benchmark(model, (X, Y), GRID, batch_size=8, diagnostics=False, time_limit=60).table
    assert set(fine["status"]) == {"ok"}


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_report_refuses_a_file_a_foreign_folder_and_a_run_folder(tmp_path):
    file = tmp_path / "a.txt"
    file.write_text("mine")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    run = tmp_path / "run"
    run.mkdir()
    (run / "owner.json").write_text(json.dumps({"suite": "quick", "content": "x", "dump": {}, "cells": []}))
    (run / "results.csv").write_text("precious\n")
    for target, words in [(file, "not a directory"), (foreign, "not a folder benchmark() wrote"),
                          (run, "holds a run of suite 'quick'"), ("", "an empty path")]:
        before = _snapshot(target) if target != "" and target.is_dir() else None
        with pytest.raises(SuiteError) as exc:
            rb.benchmark(Plain(), (X, Y), GRID, diagnostics=False, report=target)
        _one_line(exc, "report=", words)
        if before is not None:
            assert _snapshot(target) == before
    assert file.read_text() == "mine"


def test_report_rewrites_a_folder_benchmark_wrote(tmp_path):
    out = tmp_path / "mine"
    rb.benchmark(Plain(), (X, Y), GRID, diagnostics=False, report=out)
    assert json.loads((out / "meta.json").read_text())["writer"] == "benchmark"
    rb.benchmark(Plain(), (X, Y), GRID, diagnostics=False, report=out)  # its own folder: allowed
    many = tmp_path / "many"
    rb.benchmark({"a": Plain(), "b": Plain()}, (X, Y), GRID, diagnostics=False, report=many)
    rb.benchmark({"a": Plain(), "b": Plain()}, (X, Y), GRID, diagnostics=False, report=many)
    with pytest.raises(SuiteError, match="benchmark.model_label"):
        rb.benchmark({"a b": Plain()}, (X, Y), GRID, diagnostics=False)


def test_the_config_default_deploy_tolerance_is_the_summarys():
    # config/ stays free of pandas, so BenchmarkConfig states the default again: keep them equal
    from robustbench_ode.config.benchmark import BenchmarkConfig
    from robustbench_ode.outputs.summary import DEPLOY_TOLERANCE
    assert BenchmarkConfig.model_fields["deploy_tolerance"].default == DEPLOY_TOLERANCE
