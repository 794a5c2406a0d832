"""Plots built from the results table alone (seaborn, PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm

from .layout import TrainLayout
from .style import (
    FIGURE_WIDTH,
    accuracy_axis,
    chance_levels,
    distinct,
    draw_chance,
    legend_outside,
    mean_and_range,
    nll_axis,
    panel_grid,
    save,
    score,
    styled,
)

ROW_HEIGHT = 2.6  # inches per row of small multiples
LEGEND_WIDTH = 2.2  # inches the legend right of a row takes


def _test_panels(df: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(panel name, x column, rows) per test solver: its step counts, and its tolerances (one
    panel per step-size control)."""
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
    return panels


@styled
def accuracy_vs_test_steps(results: pd.DataFrame, path: Path, layout: TrainLayout | None = None
                           ) -> Path | None:
    """The protocol's figure: test accuracy against test steps, one line per train configuration,
    one panel per test solver, the seeds' mean in a band from their lowest to their highest.
    Adaptive test solvers get a panel with the test tolerance on the x axis. Many configurations
    are drawn as small multiples: one row of panels per group of :class:`~.layout.TrainLayout`
    (per dataset, per train solver), each with its own legend and one chance line per panel.
    Accuracy is drawn on [0, 1] with the chance level as a dashed line; regression tables show
    the trajectory MSE (log scale) instead."""
    layout = layout or TrainLayout(results)
    df = results[results["status"] == "ok"].copy()
    if df.empty:
        return None
    y, ylabel = score(df)
    df["train"] = layout.label(df)
    panels = _test_panels(df)
    rows = layout.rows_for(df["train"])
    width = min(2.6, (FIGURE_WIDTH - LEGEND_WIDTH) / len(panels))
    fig, axes = plt.subplots(len(rows), len(panels), figsize=(width * len(panels) + LEGEND_WIDTH,
                                                              ROW_HEIGHT * len(rows)),
                             sharey=True, squeeze=False)
    chance = chance_levels(df)
    for r, row in enumerate(rows):
        styles = distinct(row.labels)
        for ax, (solver, x, part) in zip(axes[r], panels):
            part = part.astype({x: float})
            for train in [t for t in row.labels if t in set(part["train"])]:
                st = styles[train]
                mean_and_range(ax, part[part["train"] == train], x, y, color=layout.colour(train),
                               label=train, marker=st["marker"], markersize=st["markersize"],
                               lw=st["lw"], alpha=st["alpha"], zorder=st["zorder"],
                               markeredgecolor="white", markeredgewidth=0.6)
            ax.set_xscale("log", base=2 if x == "test_steps" else 10)
            if x == "test_steps":  # 1, 2, 4, ... rather than 2^0, 2^1, ...
                ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            if y == "mse":
                ax.set_yscale("log")
            elif y == "nll":
                nll_axis(ax)
            else:
                accuracy_axis(ax)
                draw_chance(ax, chance, dataset=row.dataset)
            if x == "test_tol":
                ax.invert_xaxis()  # more accurate to the right, as on the step panels
            ax.set_title(f"test: {solver}" if r == 0 else "")
            ax.set_xlabel(("test steps" if x == "test_steps" else "test tolerance")
                          if r == len(rows) - 1 else "")
            ax.grid(alpha=0.3)
        axes[r][0].set_ylabel(f"{row.title}\n{ylabel}" if row.title else ylabel)
        legend_outside(axes[r], row.labels, "trained with", {t: layout.short(t, row) for t in row.labels},
                       height=ROW_HEIGHT)
    return save(fig, path)


@styled
def transfer_heatmap(results: pd.DataFrame, path: Path, layout: TrainLayout | None = None) -> Path | None:
    """Train steps (rows) x test steps (columns), one panel per fixed-step test solver (two to a
    row at most, stacked when the labels are long); colour is the test accuracy, averaged over
    seeds. Only fixed-step train and test rows take part."""
    layout = layout or TrainLayout(results)
    df = results[(results["status"] == "ok") & results["train_steps"].notna()
                 & results["test_steps"].notna()].copy()
    if df.empty:
        return None
    value, label = score(df)
    # accuracy on its fixed [0, 1] scale; trajectory errors on a log scale spanning every panel
    # (one colour bar serves them all)
    # a density table's NLL on a linear scale between its 5 % and 95 % quantiles (a folded
    # coarse flow's values would wash out the rest), lower (better) bright
    scale = (dict(vmin=0.0, vmax=1.0, fmt=".2f") if value == "accuracy"
             else dict(vmin=df[value].quantile(0.05), vmax=df[value].quantile(0.95), fmt=".2f",
                       cmap="viridis_r", cbar_kws={"label": label}) if value == "nll"
             else dict(norm=LogNorm(df[value].min(), df[value].max()), fmt=".1e",
                       cbar_kws={"label": label}))
    df["train"] = layout.label(df)
    solvers = list(dict.fromkeys(df["test_solver"]))
    order = [o for o in layout.order if o in set(df["train"])]
    columns = df["test_steps"].nunique()
    per_row = 2 if max(len(o) for o in order) <= 14 and columns <= 8 else 1
    width = min(FIGURE_WIDTH / per_row, 1.6 + 0.55 * columns)
    fig, axes = panel_grid(len(solvers), width, 1.3 + 0.32 * len(order), max_cols=per_row)
    for ax, solver in zip(axes, solvers):
        grid = (df[df["test_solver"] == solver].astype({"test_steps": int})
                .pivot_table(index="train", columns="test_steps", values=value, aggfunc="mean")
                .reindex([o for o in order if o in set(df.loc[df.test_solver == solver, "train"])]))
        sns.heatmap(grid, **{"cmap": "viridis", **scale}, annot=grid.shape[1] <= 12,
                    annot_kws={"size": 8}, cbar=ax is axes[-1], ax=ax)
        ax.set_title(f"test solver: {solver}")
        ax.set_xlabel("test steps")
        ax.set_ylabel("trained with")
    return save(fig, path)


@styled
def work_precision(results: pd.DataFrame, path: Path, layout: TrainLayout | None = None) -> Path | None:
    """Test error against NFE per batch solve, one curve per test solver, one panel per train
    configuration (seeds averaged): what a learned model costs at each accuracy. The error rate
    (1 - accuracy) is drawn on [0, 1] with the chance level's error as a dashed line; regression
    tables show the trajectory MSE (log scale); each panel's chance line is its dataset's."""
    layout = layout or TrainLayout(results)
    df = results[(results["status"] == "ok") & results["nfe"].notna()].copy()
    if df.empty:
        return None
    df["train"] = layout.label(df)
    value, label = score(df)
    regression = value == "mse"
    df["error"] = df[value] if value in ("mse", "nll") else 1.0 - df["accuracy"]
    trains = [t for t in layout.order if t in set(df["train"])]
    fig, axes = panel_grid(len(trains), (FIGURE_WIDTH - 1.6) / 3, 2.9, sharey=True)
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
        elif value == "nll":
            nll_axis(ax)
        else:
            accuracy_axis(ax)
            dataset = df.loc[df["train"] == train, "dataset"].iloc[0] if "dataset" in df.columns else None
            draw_chance(ax, chance, error=True, dataset=None if dataset is None else str(dataset))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"trained with\n{train}" if len(train) > 22 else f"trained with {train}")
        ax.set_xlabel("NFE per solve")
        ax.set_ylabel(label if value in ("mse", "nll") else "test error (1 - accuracy)")
        ax.grid(alpha=0.3)
    legend_outside(axes, solvers, "test solver", height=2.9, anchor=axes[min(len(axes), 3) - 1])
    return save(fig, path)
