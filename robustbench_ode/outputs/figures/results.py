"""Plots built from the results table alone (seaborn, PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm

from .style import (
    accuracy_axis,
    chance_levels,
    distinct,
    draw_chance,
    legend_outside,
    mean_and_range,
    panel_grid,
    save,
    score,
    train_label,
    train_order,
)


def accuracy_vs_test_steps(results: pd.DataFrame, path: Path) -> Path | None:
    """The protocol's figure: test accuracy against test steps, one line per train configuration,
    one panel per test solver, the seeds' mean in a band from their lowest to their highest.
    Adaptive test solvers get a panel with the test tolerance on the x axis. Accuracy is drawn on
    [0, 1] with the chance level as a dashed line; regression tables show the trajectory MSE (log
    scale) instead."""
    df = results[results["status"] == "ok"].copy()
    if df.empty:
        return None
    y, ylabel = score(df)
    df["train"] = train_label(df)
    order = train_order(df)
    panels = []
    control = (df["test_control"].astype("string").fillna("batch") if "test_control" in df.columns
               else pd.Series("batch", index=df.index))
    for solver, part in df.groupby("test_solver", sort=False):
        if part["test_steps"].notna().any():
            panels.append((solver, "test_steps", part[part["test_steps"].notna()]))
        tol = part[part["test_tol"].notna()]
        for c in sorted(set(control[tol.index])):  # per-sample step control: a panel of its own
            name = solver if c == "batch" else f"{solver} ({c})"
            panels.append((name, "test_tol", tol[control[tol.index] == c]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), sharey=True,
                             squeeze=False)
    palette = dict(zip(order, sns.color_palette("viridis", len(order))))
    styles = distinct(order)
    chance = chance_levels(df)
    for ax, (solver, x, part) in zip(axes[0], panels):
        part = part.astype({x: float})
        for train in [o for o in order if o in set(part["train"])]:
            st = styles[train]
            mean_and_range(ax, part[part["train"] == train], x, y, color=palette[train], label=train,
                           marker=st["marker"], markersize=st["markersize"], lw=st["lw"],
                           alpha=st["alpha"], zorder=st["zorder"], markeredgecolor="white",
                           markeredgewidth=0.6)
        ax.set_xscale("log", base=2 if x == "test_steps" else 10)
        if x == "test_steps":  # 1, 2, 4, ... rather than 2^0, 2^1, ...
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        if y == "mse":
            ax.set_yscale("log")
        else:
            accuracy_axis(ax)
            draw_chance(ax, chance)
        if x == "test_tol":
            ax.invert_xaxis()  # more accurate to the right, as on the step panels
        ax.set_title(f"test solver: {solver}")
        ax.set_xlabel("test steps" if x == "test_steps" else "test tolerance")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    legend_outside(fig, axes[0], order, "trained with")
    return save(fig, path)


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
    configuration (seeds averaged): what a learned model costs at each accuracy. The error rate
    (1 - accuracy) is drawn on [0, 1] with the chance level's error as a dashed line; regression
    tables show the trajectory MSE (log scale)."""
    df = results[(results["status"] == "ok") & results["nfe"].notna()].copy()
    if df.empty:
        return None
    df["train"] = train_label(df)
    regression = score(df)[0] == "mse"
    df["error"] = df["mse"] if regression else 1.0 - df["accuracy"]
    trains = pd.Series(train_order(df))
    n = len(trains)
    fig, axes = panel_grid(n, 3.6, 3.2, sharey=True)
    solvers = list(dict.fromkeys(df["test_solver"]))
    palette = dict(zip(solvers, sns.color_palette("tab10", len(solvers))))
    styles = distinct(solvers)
    chance = chance_levels(df)
    for ax, train in zip(axes, trains):
        part = (df[df["train"] == train].groupby(["test_solver", "nfe"], as_index=False)["error"]
                .mean().sort_values("nfe"))
        for solver in [s for s in solvers if s in set(part["test_solver"])]:
            st = styles[solver]
            ax.plot("nfe", "error", data=part[part["test_solver"] == solver], color=palette[solver],
                    marker=st["marker"], markersize=st["markersize"], lw=st["lw"],
                    alpha=st["alpha"], zorder=st["zorder"], markeredgecolor="white",
                    markeredgewidth=0.6, label=solver)
        ax.set_xscale("log")
        if regression:
            ax.set_yscale("log")
        else:
            accuracy_axis(ax)
            draw_chance(ax, chance, error=True)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"trained with {train}")
        ax.set_xlabel("NFE per solve")
        ax.set_ylabel("test trajectory MSE" if regression else "test error (1 - accuracy)")
        ax.grid(alpha=0.3)
    legend_outside(fig, axes, solvers, "test solver")
    return save(fig, path)
