"""docs/architecture.md's "to add X, edit Y" table, row by row: each test adds a throwaway entry
exactly as the row says and runs it through the pipeline."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from pydantic import Field
from torch import nn

from robustbench_ode import DATASETS, MODELS, SOLVERS, cli, solve
from robustbench_ode.config import TrainingConfig, parse_suite
from robustbench_ode.config.training import setting
from robustbench_ode.core.errors import SuiteError
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
from robustbench_ode.outputs import figures, leaderboard, report, summary
from robustbench_ode.run.executors import EXECUTORS, ExecutorInfo
from robustbench_ode.solvers import ButcherTableau, Kind, Solver

ROOT = Path(__file__).resolve().parent.parent


def registry_cases(test_file: str, entry: str) -> dict:
    """``tests/<test_file>.py`` loaded afresh, so its registry-read parameter lists are read now
    (with the throwaway entry registered): each test parametrized over a ``name`` list that holds
    ``entry``, as ``{test name: (function, arguments, marks)}`` with the first value of its other
    parameters (the marks: a skip with the install hint where the entry's module is missing)."""
    spec = importlib.util.spec_from_file_location(f"{test_file}_fresh", ROOT / "tests" / f"{test_file}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = {}
    for test_name, fn in vars(module).items():
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        args, extra, covered = {}, [], False
        for mark in marks:
            names = [n.strip() for n in mark.args[0].split(",")]
            sets = [v if isinstance(v, pytest.ParameterSet)
                    else pytest.ParameterSet(v if len(names) > 1 else (v,), (), None) for v in mark.args[1]]
            if "name" in names:
                sets = [s for s in sets if s.values[names.index("name")] == entry]
                covered = bool(sets)
            if sets:
                args.update(zip(names, sets[0].values))
                extra += list(sets[0].marks)
        if test_name.startswith("test_") and covered:
            out[test_name] = (fn, args, extra)
    return out


def run_cases(cases: dict, **fixtures) -> None:
    """Each case run as pytest would, the fixtures it names given."""
    for fn, args, _ in cases.values():
        wanted = inspect.signature(fn).parameters
        fn(**args, **{k: v for k, v in fixtures.items() if k in wanted})


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


def test_the_registry_parametrized_tests_take_a_new_dataset_and_model_family(registered, tmp_path,
                                                                          monkeypatch):
    data = registry_cases("test_datasets", "blobs_tmp")
    assert set(data) == {"test_splits_shapes_labels", "test_regenerated_bit_identically_from_seed"}
    run_cases(data)
    shape = registry_cases("test_arithmetic", "blobs_tmp")  # a 2-D point: no shape= needed
    assert set(shape) == {"test_declared_sample_shape_is_the_datas"}
    run_cases(shape, tmp_path=tmp_path, monkeypatch=monkeypatch)
    families = registry_cases("test_models", "linear_tmp")
    assert {"test_forward_shapes_and_finite", "test_tested_as_an_ode_with_every_solver",
            "test_kaiming_weights_zero_biases"} <= set(families)
    run_cases(families)
    macs = registry_cases("test_arithmetic", "linear_tmp")
    assert set(macs) == {"test_declared_macs_equal_the_counted_flops_of_one_field_evaluation"}
    with pytest.raises(pytest.fail.Exception, match="'linear_tmp' is registered but has no case here"):
        run_cases(macs)  # fails until it has a case


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
        cases = registry_cases("test_solvers", "ralston_tmp")  # parametrized over the registry
        assert {"test_observed_order_of_convergence",
                "test_fixed_step_takes_exactly_n_equal_steps"} <= set(cases)
        run_cases(cases)
        parse_suite({**{"name": "s", "dataset": {"name": "sphere2"}, "model": {"name": "mlp"}},
                     "train": {"grid": [{"solver": "ralston_tmp", "steps": [2]}]},
                     "test": [{"solver": "ralston_tmp", "steps": [4]}]})
    finally:
        SOLVERS.remove("ralston_tmp")


def test_a_training_setting_declares_how_the_harness_treats_it():
    class Extended(TrainingConfig):
        verbose_log: bool = setting(False, speed_only=True)  # changes nothing trained
        warmup: int = setting(0, stacked="default")  # stacked training would not implement it
        patience: int = setting(3)  # a default that is not None: a cell at it keeps its key

    assert "verbose_log" in Extended.speed_only() and "warmup" not in Extended.speed_only()
    base = CellConfig.model_validate(cells(parse_suite({
        "name": "s", "dataset": {"name": "sphere2"}, "model": {"name": "ott_conv1d"},
        "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [2]}]},
        "test": [{"solver": "euler", "steps": [2]}]}))[0].model_dump())
    quiet = base.model_copy(update={"training": Extended()})
    loud = base.model_copy(update={"training": Extended(verbose_log=True)})
    warm = base.model_copy(update={"training": Extended(warmup=5)})
    assert quiet.key == loud.key != warm.key  # speed-only: not part of the key
    assert quiet.key == base.key  # every new setting at its default: every stored cell keeps its key
    assert base.model_copy(update={"training": Extended(patience=4)}).key != base.key
    assert stack_key(quiet) is not None and stack_key(warm) is None  # not stacked unless default
    assert stack_key(base.model_copy(update={"training": Extended(patience=4)})) is not None  # stacked="any"
    assert stack_key(loud) == stack_key(quiet)  # a speed-only setting does not split a seed stack either


def test_a_figure_is_one_entry_in_the_list(tmp_path, smoke_run):
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
    figures.FIGURES.append(extra)  # one entry in the list the row names
    try:
        run = tmp_path / "run"
        shutil.copytree(smoke_run, run)
        out = report.write_report(run)
    finally:
        figures.FIGURES.remove(extra)
    assert drawn == [16] and (run / "throwaway.png").is_file()
    page = out.read_text()
    assert 'alt="throwaway"' in page and "A throwaway figure" in page and "What it shows." in page


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
    no_adjoint = dataclasses.replace(entry, name="ext_noadj_tmp", adjoint=False)
    SOLVERS.register("ext_noadj_tmp", no_adjoint, no_adjoint.description, meta=no_adjoint)
    try:
        SEEN_CONTROLS.clear()
        z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
        sol = solve(lambda t, z: torch.stack([z[..., 1], -z[..., 0]], -1), z0, "ext_tmp", rtol=1e-8,
                    control="per_sample")
        assert sol.status.value == "ok" and SEEN_CONTROLS == ["per_sample"]
        cases = registry_cases("test_solvers", "ext_tmp")  # against the known solutions
        assert {"test_adaptive_counters_and_accuracy",
                "test_adaptive_end_state_is_the_methods_own"} <= set(cases)
        run_cases(cases)
        skipped = registry_cases("test_solvers", "ext_missing_tmp")  # skipped with the install hint
        hint = "pip install no_such_module_for_tests"
        assert skipped and all(any(m.name == "skipif" and m.args[0] and hint in m.kwargs["reason"]
                                   for m in marks) for _, _, marks in skipped.values())
        base = {"name": "s", "dataset": {"name": "sphere2"}, "model": {"name": "mlp"},
                "training": {"gradient": "adjoint"}}
        parse_suite({**base, "train": {"grid": [{"solver": "ext_tmp", "tol": [1e-3]}]},
                     "test": [{"solver": "ext_tmp", "tol": [1e-3], "control": "per_sample"}]})
        with pytest.raises(Exception, match="test.0.solver: solver 'ext_missing_tmp' needs "
                                            "no_such_module_for_tests"):
            parse_suite({**base, "train": {"grid": [{"solver": "euler", "steps": [2]}]},
                         "test": [{"solver": "ext_missing_tmp", "tol": [1e-3]}]})
        with pytest.raises(Exception, match="adjoint needs"):  # adjoint=False: refused for gradient: adjoint
            parse_suite({**base, "train": {"grid": [{"solver": "ext_noadj_tmp", "tol": [1e-3]}]},
                         "test": [{"solver": "ext_noadj_tmp", "tol": [1e-3]}]})
    finally:
        for name in ("ext_tmp", "ext_missing_tmp", "ext_noadj_tmp"):
            SOLVERS.remove(name)


def train_share_tmp(rows: pd.DataFrame) -> dict:
    """A throwaway metric function: three shares of a cell's test rows, one per metric below."""
    ok = float((rows["status"] == "ok").mean())
    return {"ok_share_tmp": ok, "present_share_tmp": ok, "hidden_share_tmp": 1 - ok}


def _summary_table(page: str) -> str:
    start = page.index('id="summary"')
    return page[start:page.index("</table>", start)]


def _header(name: str) -> str:  # a table's header cell (outputs/page.py lets it break after "_")
    return "<th>" + name.replace("_", "_<wbr>") + "</th>"


def test_a_metric_is_one_record_in_the_list(tmp_path, smoke_run):
    added = [summary.Metric("ok_share_tmp", train_share_tmp, "higher",
                            frozenset({"report", "regression", "leaderboard"}), "a throwaway share"),
             summary.Metric("present_share_tmp", train_share_tmp, "higher",
                            frozenset({"leaderboard_present"}), "a share where present"),
             summary.Metric("hidden_share_tmp", train_share_tmp, "lower", frozenset({"regression"}),
                            "a share for time series")]
    summary.METRICS.extend(added)  # records in the list the row names
    try:
        run = tmp_path / "run"
        shutil.copytree(smoke_run, run)
        page = report.write_report(run).read_text()
        md_path, csv_path, board_page, md = leaderboard.write_leaderboard([run], tmp_path / "board")
    finally:
        for metric in added:
            summary.METRICS.remove(metric)
    table = pd.read_csv(run / "summary.csv")  # every metric, whatever its pages
    assert {"ok_share_tmp", "present_share_tmp", "hidden_share_tmp"} <= set(table.columns)
    assert table["ok_share_tmp"].between(0, 1).all()
    # the (classification) report: its table and legend show the metric shown on "report" only
    assert _header("ok_share_tmp") in _summary_table(page)
    assert "ok_share_tmp = a throwaway share" in page
    for name in ("present_share_tmp", "hidden_share_tmp"):
        assert name not in page and _header(name) not in page
    # the leaderboard: its csv, markdown and legend show the "leaderboard" and (present here)
    # "leaderboard_present" metrics, not the time-series one
    board, legend = pd.read_csv(csv_path).columns, board_page.read_text()
    header = md.splitlines()[next(i for i, line in enumerate(md.splitlines()) if line.startswith("| rank"))]
    for name, text in (("ok_share_tmp", "a throwaway share"), ("present_share_tmp", "a share where present")):
        assert name in board and f" {name} " in header and f"{name} = {text}" in legend
    assert "hidden_share_tmp" not in board and "hidden_share_tmp" not in md + legend


class InTurnTmp:
    """A throwaway executor: ``name``, ``threads`` and ``run(units)``, constructed with threads."""

    name = "in_turn_tmp"
    ran: list[int] = []
    made: list = []

    def __init__(self, threads=None) -> None:
        self.threads = threads
        InTurnTmp.made.append(threads)

    def run(self, units):
        for i, unit in enumerate(units):
            InTurnTmp.ran.append(i)
            yield i, unit.run()

    def close(self) -> None:
        pass


def test_an_executor_is_a_class_and_an_entry(tmp_path, registered, capsys):
    EXECUTORS.register("in_turn_tmp", InTurnTmp, "cells in turn (test)", ExecutorInfo())
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "extend", "dataset": {"name": "blobs_tmp"}, "model": {"name": "linear_tmp"},
        "training": {"iterations": 3, "batch_size": 16},
        "train": {"grid": [{"solver": "euler", "steps": [2]}]}, "test": [{"solver": "euler", "steps": [2]}]}))
    try:
        InTurnTmp.ran.clear()
        InTurnTmp.made.clear()
        code = cli.main(["run", str(suite), "--out", str(tmp_path / "out"), "--no-progress",
                         "--executor", "in_turn_tmp", "--threads", "1"])
    finally:
        EXECUTORS.remove("in_turn_tmp")
    assert code == 0 and InTurnTmp.made == [1] and InTurnTmp.ran == [0]  # cls(threads), then its units
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["executor"] == "in_turn_tmp"
    rows = pd.read_csv(tmp_path / "out" / "results.csv")  # the unit's rows: its test point, the reference
    assert len(rows) == 2 and (rows["status"] == "ok").all()
    capsys.readouterr()
    assert cli.main(["run", str(suite), "--executor", "in_turn_tmp"]) == 2  # gone: bad input, one line
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("robustbench-ode: error: --executor in_turn_tmp: unknown (allowed: local")


