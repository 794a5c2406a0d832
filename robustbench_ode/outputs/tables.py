"""Tidy result tables, written and read with the declared schema (:mod:`robustbench_ode.core.schema`):
one row per (cell, test configuration) in ``results.csv``; one row per training iteration in
``training.csv``.

Numbers stay numbers (empty cells are NaN or <NA>, never strings), flags are booleans and
counters are columns, so every plot, report and leaderboard is built from these tables alone.
Every reader of a table in the package goes through :func:`frame` / :func:`read_table`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import SuiteError
from ..core.files import named, read_text, show_path, write_atomic
from ..core.preview import clip, preview
from ..core.schema import RESULTS, TRAINING, Column

MAX_TABLE_BYTES = 256 << 20  # 256 MiB: far above any run's results.csv
# What a results table given on the command line must have (regress, compare, report, ...): a
# row's identity and its metrics; the identity's names filled in on every row. ``training`` may be
# absent (tables written before suites could list trainings: it reads as "default").
RESULTS_NEED = ("dataset", "model", "seed", "train_solver", "train_steps", "train_tol", "test_solver",
                "test_steps", "test_tol", "accuracy", "nfe", "status")
RESULTS_FILLED = ("dataset", "model", "seed", "train_solver", "test_solver", "status")

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


def is_density(results: pd.DataFrame) -> bool:
    """A table of density rows: test negative log-likelihoods (``nll``), no accuracies."""
    return "nll" in results.columns and bool(results["nll"].notna().any()) \
        and not bool(results["accuracy"].notna().any())


# pandas 2 parses floats approximately by default; pandas 3 is exact and deprecates the option
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _first_bad(df: pd.DataFrame, col: str, bad: pd.Series) -> str:
    i = int(bad.to_numpy().nonzero()[0][0])
    value = df[col].iloc[i]
    value = value.item() if isinstance(value, np.generic) else value  # 1.5, not np.float64(1.5)
    return f"column {clip(col, 40)}, row {i + 1}: {preview(value, 30)}"


def _check_numbers(df: pd.DataFrame, shown: str, schema: tuple[Column, ...]) -> None:
    """Numbers where the schema declares numbers (whole ones for ints): text read as NaN would
    otherwise pass silently (a renamed or shifted column, a ``true``, a ``1,5``)."""
    for col in schema:
        if col.kind not in ("int", "float") or col.name not in df.columns:
            continue
        raw = df[col.name]
        if raw.dtype.kind in "iuf":
            values = raw.astype("float64")
        else:
            values = pd.to_numeric(raw, errors="coerce")
            bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
            if bad.any():
                raise SuiteError(f"{shown}: {_first_bad(df, col.name, bad)} is not a number")
        if col.kind == "int":
            bad = ~(values.isna() | ((values == values.round()) & (values.abs() < 2**53)))
            if bad.any():
                raise SuiteError(f"{shown}: {_first_bad(df, col.name, bad)} is not a whole number")


def read_table(path: Path, schema: tuple[Column, ...] = RESULTS, *, need: tuple[str, ...] = (),
               filled: tuple[str, ...] = (), rows: bool = False, what: str = "table",
               complete: bool = False) -> pd.DataFrame:
    """A table read back with its schema's types. Any problem is a one-line :class:`SuiteError`
    naming the file: missing, not a regular file, unreadable, binary or not UTF-8 (core/files.py),
    not parseable as CSV, lacking a column of ``need``, an empty cell in a column of ``filled``,
    no rows when ``rows`` is set, or text (or a fraction) where the schema declares a number (or a
    whole number). An empty file is a table without rows."""
    shown = show_path(path)
    text = read_text(path, MAX_TABLE_BYTES, what, allow_empty=True)
    if complete and text.strip() and not text.endswith("\n"):  # every writer ends its rows
        raise SuiteError(f"{shown}: the last row is cut off (no line end); a {what} ends complete")
    if not text.strip():
        df = pd.DataFrame()
    else:
        try:
            df = pd.read_csv(io.StringIO(text), low_memory=False, **_EXACT_FLOATS)
        except pd.errors.EmptyDataError:
            df = pd.DataFrame()
        except Exception as exc:  # noqa: BLE001 - pandas' parser errors come in many types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SuiteError(f"{shown}: not a readable CSV {what} ({clip(first, 80)})") from None
    missing = [c for c in need if c not in df.columns]
    if missing:
        lacks = (f"no {', '.join(missing)} column{'s' * (len(missing) > 1)}" if len(missing) <= 3
                 else f"{len(missing)} of its columns are missing")
        raise SuiteError(f"{shown}: not a {what}: {lacks} (a {what} has {clip(', '.join(need), 120)})")
    if rows and df.empty:
        raise SuiteError(f"{shown}: no rows, only a header; a {what} needs at least one row")
    for col in filled:
        empty = df[col].isna() if col in df.columns else pd.Series(dtype=bool)
        if empty.any():
            raise SuiteError(f"{shown}: column {col}, row {int(empty.to_numpy().nonzero()[0][0]) + 1}: "
                             f"empty; every row names its {col}")
    _check_numbers(df, shown, schema)
    return frame(df, schema)


def read_results(path: Path) -> pd.DataFrame:
    """A results table given by a user (a file, or a run folder's ``results.csv``), checked for
    the columns and rows every command needs."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.csv"
    df = read_table(path, RESULTS, need=RESULTS_NEED, filled=RESULTS_FILLED, rows=True,
                    what="results table", complete=True)
    check_results(df, show_path(path))
    return df


# counts, sizes, tolerances, errors and times: never negative
_COUNTS = tuple(c.name for c in RESULTS if c.kind == "int") + (
    "nfe", "steps_taken", "accepted", "rejected", "train_tol", "test_tol", "mse", "eval_seconds",
    "train_seconds")
_FRACTIONS = tuple(c.name for c in RESULTS if c.kind == "float" and (c.name.startswith("accuracy")
                                                                     or c.name == "chance"))
# what identifies a row: the cell and the test point (harness/grid.py's row_key)
_ROW_KEY = ("cell", "test_solver", "test_steps", "test_tol", "test_control")


def check_results(df: pd.DataFrame, shown: str) -> None:
    """A results table's values in range (accuracies in [0, 1], counts >= 0) and each row key
    (cell and test point) once; else a one-line SuiteError (a hand-edited or damaged table)."""
    for name in _FRACTIONS:
        if name in df.columns:
            values = pd.to_numeric(df[name], errors="coerce")
            bad = values.notna() & ~values.between(0, 1)
            if bad.any():
                raise SuiteError(f"{shown}: {_first_bad(df, name, bad)} is outside [0, 1]")
    for name in _COUNTS:
        if name in df.columns:
            bad = pd.to_numeric(df[name], errors="coerce") < 0
            if bad.any():
                raise SuiteError(f"{shown}: {_first_bad(df, name, bad)} is negative; counts are >= 0")
    key = [c for c in _ROW_KEY if c in df.columns]
    if "cell" in key:
        dup = df.duplicated(subset=key, keep="first")
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0]) + 2
            raise SuiteError(f"{shown}: line {row} repeats the row of an earlier line (same cell and "
                             "test point); a results table has each once")


