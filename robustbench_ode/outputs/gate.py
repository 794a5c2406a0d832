"""The CI gate: a run's ``results.csv`` against a baseline table, row by row (``regress``).

A row is identified by its dataset, model, training, seed, train configuration and test configuration
(:data:`KEY`), not by the cell hash, which changes with the package version. A regression is:

- ``accuracy``: accuracy dropped by more than ``acc_tol`` (absolute);
- ``nfe``: NFE per solve rose by more than ``nfe_tol`` (relative);
- ``mse``: the trajectory error of a time-series row rose by more than ``mse_tol`` (relative: an
  error spans decades, so an absolute tolerance would fit one scale only);
- ``status``: the status got worse (see :attr:`robustbench_ode.core.status.Status.severity`);
- ``missing``: a baseline row has no counterpart in the run.

Rows new in the run are not regressions (a grown grid is fine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.errors import SuiteError
from ..core.files import show_path
from ..core.status import Status
from .tables import read_results

KEY = ["dataset", "model", "training", "seed", "train_solver", "train_steps", "train_tol", "test_solver",
       "test_steps", "test_tol"]


@dataclass(frozen=True)
class Regression:
    kind: str  # accuracy, mse, nfe, status, missing
    row: str  # the row's key, readable
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.row}: {self.detail}"


def load_table(path: str | Path) -> pd.DataFrame:
    """A results table from a CSV file or a run directory (its ``results.csv``): a missing,
    unreadable or malformed table (no key or metric column, no rows, text in a number column) is
    a one-line SuiteError naming the file (outputs/tables.py)."""
    return read_results(Path(path))


def load_baseline(path: str | Path) -> pd.DataFrame:
    """A baseline for :func:`regressions`: a results table whose finished rows each carry a metric
    (an accuracy or a trajectory error), so that a table stripped of its numbers cannot pass."""
    table = load_table(path)
    ok = table["status"] == "ok"
    bare = ok & table["accuracy"].isna() & table["mse"].isna()
    if bare.any():
        row = int(bare.to_numpy().nonzero()[0][0]) + 1
        raise SuiteError(f"{show_path(path)}: row {row} has status ok but no accuracy or mse; a "
                         "baseline row carries the metric it guards")
    return table


def _key_text(v) -> str:
    # Tolerances go through float arithmetic (factor x train tol): compare them to 9 digits.
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "-"
    return f"{v:.9g}" if isinstance(v, float) else str(v)


def _keyed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["_key"] = [" ".join(f"{c}={_key_text(v)}" for c, v in zip(KEY, vals) if _key_text(v) != "-")
                  for vals in df[KEY].itertuples(index=False)]
    # Per-sample step control is a test point of its own; batch (or a table from before the
    # test_control column was filled) keeps the key it always had.
    if "test_control" in df.columns:
        per_sample = df["test_control"].astype("string").fillna("").eq("per_sample")
        df.loc[per_sample, "_key"] = df.loc[per_sample, "_key"] + " test_control=per_sample"
    return df.drop_duplicates("_key").set_index("_key")


def _severity(status) -> int:
    return Status.parse(status).severity


def regressions(run: pd.DataFrame, baseline: pd.DataFrame, acc_tol: float = 0.02,
                nfe_tol: float = 0.10, mse_tol: float = 0.10) -> list[Regression]:
    run_k, base_k = _keyed(run), _keyed(baseline)
    out: list[Regression] = []
    for key, base in base_k.iterrows():
        if key not in run_k.index:
            out.append(Regression("missing", key, "row of the baseline is not in the run"))
            continue
        new = run_k.loc[key]
        if _severity(new["status"]) > _severity(base["status"]):
            out.append(Regression("status", key, f"{base['status']} -> {new['status']}"))
            continue  # a failed row has no accuracy to compare
        if pd.notna(base["accuracy"]) and pd.notna(new["accuracy"]) \
                and new["accuracy"] < base["accuracy"] - acc_tol:
            out.append(Regression("accuracy", key, f"{base['accuracy']:.4f} -> {new['accuracy']:.4f} "
                                  f"(tolerance {acc_tol:g})"))
        if "mse" in base.index and "mse" in new.index and pd.notna(base["mse"]) \
                and pd.notna(new["mse"]) and new["mse"] > base["mse"] * (1 + mse_tol):
            out.append(Regression("mse", key, f"{base['mse']:.4g} -> {new['mse']:.4g} "
                                  f"(tolerance {mse_tol:.0%})"))
        if pd.notna(base["nfe"]) and pd.notna(new["nfe"]) and new["nfe"] > base["nfe"] * (1 + nfe_tol):
            out.append(Regression("nfe", key, f"{base['nfe']:g} -> {new['nfe']:g} "
                                  f"(tolerance {nfe_tol:.0%})"))
    return out


def comparison(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Side by side, one line per row key of either table: accuracy, NFE and status of A and B
    and their differences (B - A)."""
    cols = ["accuracy", "nfe", "status"]
    ka, kb = _keyed(a)[cols], _keyed(b)[cols]
    both = ka.merge(kb, how="outer", left_index=True, right_index=True, suffixes=("_a", "_b"))
    both["d_accuracy"] = both["accuracy_b"] - both["accuracy_a"]
    both["d_nfe"] = both["nfe_b"] - both["nfe_a"]
    both = both[["accuracy_a", "accuracy_b", "d_accuracy", "nfe_a", "nfe_b", "d_nfe", "status_a",
                 "status_b"]]
    both.index.name = "row"
    return both.reset_index()
