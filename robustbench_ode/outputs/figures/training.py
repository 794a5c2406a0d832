"""Figures of the training log: training curves, what a gradient costs against the step count,
the NFE over training (NODE against ANODE), and the step count in force under adaptation."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .layout import TrainLayout
from .style import (
    FIGURE_WIDTH,
    accuracy_axis,
    distinct,
    draw_chance,
    legend_outside,
    mean_and_range,
    panel_grid,
    plain_log_ticks,
    save,
    styled,
)

ROW_HEIGHT = 2.5  # inches per row of small multiples
LEGEND_WIDTH = 2.2


@styled
def gradient_cost(training: pd.DataFrame, path: Path) -> Path | None:
    """Per fixed-step training, against its step count: the memory autograd keeps for the backward
    pass (``saved_mb``, mean over iterations and seeds) and the field evaluations per iteration,
    forward and backward. One line per ``training`` entry (autograd against adjoint). Drawn when
    at least two step counts were trained."""
    need = {"saved_mb", "nfe_backward", "train_steps", "training", "nfe"}
    if training.empty or not need <= set(training.columns):
        return None
    df = training[training["train_steps"].notna() & training["saved_mb"].notna()].copy()
    if df["train_steps"].nunique() < 2:
        return None
    df["train_steps"] = df["train_steps"].astype(int)
    df = (df.groupby(["training", "train_steps"], as_index=False)
          [["saved_mb", "nfe", "nfe_backward"]].mean())
    df["nfe_total"] = df["nfe"] + df["nfe_backward"]
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), squeeze=False)
    for ax, (col, title) in zip(axes[0], [("saved_mb", "memory kept for backward (MB)"),
                                           ("nfe_total", "field evaluations per iteration")]):
        sns.lineplot(data=df, x="train_steps", y=col, hue="training", marker="o", ax=ax,
                     legend=ax is axes[0][-1])
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        plain_log_ticks(ax.xaxis)
        plain_log_ticks(ax.yaxis)
        ax.set_xlabel("train steps (Euler)")
        ax.set_ylabel("")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    return save(fig, path)


@styled
def nfe_over_training(training: pd.DataFrame, path: Path, layout: TrainLayout | None = None) -> Path | None:
    """The NFE of adaptive train solves against iteration, one panel per dataset, one line per
    adaptive train configuration in its run-wide colour (the seeds' range as a band): NODE
    against ANODE. Drawn when the suite trained an adaptive solver and lists more than one model
    or training."""
    need = {"train_tol", "nfe", "iteration", "dataset", "model"}
    if training.empty or not need <= set(training.columns):
        return None
    layout = layout or TrainLayout(training)
    df = training[training["train_tol"].notna()].copy()
    variants = [c for c in ("model", "training") if c in df.columns and df[c].nunique() > 1]
    if df.empty or not variants:
        return None
    df["train"] = layout.label(df)
    width = max(1, int(df["iteration"].max()) // 100 + 1)  # at most ~100 bins: readable, fast
    df["iteration"] = df["iteration"] // width * width
    df = df.groupby(["dataset", "train", "seed", "iteration"], as_index=False)["nfe"].mean()
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = panel_grid(len(datasets), (FIGURE_WIDTH - LEGEND_WIDTH) / 3, 2.9)
    for ax, dataset in zip(axes, datasets):
        part = df[df["dataset"] == dataset]
        row = next(r for r in layout.rows_for(part["train"]))
        for train in [t for t in layout.order if t in set(part["train"])]:
            mean_and_range(ax, part[part["train"] == train], "iteration", "nfe", color=layout.colour(train),
                           label=layout.short(train, row) if len(datasets) > 1 else train, lw=1.6)
        ax.set_title(dataset)
        ax.set_ylabel("NFE per forward solve")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    return save(fig, path)


# Panel titles: the training log's accuracy and loss are those of the training batch.
_TITLES = {"loss": "loss on the training batch", "accuracy": "accuracy on the training batch",
           "nfe": "NFE per forward solve", "steps": "solver steps per forward solve"}


@styled
def training_curves(training: pd.DataFrame, path: Path, chance: dict[str, float] | None = None,
                    layout: TrainLayout | None = None) -> Path | None:
    """Loss and accuracy on the training batch, NFE and (where a column ``steps`` exists) the
    step count against iteration, one line per train configuration (the seeds' range as a band),
    one row of panels per group of :class:`~.layout.TrainLayout` when there are many. The
    accuracy is drawn on [0, 1], with ``chance`` (per dataset, from the results table) as a
    dashed line, once per panel."""
    if training.empty or "iteration" not in training.columns:
        return None
    layout = layout or TrainLayout(training)
    df = training.copy()
    regression = "mse" in df.columns and df["mse"].notna().any()
    df["train"] = layout.label(df)
    metrics = [c for c in ("loss", "accuracy", "nfe", "steps") if c in df.columns
               and df[c].notna().any()]
    # Long runs are averaged into at most ~200 bins per model: readable, and fast to draw.
    width = max(1, int(df["iteration"].max()) // 200 + 1)
    df["iteration"] = df["iteration"] // width * width
    by = [c for c in ("cell", "train", "seed") if c in df.columns]
    df = df.groupby(by + ["iteration"], as_index=False, dropna=False)[metrics].mean()
    rows = layout.rows_for(df["train"])
    panel = min(2.6, (FIGURE_WIDTH - LEGEND_WIDTH) / len(metrics))
    fig, axes = plt.subplots(len(rows), len(metrics), figsize=(panel * len(metrics) + LEGEND_WIDTH,
                                                               ROW_HEIGHT * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        styles = distinct(row.labels)
        for ax, col in zip(axes[r], metrics):
            data = df.astype({col: float})
            for train in row.labels:
                st = styles[train]
                mean_and_range(ax, data[data["train"] == train], "iteration", col,
                               color=layout.colour(train), label=train, ls=st["ls"], lw=st["lw"],
                               alpha=st["alpha"], zorder=st["zorder"])
            if col in ("nfe", "steps") or (col == "loss" and regression):
                ax.set_yscale("log")  # a trajectory error falls by decades
            if col in ("nfe", "steps"):
                plain_log_ticks(ax.yaxis)
            if col == "accuracy":
                accuracy_axis(ax)
                draw_chance(ax, chance or {}, dataset=row.dataset)
            ax.set_title(_TITLES[col] if r == 0 else "")
            ax.set_ylabel(f"{row.title}\n{col}" if row.title and ax is axes[r][0] else col)
            ax.set_xlabel("iteration" if r == len(rows) - 1 else "")
            ax.grid(alpha=0.3)
        legend_outside(axes[r], row.labels, "trained with", {t: layout.short(t, row) for t in row.labels},
                       height=ROW_HEIGHT)
    return save(fig, path)


@styled
def steps_over_training(training: pd.DataFrame, path: Path,
                        critical: pd.DataFrame | None = None) -> Path | None:
    """Step count (or tolerance) in force over the iterations, one line per seed; the grid-searched
    critical step count as a band from the per-seed minimum to maximum, its seed-averaged value as
    a dashed line."""
    if training.empty or "steps_in_force" not in training.columns:
        return None
    steps = training["steps_in_force"].notna().any()
    y = "steps_in_force" if steps else "tol_in_force"
    df = training[training[y].notna()]
    if df.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    sns.lineplot(data=df, x="iteration", y=y, hue="seed", palette="tab10", ax=ax, errorbar=None)
    if steps and critical is not None and not critical.empty:
        for _, row in critical.iterrows():
            ax.axhspan(row.critical_steps_min, row.critical_steps_max, color="grey", alpha=0.25,
                       label=f"critical ({row.train_solver}, seed range)")
            ax.axhline(row.critical_steps, color="black", ls="--", lw=1,
                       label=f"critical ({row.train_solver}, seed mean acc.)")
    ax.set_yscale("log", base=2 if steps else 10)
    ax.set_ylabel("train steps in force" if steps else "train tolerance in force")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return save(fig, path)