def read_training(path: Path) -> pd.DataFrame:
    return read_table(path, TRAINING)


def run_table(run_dir: Path, name: str) -> Path | None:
    """A run folder's table ``name`` (``training.csv``, ``density_grid.csv``, ...), else its
    compressed copy ``name.gz`` (what a committed run with a large table keeps; the bounded reader
    decompresses it); None if it has neither."""
    for candidate in (name, name + ".gz"):
        if (Path(run_dir) / candidate).exists():
            return Path(run_dir) / candidate
    return None


def training_log(run_dir: Path) -> Path | None:
    """A run folder's training log: ``training.csv`` or ``training.csv.gz`` (:func:`run_table`)."""
    return run_table(run_dir, "training.csv")


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write then rename: a kill or a full disk leaves the old file or the new one, never half of
    one, and no temporary file (core/files.py)."""
    text = [c for c in df.columns if df[c].dtype.kind == "O"]
    if text:
        df = df.assign(**{c: df[c].map(neutral) for c in text})
    write_atomic(path, lambda tmp: df.to_csv(tmp, index=False))


_FORMULA = ("=", "+", "@", "\t", "\r", "|")


def neutral(v: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=cmd|' /C calc'!A0``, ``@SUM(...)``,
    ``-2+3``) with a leading ``'``, as OWASP's CSV-injection advice says; numbers, and text
    that is a number (``-0.5``), are left alone."""
    if not isinstance(v, str) or not v.startswith((*_FORMULA, "-")):
        return v
    if v.startswith("-"):
        try:
            float(v)
            return v
        except ValueError:
            pass
    return "'" + v


def _text(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    return neutral(v)


def start_table(path: Path, schema: tuple[Column, ...]) -> None:
    """A new CSV file holding only the schema's header."""
    try:
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerow([c.name for c in schema])
    except OSError as exc:
        Path(path).unlink(missing_ok=True)  # a full disk: no half-written file is left behind
        raise named(exc, path) from None


def append_rows(rows: list[dict[str, Any]], path: Path, schema: tuple[Column, ...]) -> None:
    """Append rows (the schema's columns, in order) to a CSV file, writing the header first when
    the file is new: the per-cell cost of keeping a table current does not grow with the table."""
    if not rows:
        return
    path = Path(path)
    names = [c.name for c in schema]
    size = path.stat().st_size if path.is_file() else 0
    try:
        with open(path, "a", newline="") as fh:
            writer = csv.writer(fh)
            if size == 0:
                writer.writerow(names)
            writer.writerows([[_text(row.get(n)) for n in names] for row in rows])
    except OSError as exc:
        _truncate(path, size)  # a full disk: no half-written row is left behind
        raise named(exc, path) from None


def _truncate(path: Path, size: int) -> None:
    try:
        with open(path, "r+b") as fh:  # shrinking a file needs no space
            fh.truncate(size)
    except OSError:
        pass
