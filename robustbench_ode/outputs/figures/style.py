"""What every figure shares: the non-interactive backend, how a train configuration is labelled
and ordered, which score a table's figures show, and how a figure is saved."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ...core.files import write_atomic  # noqa: E402
from ..tables import is_regression  # noqa: E402


def score(results: pd.DataFrame) -> tuple[str, str]:
    """The column a figure shows and its label: test accuracy, or for a time-series regression
    table the mean squared trajectory error (drawn on a log scale: it spans decades)."""
    if is_regression(results):
        return "mse", "test trajectory MSE"
    return "accuracy", "test accuracy"


# Axes a suite can list several entries of: named in the labels only when they vary.
_VARIANTS = ("dataset", "model", "training")


def train_label(df: pd.DataFrame) -> list[str]:
    """Each row's train configuration as a label ("euler 8", "dopri5 tol 0.001", prefixed by the
    dataset / model / training where the table has several). Formatted once per configuration:
    a training log has a million rows and a handful of configurations."""
    varying = [c for c in _VARIANTS if c in df.columns and df[c].nunique() > 1]
    cols = [*varying, "train_solver", "train_steps", "train_tol"]
    group = df.groupby(cols, dropna=False, sort=False).ngroup().to_numpy()
    firsts = df[cols][~pd.Series(group).duplicated().to_numpy()]  # group i's first row, in order
    labels = [f"{s} {int(n)}" if pd.notna(n) else f"{s} tol {t:g}"
              for s, n, t in zip(firsts.train_solver, firsts.train_steps, firsts.train_tol)]
    if varying:
        prefix = firsts[varying].astype(str).agg("/".join, axis=1)
        labels = [f"{p}: {label}" for p, label in zip(prefix, labels)]
    return [labels[g] for g in group]


def train_order(df: pd.DataFrame) -> list[str]:
    """Train configurations in numeric order (2 before 128), not string order."""
    keys = df.assign(train=train_label(df)).drop_duplicates("train")
    by = [c for c in _VARIANTS if c in df.columns] + ["train_solver", "train_steps", "train_tol"]
    return keys.sort_values(by)["train"].tolist()


def save(fig, path: Path, dpi: int = 110, tight: bool = True) -> Path:
    """A figure as PNG, written then renamed (core/files.py: a full disk leaves no half image and
    no temporary file); the figure is closed either way."""
    fig.tight_layout()
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi,
                                                   bbox_inches="tight" if tight else None))
    finally:
        plt.close(fig)
    return Path(path)


def mean_and_range(ax, data: pd.DataFrame, x: str, y: str, *, color, label: str, **line) -> None:
    """One line of ``y`` against ``x``: the mean over the rows at each ``x`` (a configuration's
    seeds), in a band from their minimum to their maximum. With two to five seeds the range says
    what was seen; a bootstrapped interval of the mean is neither reliable nor reproducible (it
    resamples at random on every draw). One pandas aggregation: seaborn's lineplot aggregates each
    ``x`` in its own Python call (more than a minute for a paper-scale run's tables)."""
    stats = data.groupby(x, sort=True)[y].agg(["mean", "min", "max"]).dropna(subset=["mean"])
    if stats.empty:
        return
    ax.plot(stats.index, stats["mean"], color=color, label=label, **line)
    if (stats["max"] > stats["min"]).any():
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.2, lw=0,
                        zorder=line.get("zorder"))


# Accuracy axes are fixed to [0, 1] (a little padding so points at 0 or 1 are not cut), in every
# figure that shows an accuracy or an error rate: noise between 0.41 and 0.48 must not look like an
# effect.
ACCURACY_RANGE = (-0.03, 1.03)
CHANCE_STYLE = dict(color="0.35", ls=(0, (4, 3)), lw=1.1, zorder=0.5)

# Lines that coincide (models stuck at chance, seeds with equal curves) stay visible: each line
# gets its own marker shape and line style, and the earlier lines larger markers and wider lines
# drawn below the later ones, so a line on top of another leaves a rim of the one below.
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*"]
_DASHES = ["-", "--", "-.", ":"]


def distinct(order: list[str]) -> dict[str, dict]:
    """For each label, in order: the matplotlib style keywords of its line."""
    n = max(len(order), 1)
    out = {}
    for i, label in enumerate(order):
        shrink = i / max(n - 1, 1)  # 0 for the first line, 1 for the last
        out[label] = dict(marker=_MARKERS[i % len(_MARKERS)], markersize=9.0 - 4.5 * shrink,
                          lw=2.6 - 1.4 * shrink, ls=_DASHES[i % len(_DASHES)], alpha=0.85,
                          zorder=2 + i)
    return out


def chance_levels(results: pd.DataFrame) -> dict[str, float]:
    """Per dataset, the accuracy of always predicting the test set's most frequent class (the
    largest over the table's rows: test sets can differ by seed). Empty for tables written before
    the ``chance`` column existed, and for regression tables."""
    if "chance" not in results.columns or is_regression(results):
        return {}
    levels = results.groupby("dataset")["chance"].max().dropna()
    return {str(k): float(v) for k, v in levels.items()}


def draw_chance(ax, levels: dict[str, float], *, error: bool = False) -> None:
    """The chance level as a dashed grey line (one per dataset; named by dataset when several).
    ``error``: the axis shows 1 - accuracy, so the line is at 1 - chance."""
    for dataset, level in levels.items():
        name = "chance" if len(levels) == 1 else f"chance ({dataset})"
        ax.axhline(1.0 - level if error else level, label=name, **CHANCE_STYLE)


def accuracy_axis(ax) -> None:
    ax.set_ylim(*ACCURACY_RANGE)
    ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def legend_outside(fig, axes, order: list[str], title: str) -> None:
    """One legend for a row of panels, right of the last one: every labelled line of any panel
    (in ``order``, then the chance lines), each label once."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = [o for o in order if o in handles] + [k for k in handles if k not in order]
    if labels:
        # As many columns as keep the legend within the figure's height (an entry at fontsize 8
        # takes about 0.2 in): a taller legend stretches the saved image, squashing the panels.
        rows = max(4, int((fig.get_figheight() - 0.4) / 0.2))
        axes[-1].legend([handles[k] for k in labels], labels, title=title, loc="upper left",
                        bbox_to_anchor=(1.02, 1), fontsize=8, title_fontsize=9,
                        ncol=math.ceil(len(labels) / rows))


def plain_log_ticks(axis) -> None:
    """Tick labels of a log axis as plain numbers (20, 50, 100), not 2 x 10^1: the minor ticks
    labelled at 2 and 5 times a power of ten only."""
    def minor(v: float, _pos) -> str:
        if v <= 0:
            return ""
        mantissa = v / 10 ** math.floor(math.log10(v) + 1e-9)
        return f"{v:g}" if round(mantissa) in (2, 5) and abs(mantissa - round(mantissa)) < 1e-6 else ""

    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))


def panel_grid(n: int, width: float, height: float, **kw):
    """A figure of ``n`` panels, at most four a row; the unused ones of the last row hidden.
    Returns the figure and the ``n`` axes in order."""
    cols = max(1, min(n, 4))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kw)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]
