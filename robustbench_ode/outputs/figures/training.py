"""Figures of the training log: training curves, what a gradient costs against the step count,
the NFE over training (NODE against ANODE), and the step count in force under adaptation."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .style import (
    accuracy_axis,
    distinct,
    draw_chance,
    legend_outside,
    mean_and_range,
    plain_log_ticks,
    save,
    train_label,
    train_order,
)


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


def nfe_over_training(training: pd.DataFrame, path: Path) -> Path | None:
    """The NFE of adaptive train solves against iteration, one panel per dataset, one line per
    model (and training, where the suite lists several): NODE against ANODE. Drawn when the suite
    trained an adaptive solver and lists more than one model or training."""
    need = {"train_tol", "nfe", "iteration", "dataset", "model"}
    if training.empty or not need <= set(training.columns):
        return None
    df = training[training["train_tol"].notna()].copy()
    variants = [c for c in ("model", "training") if c in df.columns and df[c].nunique() > 1]
    if df.empty or not variants:
        return None
    # named by what varies within each dataset's panel (a suite's trainings may be per dataset)
    for _, part in df.groupby("dataset"):
        local = [c for c in variants if part[c].nunique() > 1] or variants[:1]
        df.loc[part.index, "variant"] = part[local].astype(str).agg("/".join, axis=1)
    width = max(1, int(df["iteration"].max()) // 100 + 1)  # at most ~100 bins: readable, fast
    df["iteration"] = df["iteration"] // width * width
    df = df.groupby(["dataset", "variant", "seed", "iteration"], as_index=False)["nfe"].mean()
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.8 * len(datasets), 3.4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        sns.lineplot(data=df[df["dataset"] == dataset], x="iteration", y="nfe", hue="variant",
                     errorbar=("pi", 100), ax=ax)
        ax.set_title(dataset)
        ax.set_ylabel("NFE per forward solve")
        ax.grid(alpha=0.3)
    return save(fig, path)


# Panel titles: the training log's accuracy and loss are those of the training batch.
_TITLES = {"loss": "loss on the training batch", "accuracy": "accuracy on the training batch",
           "nfe": "NFE per forward solve", "steps": "solver steps per forward solve"}


def training_curves(training: pd.DataFrame, path: Path,
                    chance: dict[str, float] | None = None) -> Path | None:
    """Loss and accuracy on the training batch, NFE and (where a column ``steps`` exists) the
    step count against iteration, one line per train configuration (the seeds' range as a band).
    The accuracy is drawn on [0, 1], with ``chance`` (per dataset, from the results table) as a
    dashed line."""
    if training.empty or "iteration" not in training.columns:
        return None
    df = training.copy()
    regression = "mse" in df.columns and df["mse"].notna().any()
    df["train"] = train_label(df)
    order = train_order(df)
    metrics = [c for c in ("loss", "accuracy", "nfe", "steps") if c in df.columns
               and df[c].notna().any()]
    # Long runs are averaged into at most ~200 bins per model: readable, and fast to draw.
    width = max(1, int(df["iteration"].max()) // 200 + 1)
    df["iteration"] = df["iteration"] // width * width
    by = [c for c in ("cell", "train", "seed") if c in df.columns]
    df = df.groupby(by + ["iteration"], as_index=False, dropna=False)[metrics].mean()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.8 * len(metrics), 3.2), squeeze=False)
    palette = dict(zip(order, sns.color_palette("tab10", len(order))))
    styles = distinct(order)
    for ax, col in zip(axes[0], metrics):
        data = df.astype({col: float})
        for train in order:
            st = styles[train]
            mean_and_range(ax, data[data["train"] == train], "iteration", col, color=palette[train],
                           label=train, ls=st["ls"], lw=st["lw"], alpha=st["alpha"], zorder=st["zorder"])
        if col in ("nfe", "steps") or (col == "loss" and regression):
            ax.set_yscale("log")  # a trajectory error falls by decades
        if col in ("nfe", "steps"):
            plain_log_ticks(ax.yaxis)
        if col == "accuracy":
            accuracy_axis(ax)
            draw_chance(ax, chance or {})
        ax.set_title(_TITLES[col])
        ax.set_ylabel(col)
        ax.grid(alpha=0.3)
    legend_outside(fig, axes[0], order, "trained with")
    return save(fig, path)


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
    ax.legend(fontsize=8, loc="best")
    return save(fig, path)