def failing_tmp(args):
    """A throwaway subcommand's handler, named as commands.py's are ("module:function", imported
    when the subcommand runs)."""
    raise {"bad": SuiteError("--what: no (allowed: yes)"), "io": FileNotFoundError(2, "gone", "x.csv"),
           "pipe": BrokenPipeError()}[args.how]


def test_a_subcommand_is_a_parser_and_a_handler(monkeypatch, capsys):
    build = cli.build_parser

    def with_tmp():  # a parser added to build_parser()'s subcommands, as the row says
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        p = sub.add_parser("tmp_cmd", help="a throwaway subcommand")
        p.add_argument("how")
        p.set_defaults(func=f"{__name__}:failing_tmp")
        return parser

    monkeypatch.setattr(cli, "build_parser", with_tmp)
    monkeypatch.setattr(cli, "_silence_stdout", lambda: None)
    assert cli.main(["tmp_cmd", "bad"]) == 2
    assert capsys.readouterr().err.strip() == "robustbench-ode: error: --what: no (allowed: yes)"
    assert cli.main(["tmp_cmd", "io"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("robustbench-ode: error: ") and "x.csv" in line
    assert cli.main(["tmp_cmd", "pipe"]) == cli.EXIT_BROKEN_PIPE and not capsys.readouterr().err


COLUMN_PATCH = [  # (file, what it reads, what the row's edit makes it)
    ("robustbench_ode/core/schema.py",
     '    Column("loss", "float", "mean test loss"),\n',
     '    Column("loss", "float", "mean test loss"),\n'
     '    Column("half_loss_tmp", "float", "a throwaway"),\n'),
    ("robustbench_ode/harness/evaluation.py",
     'return {**scores, "nfe": self.nfe / batches,',
     'return {**scores, "half_loss_tmp": scores["loss"] / 2, "nfe": self.nfe / batches,'),
    ("robustbench_ode/core/schema.py",  # a training-log column
     '    Column("nfe_backward", "int", "field evaluations of the backward pass (0 for autograd)"),\n',
     '    Column("nfe_backward", "int", "field evaluations of the backward pass (0 for autograd)"),\n'
     '    Column("twice_loss_tmp", "float", "a throwaway"),\n'),
    ("robustbench_ode/training/loop.py",
     'rows[i] = log_row(iteration=it, loss=loss_v[i],',
     'rows[i] = log_row(iteration=it, loss=loss_v[i], twice_loss_tmp=2 * loss_v[i],'),
]
# every training path of tests/test_schema.py, run on the patched copy: each log row and result row
# carries the two columns, filled
EVERY_PATH = """
import math
import test_schema as s
from robustbench_ode.harness.execution import run_cells
for name, cells in s.PATHS.items():
    for result in run_cells(cells, s.ENTRIES, s.REF):
        assert result.status.value == "ok", (name, result.record.message)
        assert result.log and all(math.isclose(r["twice_loss_tmp"], 2 * r["loss"]) for r in result.log), name
        ok = [r for r in result.rows if r["status"] == "ok"]
        assert ok and all(math.isclose(r["half_loss_tmp"], r["loss"] / 2) for r in ok), name
print("every path")
"""


def test_a_result_column_is_one_column_and_its_filler(tmp_path):
    """The row done to a copy of the package (a declared column is read at import time): every
    training path of tests/test_schema.py fills a result column and a training-log column, and
    results.csv, training.csv, the stored cell's rows and a resumed run's tables carry them."""
    copy = tmp_path / "pkg"
    shutil.copytree(ROOT / "robustbench_ode", copy / "robustbench_ode",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for rel, old, new in COLUMN_PATCH:
        text = (copy / rel).read_text()
        assert old in text, rel  # the row's files still read as the test expects
        (copy / rel).write_text(text.replace(old, new))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy), str(ROOT / "tests")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", EVERY_PATH], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "every path" in done.stdout, done.stderr[-2000:]
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "col", "dataset": {"name": "sphere2", "n_train": 32, "n_test": 16},
        "model": {"name": "mlp", "hidden": 4}, "training": {"iterations": 2, "batch_size": 16},
        "train": {"grid": [{"solver": "euler", "steps": [2]}]}, "test": [{"solver": "euler", "steps": [2]}]}))
    out = tmp_path / "out"
    for _ in range(2):  # trained, then loaded from the store
        done = subprocess.run([sys.executable, "-m", "robustbench_ode", "run", str(suite), "--out", str(out),
                               "--no-progress"], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        table = pd.read_csv(out / "results.csv")
        assert (table["half_loss_tmp"] == table["loss"] / 2).all()
        log = pd.read_csv(out / "training.csv")
        assert len(log) == 2 and (log["twice_loss_tmp"] == 2 * log["loss"]).all()
    (cell,) = (out / "cells").iterdir()
    assert "half_loss_tmp" in pd.read_csv(cell / "rows.csv").columns
