"""Every committed ``results/*/summary.csv`` is what today's code derives from the run's own
``results.csv`` and ``diagnostics.csv`` (``python -m robustbench_ode report DIR`` rebuilds it): the
same columns and the same values. A metric added to outputs/summary.py without rebuilding the
committed runs, or a hand-edited summary, fails here, naming the run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustbench_ode.core.schema import DIAGNOSTICS
from robustbench_ode.outputs.summary import summarize
from robustbench_ode.outputs.tables import read_results, read_table

ROOT = Path(__file__).resolve().parents[1] / "results"
RUNS = sorted(p.parent.name for p in ROOT.glob("*/summary.csv") if (p.parent / "results.csv").exists())


def _derived(run: Path) -> pd.DataFrame:
    diagnostics = (read_table(run / "diagnostics.csv", DIAGNOSTICS, what="diagnostics.csv")
                   if (run / "diagnostics.csv").exists() else None)
    return summarize(read_results(run / "results.csv"), diagnostics)


def _same(a: pd.Series, b: pd.Series) -> bool:
    x, y = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
    if x.notna().sum() == a.notna().sum() and y.notna().sum() == b.notna().sum():
        return bool(np.allclose(x.to_numpy(float), y.to_numpy(float), rtol=1e-6, atol=1e-9, equal_nan=True))
    def text(column):
        return column.astype(object).fillna("").astype(str).tolist()

    return text(a) == text(b)


def test_the_committed_runs_are_found():
    assert len(RUNS) >= 20 and "sphere2" in RUNS and "demo" in RUNS


@pytest.mark.parametrize("run", RUNS)
def test_a_committed_summary_is_what_todays_code_derives(run):
    committed = pd.read_csv(ROOT / run / "summary.csv")
    derived = _derived(ROOT / run)
    assert list(committed.columns) == list(derived.columns), (
        f"results/{run}/summary.csv is stale: rebuild it with `python -m robustbench_ode report "
        f"results/{run}` (missing {sorted(set(derived.columns) - set(committed.columns))}, "
        f"extra {sorted(set(committed.columns) - set(derived.columns))})")
    assert len(committed) == len(derived), run
    changed = [c for c in committed.columns if not _same(committed[c], derived[c])]
    assert not changed, f"results/{run}/summary.csv differs from its results.csv in {changed}"
