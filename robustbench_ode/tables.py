"""Tidy result tables: one row per (cell, test configuration); one row per training iteration.

Numbers stay numbers (empty cells are NaN, never strings) and counters are columns, so every plot,
report and leaderboard is built from these tables alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

# The leading columns, in order; any others follow.
RESULT_COLUMNS = ["dataset", "model", "training", "seed", "train_solver", "train_steps", "train_tol",
                  "test_solver", "test_steps", "test_tol", "accuracy", "mse", "loss", "nfe", "status"]
INT_COLUMNS = ["seed", "train_steps", "test_steps"]


def results_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    for col in RESULT_COLUMNS:
        if col not in df.columns:
            df[col] = pd.NA
    # tables written before suites could list trainings have one, unnamed
    df["training"] = df["training"].fillna("default")
    for col in INT_COLUMNS:
        df[col] = pd.to_numeric(df[col]).astype("Int64")  # nullable: fixed rows have no tol
    for col in ("train_tol", "test_tol", "accuracy", "mse", "loss", "nfe"):
        df[col] = pd.to_numeric(df[col]).astype("float64")
    rest = [c for c in df.columns if c not in RESULT_COLUMNS]
    return df[RESULT_COLUMNS + rest]


def is_regression(results: pd.DataFrame) -> bool:
    """A table of time-series regression rows: trajectory errors (``mse``), no accuracies."""
    return "mse" in results.columns and bool(results["mse"].notna().any()) \
        and not bool(results["accuracy"].notna().any())


def training_frame(cells_logs: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> pd.DataFrame:
    frames = [pd.DataFrame(log).assign(**ident) for ident, log in cells_logs if log]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    first = [c for c in ("cell", "dataset", "model", "training", "seed", "train_solver", "train_steps",
                         "train_tol", "iteration") if c in df.columns]
    for col in ("train_steps", "seed"):
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    return df[first + [c for c in df.columns if c not in first]]


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write then rename: a kill leaves the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def read_results(path: Path) -> pd.DataFrame:
    return results_frame(pd.read_csv(path).to_dict("records"))
