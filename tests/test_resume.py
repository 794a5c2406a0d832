"""The cell store and resumption: finished cells are loaded, not retrained; a grown test grid
re-tests stored models; checkpoints resume training bit for bit; failures are data."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from robustbench_ode import cli
from robustbench_ode.config import parse_suite
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.core.status import Status
from robustbench_ode.harness import execution
from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.harness.cell import CellConfig, cells
from robustbench_ode.harness.execution import run_cells
from robustbench_ode.run.runner import run_suite
from robustbench_ode.run.store import CellStore, Checkpoint
from robustbench_ode.training.loop import train_model as train

TINY = {
    "name": "tiny",
    "dataset": {"name": "sphere2", "n_train": 96, "n_test": 48},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 6, "batch_size": 32, "lr": 0.01, "checkpoint_every": 2},
    "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1, 2]}]},
    "test": [{"solver": "euler", "step_factors": [1, 2]}],
}
TIMING = ["train_seconds", "eval_seconds"]


def tiny(**changes):
    doc = json.loads(json.dumps(TINY))
    doc.update(changes)
    return parse_suite(doc)


def table(out):
    df = pd.read_csv(out / "results.csv")
    return df.drop(columns=[c for c in TIMING if c in df.columns])


def test_checkpoint_every_is_not_part_of_the_key():
    a, b = (cells(tiny(training={**TINY["training"], "checkpoint_every": n}))[0] for n in (0, 5))
    assert a.key == b.key
    c = cells(tiny(training={**TINY["training"], "lr": 0.02}))[0]
    assert c.key != a.key


def test_resumed_training_equals_uninterrupted():
    suite = tiny(training={**TINY["training"], "iterations": 9, "checkpoint_every": 3})
    cell = cells(suite)[1]
    data = load_data(cell)
    whole = build_model(cell, data)
    full = train(whole, data, cell.train_spec, cell.training, seed=cell.seed)

    saved = []

    def save_then_die(state):
        saved.append({k: (v if k != "model" else {n: t.clone() for n, t in v.items()})
                      for k, v in state.items()})
        if len(saved) == 2:
            raise KeyboardInterrupt  # the kill, right after the checkpoint at iteration 6

    with pytest.raises(KeyboardInterrupt):
        train(build_model(cell, data), data, cell.train_spec, cell.training, seed=cell.seed,
              on_checkpoint=save_then_die)
    assert saved[-1]["iteration"] == 6
    resumed_model = build_model(cell, data)
    resumed = train(resumed_model, data, cell.train_spec, cell.training, seed=cell.seed, resume=saved[-1])
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed_model.state_dict()[k]), k
    assert [r["loss"] for r in resumed.log] == [r["loss"] for r in full.log]


def test_checkpoint_file_round_trip_and_damage(tmp_path):
    ck = Checkpoint(tmp_path / "k.pt")
    assert ck.load() is None
    ck.save({"iteration": 3, "x": torch.arange(3)})
    assert ck.load()["iteration"] == 3
    (tmp_path / "k.pt").write_bytes(b"cut off")
    assert ck.load() is None  # a damaged checkpoint means: start again, not crash


def test_run_cell_resumes_from_store_checkpoint(tmp_path):
    suite = tiny()
    cell = cells(suite)[0]
    (plain,) = run_cells([cell], suite.test, suite.reference)
    store = CellStore(tmp_path)
    # leaves the checkpoint at iteration 4
    run_cells([cell], suite.test, suite.reference, checkpoints=[store.checkpoint(cell.key)])
    assert store.checkpoint(cell.key).load()["iteration"] == 4
    (resumed,) = run_cells([cell], suite.test, suite.reference, checkpoints=[store.checkpoint(cell.key)])
    assert [r["loss"] for r in resumed.log] == [r["loss"] for r in plain.log]
    assert [r["accuracy"] for r in resumed.rows] == [r["accuracy"] for r in plain.rows]


def test_store_save_is_all_or_nothing(tmp_path):
    suite = tiny()
    cell = cells(suite)[0]
    (result,) = run_cells([cell], suite.test, suite.reference)
    store = CellStore(tmp_path)
    assert not store.has(cell.key)
    leftover = store.cells / f".tmp-{cell.key}-dead"  # what a kill during a write leaves
    leftover.mkdir(parents=True)
    (leftover / "rows.csv").write_text("half")
    assert not store.has(cell.key)
    store.save(result)
    stored = store.load(cell.key)
    assert stored.status is Status.OK and len(stored.rows) == len(result.rows)
    assert stored.cell.key == cell.key
    for k, v in result.record.weights.load().items():
        assert torch.equal(v, stored.record.weights.load()[k])
    store.clean()
    assert not leftover.exists()


def test_rerun_loads_and_grown_grid_retests_without_training(tmp_path):
    first = run_suite(tiny(), tmp_path, progress=False)
    assert len(first.trained) == 2
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("cells/*/model.pt")}
    again = run_suite(tiny(), tmp_path, progress=False)
    assert again.trained == [] and len(again.loaded) == 2
    pd.testing.assert_frame_equal(table(tmp_path), table(tmp_path))
    grown = tiny(test=[*TINY["test"], {"solver": "rk4", "steps": [3]}])
    report = run_suite(grown, tmp_path, progress=False)
    assert report.trained == [] and len(report.retested) == 2
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("cells/*/model.pt")} == mtimes
    df = table(tmp_path)
    assert (df.test_solver == "rk4").sum() == 2 and (df.status == "ok").all()
    # shrinking the grid again shows only today's test points, from the store
    run_suite(tiny(), tmp_path, progress=False)
    assert (table(tmp_path).test_solver == "rk4").sum() == 0
    fresh = run_suite(tiny(), tmp_path, progress=False, fresh=True)
    assert len(fresh.trained) == 2


def test_other_suites_directory_is_refused(tmp_path, capsys):
    run_suite(tiny(), tmp_path / "out", progress=False)
    with pytest.raises(SuiteError, match=r"holds suite 'tiny' with other content \(differs in name\)"):
        run_suite(tiny(name="other"), tmp_path / "out", progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(json.dumps(TINY))
    assert cli.main(["run", str(suite_file), "--out", str(tmp_path / "junk"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err
    assert (tmp_path / "junk" / "notes.txt").read_text() == "mine"


def test_failures_are_rows_and_strict_exits_1(tmp_path, monkeypatch, capsys):
    real_train = execution.train

    def flaky(forward, members, spec, cfg, **kw):
        if spec.steps == 2:
            raise RuntimeError("boom")
        return real_train(forward, members, spec, cfg, **kw)

    monkeypatch.setattr(execution, "train", flaky)
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(json.dumps(TINY))
    out = tmp_path / "out"
    assert cli.main(["run", str(suite_file), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert "1 with failures" in printed.out  # the status line; the failed cell is a warning
    assert "robustbench-ode: warning: " in printed.err and "RuntimeError: boom" in printed.err
    df = pd.read_csv(out / "results.csv")
    bad = df[df.train_steps == 2]
    assert set(bad.train_status) == {"failed"} and set(bad.status) == {"skipped"}
    assert set(df[df.train_steps == 1].status) == {"ok"}
    assert cli.main(["run", str(suite_file), "--out", str(out), "--no-progress", "--strict"]) == 1
    assert "loaded 2" in capsys.readouterr().out  # a failed cell is a result too: not recomputed


def test_bad_executor_options_exit_2(tmp_path, capsys):
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(json.dumps(TINY))
    for extra in (["--workers", "0"], ["--address", "auto"]):
        assert cli.main(["run", str(suite_file), "--out", str(tmp_path / "o"), *extra]) == 2
        assert capsys.readouterr().err.count("\n") == 1


def test_cell_config_round_trips_through_json():
    cell = cells(tiny())[0]
    again = CellConfig.model_validate(json.loads(json.dumps(cell.model_dump(mode="json"))))
    assert again.key == cell.key
