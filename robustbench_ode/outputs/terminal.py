"""The run's summary as the terminal shows it at the end of ``run``: one row per train
configuration (its seeds averaged), the key robustness metrics of :data:`.summary.METRICS` (those
the report's summary table shows), the diagnostics verdict (``effect``) where the run diagnosed
its models and the critical step count where it swept train step counts; at most :data:`WIDTH`
columns (metric columns are dropped from the end of the list, then configuration labels cut);
then the test grid (:func:`grid_text`): accuracy by train x test configuration, wrapped in blocks
of test columns to fit the same width.

It is built by :func:`.summary.summarize` from the tables the run wrote (``results.csv``,
``diagnostics.csv``), the function that writes ``summary.csv``, so the two never differ.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd

from ..core.schema import DIAGNOSTICS
from .summary import Metric, shown, summarize
from .tables import read_results, read_table

WIDTH = 100  # columns of the terminal the table is made for
KEPT = 3  # metric columns never dropped to fit (the first of the page's list)
MIN_LABEL = 12  # a configuration label is never cut shorter than this
NAN_TEXT = "-"
COUNTS = ("nfe_train", "nfe_ref", "n_failed", "n_tests")  # shown as whole numbers
VARYING = ("dataset", "model", "training")  # in a row's label only where the run has several
GRID_METRICS = ("accuracy", "mse", "nll")  # what the grid shows: the first the run has
GRID_LABEL = 32  # the grid's row labels are cut to this, so that test columns fit beside them
# the order metric columns are dropped in to fit (from the end): a density run's own (first, so the
# NLL columns are kept), the report's, then time series'
METRIC_ORDER: list[Metric] = [*(m for m in shown("density") if m not in shown("report")), *shown("report"),
                              *(m for m in shown("regression") if m not in shown("report"))]


def _config(row: pd.Series, side: str = "train") -> str:
    """A train (or test) configuration as the suite names it: euler-8 (steps), dopri5@0.01
    (tolerance)."""
    solver = str(row.get(f"{side}_solver", "?"))
    if pd.notna(row.get(f"{side}_steps")):
        return f"{solver}-{int(row[f'{side}_steps'])}"
    if pd.notna(row.get(f"{side}_tol")):
        return f"{solver}@{float(row[f'{side}_tol']):g}"
    return solver


def labels(summary: pd.DataFrame) -> pd.Series:
    """Each model's train configuration, led by the dataset, model and training where these vary."""
    parts = [c for c in VARYING if c in summary.columns and summary[c].nunique(dropna=False) > 1]
    return summary.apply(lambda r: " ".join([*(str(r[c]) for c in parts), _config(r)]), axis=1)


def _verdict(values: pd.Series) -> str:
    """The seeds' diagnostics verdict: the one they share, else the commonest with its count."""
    found = values.dropna().astype(str)
    if found.empty:
        return NAN_TEXT
    counts = found.value_counts()
    return counts.index[0] if len(counts) == 1 else f"{counts.index[0]} {counts.iloc[0]}/{len(found)}"


def _metrics(summary: pd.DataFrame) -> list[Metric]:
    """The report's metrics of this kind of run (classification, time-series regression, density)."""
    no_accuracy = summary.get("acc_train", pd.Series()).isna().all()
    regression = "mse_train" in summary.columns and no_accuracy
    density = "nll_train" in summary.columns and no_accuracy
    page = "regression" if regression else "density" if density else "report"
    return [m for m in shown(page) if m.name in summary.columns]


