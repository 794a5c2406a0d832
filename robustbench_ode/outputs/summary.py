"""``summary.csv``: one row per trained model, the robustness metrics read off ``results.csv``.

Definitions (for one trained model, i.e. one cell; "ok rows" are its test rows with status ok):

- ``acc_train``: test accuracy at the train configuration (the row with ``is_train_config``).
- ``acc_ref``: test accuracy under the reference solve (the row with ``is_reference``; dopri5 at
  rtol = atol = 1e-7 unless the suite's ``reference`` section says otherwise).
- ``ode_gap``: ``acc_train - acc_ref``. Near 0: the model behaves as an ODE; large and positive:
  it learned the discrete map of its train solver.
- ``worst_drop``: ``acc_train - min(accuracy over the ok rows)``, the largest loss of accuracy
  anywhere on the test grid (0 if no row is worse than the train configuration; negative never,
  since the train row is itself one of the rows).
- ``worst_drop_finer``: ``acc_train - min(accuracy)`` over the ok rows *at least as accurate as
  the train configuration* (:func:`finer`): a fixed-step row of a solver of the same or higher
  order with at least as many steps as a fixed-step train configuration (a tolerance row of the
  same or higher order at a tolerance no larger than an adaptive one's), and the reference. The
  coarser rows, where every model can fall to chance, are left out, so a model that learned an
  ODE has it near 0 and one that learned its train solver's map does not.
- ``deploy_solver``, ``deploy_steps``, ``deploy_tol``, ``deploy_nfe``, ``deploy_accuracy``: the
  deployment recommendation, the cheapest test configuration (fewest ``nfe``; the more accurate on
  a tie) whose accuracy is within ``tolerance`` of ``acc_ref`` (default
  :data:`DEPLOY_TOLERANCE`, 0.01; ``summarize(..., tolerance=)``), read from the work-precision
  rows (the reference row counts, so there is one wherever the reference finished).
- ``nfe_train``, ``nfe_ref``: function evaluations per batch solve at those two rows.
- ``drift``: mean relative distance of the final states, train configuration vs reference
  (measured in :mod:`robustbench_ode.harness.evaluation`, stored on the train row).
- ``n_failed``: test rows whose status is not ok; ``failed_<status>``: the count per status.
- Time-series regression (the rows carry ``mse``, the mean squared trajectory error, instead of
  an accuracy): ``mse_train`` and ``mse_ref`` at the train configuration and the reference solve,
  ``mse_ref_ratio`` = ``mse_ref / mse_train`` (the analogue of ``ode_gap``: about 1 or below, the
  model behaves as an ODE; much above 1, it learned its train solver's discrete map),
  ``mse_worst`` (the largest mse over the ok rows) and ``mse_worst_ratio`` =
  ``mse_worst / mse_train`` (1 if no test configuration does worse than training; a coarse test
  solver raises it for any model). The accuracy columns are NaN for these models, and
  classification summaries have no mse columns.
- Density (continuous normalising flows, docs/cnf.md; the rows carry ``nll``, the test negative
  log-likelihood in nats per dimension): ``nll_train`` and ``nll_ref`` at the train configuration
  and the reference solve, ``nll_gap`` = ``nll_ref - nll_train`` (positive: the flow is worse
  than its train solver claims; near 0: its likelihood holds under an accurate solve),
  ``nll_worst`` (the largest nll over the ok rows), and ``energy_train`` / ``energy_ref``, the
  energy distance of the flow's samples to held-out data under the two solves (``energy_distance``
  of those rows). Their seed spread: :func:`seed_spread`. The accuracy columns are NaN for these
  models, and other summaries have no nll columns.
- With the run's ``diagnostics.csv``: ``effect`` (robust, fold, accumulation, mixed,
  undetermined), ``flip_fraction``, ``flips_at_fold_share``, ``fold_fraction``,
  ``fold_near_fraction``, ``min_log_det``, ``crossing_fraction``, ``ref_fold_fraction``,
  ``flips_concentrated_share`` and ``diagnostics_status`` (definitions: docs/diagnostics.md).
- ``critical_steps`` (and ``critical_steps_mean/std/min/max``, ``critical_seeds``,
  ``swept_steps``, ``critical_tol``): where the run sweeps train step counts, the critical step
  count of the model's (dataset, model, train solver) group, the same value on each of its rows
  (definition in :mod:`robustbench_ode.critical`).

Each metric is a declared record in :data:`METRICS` (:class:`Metric`): its column, the function of
a cell's rows that computes it (one function may compute several columns: a group), which way is
better, where it is shown (the report's summary table of a classification or a time-series run,
the leaderboard) and its legend. The summary, the report and the leaderboard all read the list:
adding a metric is appending one record (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from ..core.registry import UnknownNameError
from ..core.status import Status
from ..solvers import SOLVERS
from .critical import KEYS, critical_steps
from .intervals import seed_intervals

# The columns that identify a trained model, in the order they lead the summary.
ID_COLUMNS = ["dataset", "model", "training", "train_solver", "train_steps", "train_tol", "seed"]

NAN = float("nan")


def _one(rows: pd.DataFrame, flag: str, col: str) -> float:
    if flag not in rows.columns:
        return NAN
    hit = rows[rows[flag].fillna(False).astype(bool) & (rows["status"] == "ok")]
    return float(hit[col].iloc[0]) if len(hit) and col in hit.columns else NAN


def accuracy_metrics(rows: pd.DataFrame) -> dict[str, Any]:
    acc_train = _one(rows, "is_train_config", "accuracy")
    acc_ref = _one(rows, "is_reference", "accuracy")
    ok = rows.loc[rows["status"] == "ok", "accuracy"].dropna()
    return {"acc_train": acc_train, "acc_ref": acc_ref, "ode_gap": acc_train - acc_ref,
            "worst_drop": acc_train - float(ok.min()) if len(ok) else NAN}


def finer(row: pd.Series, train_solver: str, train_steps: Any, train_tol: Any) -> bool:
    """Whether a test row is at least as accurate as the train configuration by construction (the
    reference; a solver of the same or higher order with at least as many steps, or a tolerance no
    larger, of the train configuration's kind). An unknown solver name is not."""
    if bool(row.get("is_reference")):
        return True
    try:
        order = SOLVERS.get(str(row["test_solver"])).order
        trained = SOLVERS.get(str(train_solver)).order
    except (KeyError, UnknownNameError):
        return False
    if order is None or trained is None or order < trained:
        return False
    if pd.notna(train_steps):
        return bool(pd.notna(row["test_steps"]) and row["test_steps"] >= train_steps)
    return bool(pd.notna(train_tol) and pd.notna(row["test_tol"]) and row["test_tol"] <= train_tol)


def finer_metrics(rows: pd.DataFrame) -> dict[str, Any]:
    first = rows.iloc[0]
    ok = rows[(rows["status"] == "ok") & rows["accuracy"].notna()]
    train = (first["train_solver"], first["train_steps"], first["train_tol"])
    keep = [finer(r, *train) for _, r in ok.iterrows()]
    worst = ok.loc[keep, "accuracy"] if len(ok) else ok["accuracy"]
    acc_train = _one(rows, "is_train_config", "accuracy")
    return {"worst_drop_finer": acc_train - float(worst.min()) if len(worst) else NAN}


DEPLOY_TOLERANCE = 0.01  # the deployment recommendation's default: within 1 point of acc_ref


def deployment_metrics(rows: pd.DataFrame, tolerance: float = DEPLOY_TOLERANCE) -> dict[str, Any]:
    """The cheapest ok test row within ``tolerance`` of acc_ref (module docstring)."""
    none = {"deploy_solver": None, "deploy_steps": NAN, "deploy_tol": NAN, "deploy_nfe": NAN,
            "deploy_accuracy": NAN}
    if not {"accuracy", "nfe"} <= set(rows.columns):  # a table without accuracy or cost (density)
        return none
    acc_ref = _one(rows, "is_reference", "accuracy")
    ok = rows[(rows["status"] == "ok") & rows["accuracy"].notna() & rows["nfe"].notna()]
    good = ok[ok["accuracy"] >= acc_ref - tolerance] if acc_ref == acc_ref else ok.iloc[:0]
    if good.empty:
        return none
    best = good.sort_values(["nfe", "accuracy"], ascending=[True, False], kind="stable").iloc[0]
    return {"deploy_solver": best["test_solver"], "deploy_steps": best["test_steps"],
            "deploy_tol": best["test_tol"], "deploy_nfe": float(best["nfe"]),
            "deploy_accuracy": float(best["accuracy"])}


def mse_metrics(rows: pd.DataFrame) -> dict[str, Any]:
    if "mse" not in rows.columns or not rows["mse"].notna().any():
        return {}  # a classifier's rows: no columns at all, so its summary is unchanged
    mse_train = _one(rows, "is_train_config", "mse")
    ok = rows.loc[rows["status"] == "ok", "mse"].dropna()
    worst = float(ok.max()) if len(ok) else NAN
    mse_ref = _one(rows, "is_reference", "mse")
    ratio = (lambda v: v / mse_train if mse_train > 0 else NAN)  # NaN propagates: a failed row
    return {"mse_train": mse_train, "mse_ref": mse_ref, "mse_ref_ratio": ratio(mse_ref),
            "mse_worst": worst, "mse_worst_ratio": ratio(worst)}


def nll_metrics(rows: pd.DataFrame) -> dict[str, Any]:
    if "nll" not in rows.columns or not rows["nll"].notna().any():
        return {}  # not a density model's rows: no columns at all
    nll_train, nll_ref = _one(rows, "is_train_config", "nll"), _one(rows, "is_reference", "nll")
    ok = rows.loc[rows["status"] == "ok", "nll"].dropna()
    return {"nll_train": nll_train, "nll_ref": nll_ref, "nll_gap": nll_ref - nll_train,
            "nll_worst": float(ok.max()) if len(ok) else NAN,
            "energy_train": _one(rows, "is_train_config", "energy_distance"),
            "energy_ref": _one(rows, "is_reference", "energy_distance")}


def cost_metrics(rows: pd.DataFrame) -> dict[str, Any]:
    return {"nfe_train": _one(rows, "is_train_config", "nfe"),
            "nfe_ref": _one(rows, "is_reference", "nfe"),
            "drift": _one(rows, "is_train_config", "drift")}


def failure_metrics(rows: pd.DataFrame) -> dict[str, Any]:
    counts = rows["status"].value_counts()
    out: dict[str, Any] = {"n_tests": len(rows), "n_failed": int((rows["status"] != "ok").sum())}
    for status in Status:
        if status is not Status.OK:
            out[f"failed_{status.value}"] = int(counts.get(status.value, 0))
    return out


Rows = Callable[[pd.DataFrame], dict[str, Any]]


@dataclass(frozen=True)
class Metric:
    """One column of summary.csv and where it goes. ``compute``: the function of one cell's rows
    that returns it (with the other columns of its group). ``better``: which way is better
    (``higher``, ``lower``, ``zero``: nearer 0; ``""``: a count or a cost). ``shown``: the pages
    that show it: ``report`` (the report's summary table), ``regression`` (that table for a
    time-series run), ``deployment`` (the report's deployment table, one row per model),
    ``leaderboard`` (a leaderboard column, the mean over seeds),
    ``leaderboard_present`` (a leaderboard column where some run has it), ``density`` (the
    report's summary table for a density run). ``legend``: what it is,
    in the legends of those pages."""

    name: str
    compute: Rows
    better: Literal["higher", "lower", "zero", ""] = ""
    shown: frozenset[str] = frozenset()
    legend: str = ""
    settings: tuple[str, ...] = ()  # the keyword arguments of summarize() its compute takes


def _on(*pages: str) -> frozenset[str]:
    return frozenset(pages)


_ALL = _on("report", "regression", "density")
METRICS: list[Metric] = [  # in the leaderboard's column order; summary.csv: its functions' order
    Metric("acc_ref", accuracy_metrics, "higher", _on("report", "leaderboard"),
           "test accuracy under the reference solve (the model read as a true ODE)"),
    Metric("ode_gap", accuracy_metrics, "zero", _on("report", "leaderboard"), "acc_train - acc_ref"),
    Metric("acc_train", accuracy_metrics, "higher", _on("report", "leaderboard"),
           "test accuracy at the model's own train solver and steps"),
    Metric("worst_drop", accuracy_metrics, "lower", _on("report"),
           "acc_train - the worst accuracy on the test grid, the coarsest test steps included"),
    Metric("worst_drop_finer", finer_metrics, "lower", _on("report", "leaderboard"),
           "acc_train - the worst accuracy over the test points at least as accurate as the train "
           "configuration (same or higher order, at least as many steps or a tolerance no larger; "
           "the reference)"),
    Metric("mse_train", mse_metrics, "lower", _on("regression"),
           "trajectory mse at the train configuration"),
    Metric("mse_ref", mse_metrics, "lower", _on("regression", "leaderboard_present"),
           "trajectory mse under the reference solve"),
    Metric("mse_ref_ratio", mse_metrics, "lower", _on("regression", "leaderboard_present"),
           "mse_ref / mse_train (near 1 or below: the model behaves as an ODE)"),
    Metric("mse_worst", mse_metrics, "lower", _on("regression"), "the largest mse on the test grid"),
    Metric("mse_worst_ratio", mse_metrics, "lower", _on("regression"), "mse_worst / mse_train"),
    Metric("nll_train", nll_metrics, "lower", _on("density"),
           "test NLL (nats/dim) at the train configuration: what the train solver claims"),
    Metric("nll_ref", nll_metrics, "lower", _on("density", "leaderboard_present"),
           "test NLL (nats/dim) under the reference solve (the flow read as a true ODE)"),
    Metric("nll_gap", nll_metrics, "zero", _on("density", "leaderboard_present"),
           "nll_ref - nll_train (positive: worse than the train solver claims)"),
    Metric("nll_worst", nll_metrics, "lower", _on(), "the largest test NLL on the test grid"),
    Metric("energy_train", nll_metrics, "lower", _on("density"),
           "energy distance of samples to held-out data at the train configuration"),
    Metric("energy_ref", nll_metrics, "lower", _on("density"),
           "energy distance of samples to held-out data under the reference solve"),
    Metric("drift", cost_metrics, "lower", _ALL | {"leaderboard"},
           "mean relative distance of the final states, train configuration vs reference solve"),
    Metric("nfe_train", cost_metrics, "", _ALL | {"leaderboard"},
           "field evaluations per solve of one batch at the train configuration"),
    Metric("nfe_ref", cost_metrics, "", _ALL | {"leaderboard"},
           "field evaluations per solve of one batch under the reference solve"),
    Metric("deploy_solver", deployment_metrics, "", _on("deployment"),
           "deployment recommendation: the cheapest test configuration (fewest nfe) within the "
           "tolerance (default 0.01) of acc_ref", ("tolerance",)),
    Metric("deploy_steps", deployment_metrics, "", _on("deployment"), "its steps (fixed-step)",
           ("tolerance",)),
    Metric("deploy_tol", deployment_metrics, "", _on("deployment"), "its tolerance (adaptive)",
           ("tolerance",)),
    Metric("deploy_nfe", deployment_metrics, "", _on("deployment"), "its field evaluations per batch solve",
           ("tolerance",)),
    Metric("deploy_accuracy", deployment_metrics, "higher", _on("deployment"), "its test accuracy",
           ("tolerance",)),
    Metric("n_tests", failure_metrics),
    Metric("n_failed", failure_metrics, "lower", _ALL, "test rows whose status is not ok"),
]


def shown(page: str) -> list[Metric]:
    """The metrics a page shows (:attr:`Metric.shown`), in declaration order."""
    return [m for m in METRICS if page in m.shown]


def legend(metrics: list[Metric]) -> str:
    """The legend of these metrics: ``name = what it is`` for each with one."""
    return "; ".join(f"{m.name} = {m.legend}" for m in metrics if m.legend)


def _groups() -> list[tuple[Rows, tuple[str, ...]]]:
    """The distinct functions of :data:`METRICS` with the settings they take, in the order of
    their first metric."""
    out: list[tuple[Rows, tuple[str, ...]]] = []
    for m in METRICS:
        if m.compute not in [f for f, _ in out]:
            out.append((m.compute, m.settings))
    return out


# benchmark()'s confidence interval of ode_gap (outputs/intervals.py), merged where given.
INTERVAL_COLUMNS = {
    "ode_gap_lo": "lower end of the 95% bootstrap interval of ode_gap (test samples resampled, 2000 times)",
    "ode_gap_hi": "upper end of that interval",
}
# Every summary, where a train configuration has several seeds (the same value on each of its rows).
SEED_INTERVAL_COLUMNS = {
    "ode_gap_seeds_lo": "lower end of the 95% bootstrap interval of the seeds' mean ode_gap "
                        "(seeds resampled, 2000 times)",
    "ode_gap_seeds_hi": "upper end of that interval",
}
SEED_GROUP = ["dataset", "model", "training", "train_solver", "train_steps", "train_tol"]

# From diagnostics.csv (robustbench_ode/diagnostics; docs/diagnostics.md): why a model breaks.
DIAGNOSTIC_COLUMNS = ["effect", "flip_fraction", "flips_at_fold_share", "fold_fraction", "fold_near_fraction",
                      "min_log_det", "crossing_fraction", "ref_fold_fraction", "flips_concentrated_share",
                      "diagnostics_status"]


def summarize(results: pd.DataFrame, diagnostics: pd.DataFrame | None = None, *,
              tolerance: float = DEPLOY_TOLERANCE, intervals: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trained model (``cell``), the identifying columns then every metric; with a
    run's ``diagnostics`` table, its verdict and main numbers (:data:`DIAGNOSTIC_COLUMNS`).
    ``tolerance``: the deployment recommendation's accuracy tolerance. ``intervals``: per cell,
    the columns of :data:`INTERVAL_COLUMNS` (``benchmark()``'s bootstrap of ode_gap over the test
    set, outputs/intervals.py)."""
    options = {"tolerance": tolerance}
    if results.empty:
        return pd.DataFrame(columns=["cell", *ID_COLUMNS])
    key = "cell" if "cell" in results.columns else ID_COLUMNS
    out = []
    for _, rows in results.groupby(key, sort=False, dropna=False):
        first = rows.iloc[0]
        row: dict[str, Any] = {c: first[c] for c in ["cell", *ID_COLUMNS] if c in rows.columns}
        if "train_status" in rows.columns:
            row["train_status"] = first["train_status"]
        for group, takes in _groups():
            row.update(group(rows, **{k: options[k] for k in takes}))
        out.append(row)
    df = pd.DataFrame(out)
    df = _with_critical(df, results)
    if diagnostics is not None and not diagnostics.empty and "cell" in df.columns:
        verdicts = diagnostics[["cell", *DIAGNOSTIC_COLUMNS]].drop_duplicates("cell")
        df = df.merge(verdicts, on="cell", how="left")
    df = _with_seed_intervals(df)
    if intervals is not None and not intervals.empty and "cell" in df.columns:
        df = df.merge(intervals[["cell", *INTERVAL_COLUMNS]], on="cell", how="left")
    for col in ("seed", "train_steps", "deploy_steps"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col]).astype("Int64")
    return df


def _with_seed_intervals(summary: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in SEED_GROUP if k in summary.columns]
    if "seed" not in summary.columns or "ode_gap" not in summary.columns or not keys:
        return summary
    # as objects: NaN train_steps / train_tol keys group and merge as one value
    keyed = summary.assign(**{k: summary[k].astype(object) for k in keys})
    found = seed_intervals(keyed, keys)
    if found.empty:
        return summary
    # a key that is NaN in every group (train_steps of tolerance-trained cells) comes back float
    found = found.astype({k: object for k in keys})
    return keyed.merge(found, on=keys, how="left").assign(**{k: summary[k].to_numpy() for k in keys})


CONFIGURATION = ["dataset", "model", "training", "train_solver", "train_steps", "train_tol"]


def seed_spread(summary: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Per train configuration (suite order): ``seeds`` and each metric's seed mean and standard
    deviation (``NAME``, ``NAME_std``; std NaN with one seed), over the seeds' summary rows."""
    keys = [c for c in CONFIGURATION if c in summary.columns]
    names = [n for n in names if n in summary.columns]
    groups = summary.groupby(keys, sort=False, dropna=False)
    out = groups.size().rename("seeds").reset_index()
    for name in names:
        values = groups[name].agg(["mean", "std"]).reset_index(drop=True)
        out[name], out[f"{name}_std"] = values["mean"].to_numpy(), values["std"].to_numpy()
    return out


def _with_critical(summary: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    if not set(KEYS) <= set(results.columns) or "is_train_config" not in results.columns:
        return summary
    critical = critical_steps(results)
    if critical.empty:
        return summary
    return summary.merge(critical, on=KEYS, how="left")
