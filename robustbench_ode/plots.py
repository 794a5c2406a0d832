"""Plots built from the results table alone (seaborn, PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from .tables import is_regression  # noqa: E402


def score(results: pd.DataFrame) -> tuple[str, str]:
    """The column a figure shows and its label: test accuracy, or for a time-series regression
    table the mean squared trajectory error (drawn on a log scale: it spans decades)."""
    if is_regression(results):
        return "mse", "test trajectory MSE"
    return "accuracy", "test accuracy"


def accuracy_vs_test_steps(results: pd.DataFrame, path: Path) -> Path | None:
    """The protocol's figure: test accuracy against test steps, one line per train configuration,
    one panel per test solver, the seeds as a band (95% CI). Adaptive test solvers get a panel
    with the test tolerance on the x axis. Regression tables show the trajectory MSE instead."""
    df = results[results["status"] == "ok"].copy()
    if df.empty:
        return None
    y, ylabel = score(df)
    df["train"] = _train_label(df)
    order = _train_order(df)
    panels = []
    for solver, part in df.groupby("test_solver", sort=False):
        if part["test_steps"].notna().any():
            panels.append((solver, "test_steps", part[part["test_steps"].notna()]))
        if part["test_tol"].notna().any():
            panels.append((solver, "test_tol", part[part["test_tol"].notna()]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), sharey=True,
                             squeeze=False)
    palette = dict(zip(order, sns.color_palette("viridis", len(order))))
    for ax, (solver, x, part) in zip(axes[0], panels):
        sns.lineplot(data=part.astype({x: float}), x=x, y=y, hue="train",
                     hue_order=[o for o in order if o in set(part["train"])], palette=palette,
                     marker="o", errorbar=("ci", 95), ax=ax, legend=ax is axes[0][-1])
        ax.set_xscale("log", base=2 if x == "test_steps" else 10)
        if y == "mse":
            ax.set_yscale("log")
        if x == "test_tol":
            ax.invert_xaxis()  # more accurate to the right, as on the step panels
        ax.set_title(f"test solver: {solver}")
        ax.set_xlabel("test steps" if x == "test_steps" else "test tolerance")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    legend = axes[0][-1].get_legend()
    if legend is not None:
        legend.set_title("trained with")
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


# Axes a suite can list several entries of: named in the labels only when they vary.
_VARIANTS = ("dataset", "model", "training")


def _train_label(df: pd.DataFrame) -> list[str]:
    labels = [f"{s} {int(n)}" if pd.notna(n) else f"{s} tol {t:g}"
              for s, n, t in zip(df.train_solver, df.train_steps, df.train_tol)]
    varying = [c for c in _VARIANTS if c in df.columns and df[c].nunique() > 1]
    if varying:
        prefix = df[varying].astype(str).agg("/".join, axis=1)
        labels = [f"{p}: {label}" for p, label in zip(prefix, labels)]
    return labels


def _train_order(df: pd.DataFrame) -> list[str]:
    """Train configurations in numeric order (2 before 128), not string order."""
    keys = df.assign(train=_train_label(df)).drop_duplicates("train")
    by = [c for c in _VARIANTS if c in df.columns] + ["train_solver", "train_steps", "train_tol"]
    return keys.sort_values(by)["train"].tolist()


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def transfer_heatmap(results: pd.DataFrame, path: Path) -> Path | None:
    """Train steps (rows) x test steps (columns), one panel per fixed-step test solver; colour is
    the test accuracy, averaged over seeds. Only fixed-step train and test rows take part."""
    df = results[(results["status"] == "ok") & results["train_steps"].notna()
                 & results["test_steps"].notna()].copy()
    if df.empty:
        return None
    value, label = score(df)
    # accuracy on its fixed [0, 1] scale; trajectory errors on a log scale spanning every panel
    # (one colour bar serves them all)
    scale = (dict(vmin=0.0, vmax=1.0, fmt=".2f") if value == "accuracy"
             else dict(norm=LogNorm(df[value].min(), df[value].max()), fmt=".1e",
                       cbar_kws={"label": label}))
    df["train"] = _train_label(df)
    solvers = list(dict.fromkeys(df["test_solver"]))
    fig, axes = plt.subplots(1, len(solvers), figsize=(1.2 + 3.6 * len(solvers), 0.6 + 0.45 *
                                                        df["train"].nunique() + 1.5), squeeze=False)
    order = _train_order(df)
    for ax, solver in zip(axes[0], solvers):
        grid = (df[df["test_solver"] == solver].astype({"test_steps": int})
                .pivot_table(index="train", columns="test_steps", values=value, aggfunc="mean")
                .reindex([o for o in order if o in set(df.loc[df.test_solver == solver, "train"])]))
        sns.heatmap(grid, cmap="viridis", annot=grid.shape[1] <= 12, annot_kws={"size": 7},
                    cbar=ax is axes[0][-1], ax=ax, **scale)
        ax.set_title(f"test solver: {solver}")
        ax.set_xlabel("test steps")
        ax.set_ylabel("trained with" if ax is axes[0][0] else "")
    return _save(fig, path)


def work_precision(results: pd.DataFrame, path: Path) -> Path | None:
    """Test error against NFE per batch solve, one curve per test solver, one panel per train
    configuration (seeds averaged): what a learned model costs at each accuracy."""
    df = results[(results["status"] == "ok") & results["nfe"].notna()].copy()
    if df.empty:
        return None
    df["train"] = _train_label(df)
    regression = score(df)[0] == "mse"
    df["error"] = df["mse"] if regression else 1.0 - df["accuracy"]
    trains = pd.Series(_train_order(df))
    n = len(trains)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False,
                             sharey=True)
    solvers = list(dict.fromkeys(df["test_solver"]))
    palette = dict(zip(solvers, sns.color_palette("tab10", len(solvers))))
    for ax, train in zip(axes.flat, trains):
        part = (df[df["train"] == train].groupby(["test_solver", "nfe"], as_index=False)["error"]
                .mean().sort_values("nfe"))
        sns.lineplot(data=part, x="nfe", y="error", hue="test_solver", hue_order=solvers,
                     palette=palette, marker="o", ax=ax, legend=ax is axes.flat[0])
        ax.set_xscale("log")
        if regression:
            ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"trained with {train}")
        ax.set_xlabel("NFE per solve")
        ax.set_ylabel("test trajectory MSE" if regression else "test error")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return _save(fig, path)


def training_curves(training: pd.DataFrame, path: Path) -> Path | None:
    """Loss, accuracy, NFE and (where a column ``step_count`` or ``steps`` exists) the step count
    against iteration, one line per train configuration (the seeds' range as a band)."""
    if training.empty or "iteration" not in training.columns:
        return None
    df = training.copy()
    regression = "mse" in df.columns and df["mse"].notna().any()
    df["train"] = _train_label(df)
    order = _train_order(df)
    metrics = [c for c in ("loss", "accuracy", "nfe", "steps") if c in df.columns
               and df[c].notna().any()]
    # Long runs are averaged into at most ~200 bins per model: readable, and fast to draw.
    width = max(1, int(df["iteration"].max()) // 200 + 1)
    df["iteration"] = df["iteration"] // width * width
    by = [c for c in ("cell", "train", "seed") if c in df.columns]
    df = df.groupby(by + ["iteration"], as_index=False, dropna=False)[metrics].mean()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.8 * len(metrics), 3.2), squeeze=False)
    for ax, col in zip(axes[0], metrics):
        # The band spans the seeds (min to max): bootstrapped CIs at every bin take minutes.
        sns.lineplot(data=df.astype({col: float}), x="iteration", y=col, hue="train",
                     hue_order=order, ax=ax, errorbar=("pi", 100), legend=ax is axes[0][-1])
        if col in ("nfe", "steps") or (col == "loss" and regression):
            ax.set_yscale("log")  # a trajectory error falls by decades
        ax.set_title(col)
        ax.grid(alpha=0.3)
    legend = axes[0][-1].get_legend()
    if legend is not None:
        legend.set_title("trained with")
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1))
    return _save(fig, path)
