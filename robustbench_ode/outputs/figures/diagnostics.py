"""Figures of the diagnostics tables (docs/diagnostics.md): when along the trajectory the
transported local errors arise, and, for 2-D states, the fan of transported points over the data."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ...diagnostics.verdict import MAJORITY, ROBUST_MAX_FLIP
from .layout import TrainLayout
from .style import FIGURE_WIDTH, panel_grid, save, styled


@styled
def contributions_over_time(contributions: pd.DataFrame, path: Path, layout: TrainLayout | None = None
                            ) -> Path | None:
    """Per train configuration (seeds pooled): the share of each time bin in the sum of the
    transported local errors' norms, median over samples with the 10-90% band; flipped samples'
    median dashed (black). Error that accumulates evenly is a flat line; one step that carries the
    global error (a fold, or a coarse step) is a spike. Each panel in its train configuration's
    run-wide colour."""
    if contributions.empty:
        return None
    layout = layout or TrainLayout(contributions)
    df = contributions.copy()
    df["train"] = layout.label(df)
    order = [t for t in layout.order if t in set(df["train"])]
    fig, axes = panel_grid(len(order), FIGURE_WIDTH / 3, 2.7, sharey=True)
    for ax, train in zip(axes, order):
        part = df[df["train"] == train].groupby("t", as_index=False)[
            ["share_q10", "share_median", "share_q90", "flipped_share_median"]].mean()
        colour = layout.colour(train)
        ax.fill_between(part["t"], part["share_q10"], part["share_q90"], alpha=0.25, color=colour,
                        label="10-90% of samples")
        ax.plot(part["t"], part["share_median"], "-o", ms=3, color=colour, label="median", gid=train)
        if part["flipped_share_median"].notna().any():
            ax.plot(part["t"], part["flipped_share_median"], "--", color="black", label="flipped samples")
        ax.set_title(f"trained with\n{train}" if len(train) > 24 else f"trained with {train}")
        ax.set_xlabel("time of the local error")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of the sum of error norms")
    axes[0].legend(loc="upper left")
    return save(fig, path)


@styled
def fan(fan_points: pd.DataFrame, path: Path, layout: TrainLayout | None = None) -> Path | None:
    """2-D states, one panel per train configuration (its lowest seed): the transported points
    w_k (the reference flow of the train solver's k-th point to the end time) of a few samples,
    from w_0 = z_ref(T) (circle) to w_N = the train configuration's end state (square); flipped
    samples drawn bold. Lady Windermere's fan: the steps from one w to the next are the local
    errors as they arrive at the end time."""
    if fan_points.empty:
        return None
    layout = layout or TrainLayout(fan_points)
    df = fan_points.copy()
    df["train"] = layout.label(df)
    order = [t for t in layout.order if t in set(df["train"])]
    fig, axes = panel_grid(len(order), FIGURE_WIDTH / 3, FIGURE_WIDTH / 3)
    colours = ("tab:blue", "tab:red", "tab:green", "tab:purple")
    for ax, train in zip(axes, order):
        part = df[df["train"] == train]
        part = part[part["seed"] == part["seed"].min()]
        for _, s in part.groupby("sample"):
            s = s.sort_values("block")
            c = colours[int(s["label"].iloc[0]) % len(colours)]
            flipped = bool(s["flipped"].iloc[0])
            ax.plot(s["x"], s["y"], "-", color=c, lw=1.8 if flipped else 0.7, alpha=1.0 if flipped else 0.5)
            ax.plot(s["x"].iloc[0], s["y"].iloc[0], "o", color=c, ms=3)
            ax.plot(s["x"].iloc[-1], s["y"].iloc[-1], "s", color=c, ms=4 if flipped else 2.5,
                    mec="k" if flipped else c)
        n_flip = part.drop_duplicates("sample")["flipped"].sum()
        ax.set_title(f"{train}:\n{int(n_flip)} of {part['sample'].nunique()} flip")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    return save(fig, path)


@styled
def verdicts(diagnostics: pd.DataFrame, path: Path) -> Path | None:
    """The flip fraction of each model against the share of its flips at a fold step, coloured by
    the verdict: the rule's thresholds are the dashed lines."""
    df = diagnostics[diagnostics["diagnostics_status"] == "ok"].copy()
    if df.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    marks = {"robust": "o", "fold": "s", "accumulation": "^", "mixed": "D", "undetermined": "x"}
    for effect, part in df.groupby("effect"):
        ax.scatter(part["flip_fraction"], part["flips_at_fold_share"].fillna(0.0),
                   marker=marks.get(effect, "."), s=36, label=f"{effect} ({len(part)})", alpha=0.8)
    ax.axvline(ROBUST_MAX_FLIP, color="grey", ls="--", lw=1)
    ax.axhline(MAJORITY, color="grey", ls="--", lw=1)
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("flip fraction (class differs from the reference)")
    ax.set_ylabel("share of flips at a fold step")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return save(fig, path)