def by_configuration(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per train configuration (suite order): the seed count, the metrics' seed means,
    the verdict and the critical step count (columns only where the run has them)."""
    names = [m.name for m in _metrics(summary)]
    df = summary.assign(configuration=labels(summary))
    groups = df.groupby("configuration", sort=False)
    out = pd.DataFrame({"configuration": list(groups.groups)})
    if groups.size().max() > 1:
        out["seeds"] = groups.size().to_numpy()
    for name in names:
        out[name] = groups[name].apply(lambda v: pd.to_numeric(v, errors="coerce").mean()).to_numpy()
    if "effect" in df.columns and df["effect"].notna().any():
        out["effect"] = groups["effect"].apply(_verdict).to_numpy()
    if "critical_steps" in df.columns and df["critical_steps"].notna().any():
        out["critical_steps"] = groups["critical_steps"].first().to_numpy()
    return out


def _text(name: str, value) -> str:
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return NAN_TEXT
    return f"{value:.0f}" if name in COUNTS or name in ("seeds", "critical_steps") else f"{value:.3f}"


def _render(table: pd.DataFrame) -> str:
    shown_table = table.copy()
    for col in shown_table.columns:
        shown_table[col] = [_text(col, v) for v in table[col]]
    if "configuration" in shown_table.columns:  # labels read from the left
        pad = max(len("configuration"), int(shown_table["configuration"].str.len().max()))
        shown_table["configuration"] = shown_table["configuration"].str.ljust(pad)
        shown_table = shown_table.rename(columns={"configuration": "configuration".ljust(pad)})
    return shown_table.to_string(index=False, justify="right")


def fitted(table: pd.DataFrame, width: int = WIDTH) -> tuple[str, list[str]]:
    """The table as text of at most ``width`` columns, and the metric columns left out to fit."""
    metrics = [m.name for m in METRIC_ORDER if m.name in table.columns]
    dropped: list[str] = []
    text = _render(table)
    while _widest(text) > width and len(metrics) > KEPT:
        name = metrics.pop()
        dropped.insert(0, name)
        table = table.drop(columns=name)
        text = _render(table)
    over = _widest(text) - width
    if over > 0 and "configuration" in table.columns:
        keep = max(MIN_LABEL, int(table["configuration"].str.len().max()) - over)
        table = table.assign(configuration=[_cut(c, keep) for c in table["configuration"]])
        text = _render(table)
    return "\n".join(line[:width].rstrip() for line in text.splitlines()), dropped


def _cut(label: str, keep: int) -> str:
    """``label`` in at most ``keep`` characters, cut in the middle: its end is the train solver
    and steps, which tell the rows apart."""
    if len(label) <= keep:
        return label
    tail = (keep - 3) * 2 // 3
    return f"{label[:keep - 3 - tail]}...{label[-tail:]}"


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def summary_text(summary: pd.DataFrame, width: int = WIDTH) -> str:
    """The terminal's summary of a run's ``summary`` (:func:`.summary.summarize`): a title line,
    the table, and which metric columns were left out to fit ``width``; empty without models."""
    if summary.empty:
        return ""
    table = by_configuration(summary)
    text, dropped = fitted(table, width)
    seeds = " (mean over seeds)" if "seeds" in table.columns else ""
    same = [str(summary[c].iloc[0]) for c in VARYING[:2]
            if c in summary.columns and summary[c].nunique(dropna=False) == 1]
    title = f"summary{seeds}: {len(table)} train configuration{'s' * (len(table) != 1)}"
    title += f" of {', '.join(same)}" if same else ""
    note = f"(not shown to fit {width} columns: {', '.join(dropped)}; all in summary.csv)"
    left = textwrap.wrap(note, width) if dropped else []
    return "\n".join(line[:width] for line in [title, *text.splitlines(), *left])


def grid_text(results: pd.DataFrame, width: int = WIDTH) -> str:
    """The test grid as a table of at most ``width`` columns: one row per train configuration
    (labelled as in the summary), one column per test configuration (suite order), the mean
    accuracy over seeds (a regression run: the mean trajectory MSE); the columns that do not fit
    continue in blocks below, each led by the row labels (pandas' ``line_width``). Empty
    without rows or scores."""
    metric = next((m for m in GRID_METRICS if m in results.columns and results[m].notna().any()), None)
    if results.empty or metric is None:
        return ""
    rows = results.assign(train=[_cut(label, GRID_LABEL) for label in labels(results)],
                          test=results.apply(_config, axis=1, side="test"),
                          score=pd.to_numeric(results[metric], errors="coerce"))
    table = rows.pivot_table(index="train", columns="test", values="score", aggfunc="mean",
                             sort=False, dropna=False)
    table = table.reindex(index=list(dict.fromkeys(rows["train"])), columns=_test_order(rows))
    table.index.name = table.columns.name = None
    body = table.to_string(line_width=width, na_rep=NAN_TEXT, float_format=lambda v: f"{v:.3f}")
    seeds = " (mean over seeds)" if rows.groupby("train", sort=False)["seed"].nunique().max() > 1 else ""
    title = f"{metric} by train (rows) x test configuration (columns){seeds}:"
    return "\n".join(line[:width].rstrip() for line in [title, *body.splitlines()])


def _test_order(rows: pd.DataFrame) -> list[str]:
    """The test configurations by solver (in the order the suite meets them), then by steps, then
    by tolerance from coarse to fine."""
    solvers = list(dict.fromkeys(rows["test_solver"]))
    steps = pd.to_numeric(rows.get("test_steps"), errors="coerce")
    tols = pd.to_numeric(rows.get("test_tol"), errors="coerce")
    keys = {test: (solvers.index(solver), n if pd.notna(n) else math.inf, -t if pd.notna(t) else 0.0)
            for test, solver, n, t in zip(rows["test"], rows["test_solver"], steps, tols)}
    return sorted(keys, key=keys.__getitem__)


def run_summary(run_dir: str | Path, width: int = WIDTH) -> str:
    """:func:`summary_text` of the run folder ``run_dir``, from its results.csv and diagnostics.csv,
    then its :func:`grid_text`."""
    run_dir = Path(run_dir)
    results = read_results(run_dir / "results.csv")
    path = run_dir / "diagnostics.csv"
    diagnostics = read_table(path, DIAGNOSTICS, what=path.name) if path.exists() else None
    text = summary_text(summarize(results, diagnostics), width)
    grid = grid_text(results, width) if text else ""
    return f"{text}\n{grid}" if grid else text
