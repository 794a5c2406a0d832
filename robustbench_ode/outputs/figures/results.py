"""Plots built from the results table alone (seaborn, PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm

from .style import save, score, train_label, train_order


def accuracy_vs_test_steps(results: pd.DataFrame, path: Path) -> Path | None:
    """The protocol's figure: test accuracy against test steps, one line per train configuration,
    one panel per test solver, the seeds as a band (95% CI). Adaptive test solvers get a panel
    with the test tolerance on the x axis. Regression tables show the trajectory MSE instead."""
    df = results[results["status"] == "ok"].copy()
    if df.empty:
        return None
    y, ylabel = score(df)
    df["train"] = train_label(df)
    order = train_order(df)
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
    return save(fig, path, dpi=120)


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
    df["train"] = train_label(df)
    solvers = list(dict.fromkeys(df["test_solver"]))
    fig, axes = plt.subplots(1, len(solvers), figsize=(1.2 + 3.6 * len(solvers), 0.6 + 0.45 *
                                                        df["train"].nunique() + 1.5), squeeze=False)
    order = train_order(df)
    for ax, solver in zip(axes[0], solvers):
        grid = (df[df["test_solver"] == solver].astype({"test_steps": int})
                .pivot_table(index="train", columns="test_steps", values=value, aggfunc="mean")
                .reindex([o for o in order if o in set(df.loc[df.test_solver == solver, "train"])]))
        sns.heatmap(grid, cmap="viridis", annot=grid.shape[1] <= 12, annot_kws={"size": 7},
                    cbar=ax is axes[0][-1], ax=ax, **scale)
        ax.set_title(f"test solver: {solver}")
        ax.set_xlabel("test steps")
        ax.set_ylabel("trained with" if ax is axes[0][0] else "")
    return save(fig, path)


def work_precision(results: pd.DataFrame, path: Path) -> Path | None:
    """Test error against NFE per batch solve, one curve per test solver, one panel per train
    configuration (seeds averaged): what a learned model costs at each accuracy."""
    df = results[(results["status"] == "ok") & results["nfe"].notna()].copy()
    if df.empty:
        return None
    df["train"] = train_label(df)
    regression = score(df)[0] == "mse"
    df["error"] = df["mse"] if regression else 1.0 - df["accuracy"]
    trains = pd.Series(train_order(df))
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
    return save(fig, path)


#END
