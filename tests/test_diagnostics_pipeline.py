"""The diagnostics in a run (docs/diagnostics.md, "In a suite run"): the summary's new columns,
the stored diagnosis and its recomputation, bad options, and ``benchmark()``'s verdict."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
import torch
import yaml

import robustbench_ode as rb
from robustbench_ode.cli import main
from robustbench_ode.config import parse_suite
from robustbench_ode.diagnostics import METHOD
from robustbench_ode.outputs.summary import DIAGNOSTIC_COLUMNS
from robustbench_ode.run import manifest
from robustbench_ode.run.runner import run_suite
from robustbench_ode.run.store import CellStore

TINY = {"name": "diag", "dataset": {"name": "sphere2", "n_train": 64, "n_test": 40},
        "model": {"name": "ott_conv1d", "width": 4}, "training": {"iterations": 3, "batch_size": 16},
        "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [2]}]},
        "test": [{"solver": "euler", "steps": [4]}], "reference": {"tol": 1e-4}}


def test_smoke_summary_has_finite_diagnostic_columns(smoke_run):
    summary = pd.read_csv(smoke_run / "summary.csv")
    assert set(DIAGNOSTIC_COLUMNS) <= set(summary.columns)
    assert (summary["diagnostics_status"] == "ok").all()
    assert summary["effect"].isin(["robust", "fold", "accumulation", "mixed", "undetermined"]).all()
    for col in ("flip_fraction", "fold_fraction", "min_log_det", "ref_fold_fraction", "crossing_fraction"):
        assert summary[col].map(math.isfinite).all(), col
    assert (summary["ref_fold_fraction"] == 0).all()  # the reference flow never folds
    for name in ("diagnostics.csv", "contributions.csv", "fan.csv"):
        assert len(pd.read_csv(smoke_run / name)) > 0, name
    html = (smoke_run / "report.html").read_text()
    assert "Why models break" in html and "diagnostics_verdicts" in html


def test_a_missing_or_outdated_diagnosis_is_recomputed_without_retraining(tmp_path):
    """A diagnosis missing from a cell stored before diagnostics existed, or computed with other
    settings, is made from the stored weights; the model is never retrained."""
    run_suite(parse_suite(TINY), tmp_path, progress=False)
    (cell,) = (tmp_path / "cells").iterdir()
    first = pd.read_csv(tmp_path / "diagnostics.csv")
    # a cell stored before diagnostics existed: no diagnosis.json (its manifest lists none)
    (cell / "diagnosis.json").unlink()
    manifest.write(cell, [n for n in manifest.FILES if (cell / n).exists()])
    again = run_suite(parse_suite(TINY), tmp_path, progress=False)
    assert again.trained == [] and again.retested == [cell.name]
    costs = [c for c in first if c.startswith("cost")]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "diagnostics.csv").drop(columns=costs),
                                  first.drop(columns=costs))
    fewer = run_suite(parse_suite({**TINY, "diagnostics": {"samples": 10}}), tmp_path, progress=False)
    assert fewer.trained == [] and fewer.retested == [cell.name]
    assert pd.read_csv(tmp_path / "diagnostics.csv")["n_samples"].tolist() == [10]
    off = run_suite(parse_suite({**TINY, "diagnostics": {"enabled": False}}), tmp_path, progress=False)
    assert off.trained == [] and off.retested == [] and len(off.loaded) == 1


def test_a_diagnosis_of_an_earlier_method_is_recomputed(tmp_path):
    """The method version is part of a stored diagnosis' settings: a cell diagnosed by an earlier
    fold test (settings without ``method``, as every store before issue 27) is diagnosed again from
    its stored weights, with the same suite settings otherwise."""
    run_suite(parse_suite(TINY), tmp_path, progress=False)
    (cell,) = (tmp_path / "cells").iterdir()
    store = CellStore(tmp_path)
    stored = store.load(cell.name).diagnosis
    assert stored["settings"]["method"] == METHOD and stored["scalars"]["diagnostics_method"] == METHOD
    old = {**stored, "settings": {k: v for k, v in stored["settings"].items() if k != "method"},
           "scalars": {**stored["scalars"], "diagnostics_method": None, "effect": "old"}}
    store.set_diagnosis(cell.name, old)
    again = run_suite(parse_suite(TINY), tmp_path, progress=False)
    assert again.trained == [] and again.retested == [cell.name]
    table = pd.read_csv(tmp_path / "diagnostics.csv")
    assert table["diagnostics_method"].tolist() == [METHOD] and table["effect"].tolist() != ["old"]
    assert store.load(cell.name).diagnosis["settings"]["method"] == METHOD


@pytest.mark.parametrize("bad, key", [({"samples": 0}, "diagnostics.samples"),
                                      ({"enabled": "yes"}, "diagnostics.enabled"),
                                      ({"max_dim": 1.5}, "diagnostics.max_dim"),
                                      ({"bogus": 1}, "diagnostics.bogus")])
def test_bad_diagnostics_options_are_one_line_errors(tmp_path, capsys, bad, key):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**TINY, "diagnostics": bad}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err, err
    if "bogus" in bad:
        assert "allowed:" in err and "samples" in err


def test_benchmark_returns_the_verdict(tmp_path):
    torch.manual_seed(0)
    model = rb.MODELS.get("ott_conv1d")((2,), 2, width=8)
    x = torch.randn(64, 2)
    y = (x.norm(dim=1) > 1).long()
    out = rb.benchmark(model, (x, y), [{"solver": "euler", "steps": [1, 4]}], report=tmp_path / "r",
                       train={"solver": "euler", "steps": 2})
    assert out.diagnostics["effect"] in ("robust", "fold", "accumulation", "mixed")
    assert out.summary["effect"].iloc[0] == out.diagnostics["effect"]
    assert (tmp_path / "r" / "diagnostics.csv").is_file()
    none = rb.benchmark(model, (x, y), [{"solver": "euler", "steps": [1]}], diagnostics=False,
                        train={"solver": "euler", "steps": 2})
    assert none.diagnostics is None and "effect" not in none.summary.columns
    with pytest.raises(rb.SuiteError, match="diagnostics.samples"):
        rb.benchmark(model, (x, y), train={"solver": "euler", "steps": 2}, diagnostics={"samples": -1})
    shutil.rmtree(tmp_path / "r")
