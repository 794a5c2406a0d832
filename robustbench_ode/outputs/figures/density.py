"""A 2-D flow run's density figures, from its ``density_grid.csv`` and ``samples.csv``
(written from the stored models by :mod:`robustbench_ode.studies.cnf_figures`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .layout import TrainLayout
from .style import FIGURE_WIDTH, save, styled

# log-density below the row's maximum minus this many nats is drawn as the floor colour: the
# window's empty corners (log p of -30 and less) would otherwise take the whole colour range
DEPTH = 12.0
SAMPLERS = ("data", "train", "reference")


def _configs(table: pd.DataFrame, layout: TrainLayout) -> list[str]:
    present = set(table["train"])
    return [o for o in layout.order if o in present]


def _image(part: pd.DataFrame) -> tuple[np.ndarray, list[float]]:
    """The grid as an image (y rows from the bottom) and its extent."""
    grid = part.pivot_table(index="y", columns="x", values="log_density", aggfunc="first", dropna=False)
    xs, ys = grid.columns.to_numpy(float), grid.index.to_numpy(float)
    half = (xs[1] - xs[0]) / 2 if len(xs) > 1 else 0.5
    return grid.to_numpy(float), [xs[0] - half, xs[-1] + half, ys[0] - half, ys[-1] + half]


@styled
def density_heatmaps(grid: pd.DataFrame | None, path: Path, layout: TrainLayout | None = None
                     ) -> Path | None:
    """Log-density on the window, one row per train configuration (lowest seed), one column per
    test solve (the model's own first, the reference last); one colour scale per row, from the
    row's largest value down :data:`DEPTH` nats."""
    if grid is None or grid.empty:
        return None
    layout = layout or TrainLayout(grid)
    df = grid.assign(train=layout.label(grid))
    configs = _configs(df, layout)
    solves = list(dict.fromkeys(df["test_config"]))
    side = min(2.2, (FIGURE_WIDTH - 1.0) / len(solves))
    fig, axes = plt.subplots(len(configs), len(solves), squeeze=False,
                             figsize=(side * len(solves) + 1.0, side * len(configs)))
    for r, train in enumerate(configs):
        part = df[df["train"] == train]
        top = float(np.nanmax(part["log_density"])) if part["log_density"].notna().any() else 0.0
        for c, solve in enumerate(solves):
            ax = axes[r][c]
            image, extent = _image(part[part["test_config"] == solve])
            shown = ax.imshow(np.clip(image, top - DEPTH, top), origin="lower", extent=extent,
                              vmin=top - DEPTH, vmax=top, cmap="magma", aspect="equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("own solver" if solve == "train" else solve)
            if c == 0:
                ax.set_ylabel(train, fontsize=8)
        fig.colorbar(shown, ax=axes[r][-1], fraction=0.046, pad=0.04, label="log p")
    return save(fig, path)


@styled
def sample_scatter(samples: pd.DataFrame | None, path: Path, layout: TrainLayout | None = None
                   ) -> Path | None:
    """Held-out data and samples solved back from the base under the train solve and the
    reference, side by side, one row per train configuration (lowest seed)."""
    if samples is None or samples.empty:
        return None
    layout = layout or TrainLayout(samples)
    df = samples.assign(train=layout.label(samples))
    configs = _configs(df, layout)
    side = min(2.4, (FIGURE_WIDTH - 1.0) / len(SAMPLERS))
    fig, axes = plt.subplots(len(configs), len(SAMPLERS), squeeze=False, sharex=True, sharey=True,
                             figsize=(side * len(SAMPLERS) + 1.0, side * len(configs)))
    titles = {"data": "held-out data", "train": "samples: own solver", "reference": "samples: reference"}
    for r, train in enumerate(configs):
        part = df[df["train"] == train]
        for c, sampler in enumerate(SAMPLERS):
            ax, pts = axes[r][c], part[part["sampler"] == sampler]
            ax.scatter(pts["x"], pts["y"], s=1.5, alpha=0.5, color="C0" if sampler == "data" else "C3",
                       rasterized=True)
            ax.set_xlim(-4, 4)
            ax.set_ylim(-4, 4)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[sampler])
            if c == 0:
                ax.set_ylabel(train, fontsize=8)
    return save(fig, path)
