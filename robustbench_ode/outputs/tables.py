"""Tidy result tables, written and read with the declared schema (:mod:`robustbench_ode.core.schema`):
one row per (cell, test configuration) in ``results.csv``; one row per training iteration in
``training.csv``.

Numbers stay numbers (empty cells are NaN or <NA>, never strings), flags are booleans and
counters are columns, so every plot, report and leaderboard is built from these tables alone.
Every reader of a table in the package goes through :func:`frame` / :func:`read_table`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import SuiteError
from ..core.schema import RESULTS, TRAINING, Column

_TRUE, _FALSE = {"true", "1", "1.0", "yes"}, {"false", "0", "0.0", "no"}


def _flag(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return pd.NA
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else pd.NA


def frame(rows: Iterable[dict[str, Any]] | pd.DataFrame,
          schema: tuple[Column, ...] = RESULTS) -> pd.DataFrame:
    """Rows as a table with every column of ``schema`` (in order, typed; missing ones empty),
    then any other columns they carry."""
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    for col in schema:
        if col.name not in df.columns:
            df[col.name] = pd.NA
        if col.kind == "int":
            df[col.name] = pd.to_numeric(df[col.name], errors="coerce").astype("Int64")
        elif col.kind == "float":
            df[col.name] = pd.to_numeric(df[col.name], errors="coerce").astype("float64")
        elif col.kind == "bool":
            df[col.name] = df[col.name].map(_flag).astype("boolean")
        else:
            df[col.name] = df[col.name].astype(object).where(df[col.name].notna(), None)
    if "training" in df.columns:  # tables written before suites could list trainings have one, unnamed
        df["training"] = df["training"].fillna("default")
    names = [c.name for c in schema]
    return df[names + [c for c in df.columns if c not in names]]


def results_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return frame(rows, RESULTS)


def training_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return frame(rows, TRAINING)


def is_regression(results: pd.DataFrame) -> bool:
    """A table of time-series regression rows: trajectory errors (``mse``), no accuracies."""
    return "mse" in results.columns and bool(results["mse"].notna().any()) \
        and not bool(results["accuracy"].notna().any())


# pandas 2 parses floats approximately by default; pandas 3 is exact and deprecates the option
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def read_table(path: Path, schema: tuple[Column, ...] = RESULTS, *,
               need: tuple[str, ...] = ()) -> pd.DataFrame:
    """A table read back with its schema's types. A file that is missing, unreadable or not a
    table, or that lacks a column of ``need``, is a one-line :class:`SuiteError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: no such table")
    try:
        if path.stat().st_size == 0:
            df = pd.DataFrame()
        else:
            df = pd.read_csv(path, low_memory=False, **_EXACT_FLOATS)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SuiteError(f"{path}: not a readable CSV table ({type(exc).__name__})") from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SuiteError(f"{path}: not a results table: no {', '.join(missing)} column")
    return frame(df, schema)


def read_results(path: Path) -> pd.DataFrame:
    return read_table(path, RESULTS)


def read_training(path: Path) -> pd.DataFrame:
    return read_table(path, TRAINING)


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write then rename: a kill leaves the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _text(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    return v


def start_table(path: Path, schema: tuple[Column, ...]) -> None:
    """A new CSV file holding only the schema's header."""
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerow([c.name for c in schema])


def append_rows(rows: list[dict[str, Any]], path: Path, schema: tuple[Column, ...]) -> None:
    """Append rows (the schema's columns, in order) to a CSV file, writing the header first when
    the file is new: the per-cell cost of keeping a table current does not grow with the table."""
    if not rows:
        return
    path = Path(path)
    names = [c.name for c in schema]
    new = not path.is_file() or path.stat().st_size == 0
    with open(path, "a", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(names)
        writer.writerows([[_text(row.get(n)) for n in names] for row in rows])
