"""Plots that compare the entries of a suite's listed axes (models, trainings), from the training
log alone: what a gradient costs against the step count, and the NFE over training."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .plots import _save  # noqa: E402


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
        ax.set_xlabel("train steps (Euler)")
        ax.set_ylabel("")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    return _save(fig, path)


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
    return _save(fig, path)
