"""What every figure shares: the non-interactive backend, the text sizes that keep it legible,
which score a table's figures show, line styles, chance lines, legends, and how a figure is saved.
How train configurations are labelled, ordered and coloured: :mod:`.layout`."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ...core.files import write_atomic  # noqa: E402
from ..tables import is_density, is_regression  # noqa: E402


def score(results: pd.DataFrame) -> tuple[str, str]:
    """The column a figure shows and its label: test accuracy, for a time-series regression
    table the mean squared trajectory error (drawn on a log scale: it spans decades), for a
    density table the test NLL in nats per dimension (drawn on a symmetric log scale: a folded
    coarse flow's NLL can be off by orders of magnitude, and negative)."""
    if is_regression(results):
        return "mse", "test trajectory MSE"
    if is_density(results):
        return "nll", "test NLL (nats/dim)"
    return "accuracy", "test accuracy"


def nll_axis(ax) -> None:
    """A density figure's NLL axis: linear within 1 nat/dim of 0, logarithmic beyond."""
    ax.set_yscale("symlog", linthresh=1.0)


# Legible at 800 px: a figure at most about 11 in wide (FIGURE_WIDTH) with 10 pt text keeps its
# tick labels at 9 px or more when the page shrinks it to 768 px; text size depends on the width
# in inches, not the dpi (tests/test_report.py measures it in headless Chromium). Applied per
# figure (``styled``), never to the caller's matplotlib settings.
FONT_PT = 10
FIGURE_WIDTH = 11.0
RC = {"font.size": FONT_PT, "axes.titlesize": FONT_PT, "axes.labelsize": FONT_PT,
      "xtick.labelsize": FONT_PT, "ytick.labelsize": FONT_PT, "legend.fontsize": FONT_PT - 1,
      "legend.title_fontsize": FONT_PT - 1}


def styled(draw):
    """Draw (and save) a figure under :data:`RC`."""
    @functools.wraps(draw)
    def inner(*args, **kwargs):
        with plt.rc_context(RC):
            return draw(*args, **kwargs)
    return inner


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


def draw_chance(ax, levels: dict[str, float], *, error: bool = False, dataset: str | None = None) -> None:
    """The chance level as a dashed grey line, once per panel: the level of ``dataset`` (a panel
    of one dataset's models), else one line per distinct level (named by its datasets when the
    panel has several levels; datasets with the same chance share one line). ``error``: the
    axis shows 1 - accuracy, so the line is at 1 - chance."""
    if dataset is not None:
        levels = {dataset: levels[dataset]} if dataset in levels else {}
    by_level: dict[float, list[str]] = {}
    for name, level in levels.items():
        by_level.setdefault(round(level, 9), []).append(name)
    for level, names in by_level.items():
        label = "chance" if len(by_level) == 1 else f"chance ({', '.join(names)})"
        ax.axhline(1.0 - level if error else level, label=label, **CHANCE_STYLE)


def accuracy_axis(ax) -> None:
    ax.set_ylim(*ACCURACY_RANGE)
    ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def legend_outside(axes, order: list[str], title: str, texts: dict[str, str] | None = None,
                   height: float | None = None, anchor=None) -> None:
    """One legend for a row of panels, right of the last one: every labelled line of any panel
    (in ``order``, then the chance lines), each label once, shown as ``texts[label]`` where
    given. ``height``: the row's height in inches; as many columns as keep the legend within it
    (an entry takes about 0.22 in): a taller legend stretches the saved image, squashing the
    panels. ``anchor``: the panel it stands right of (default the last of ``axes``)."""
    anchor = anchor if anchor is not None else axes[-1]
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = [o for o in order if o in handles] + [k for k in handles if k not in order]
    if labels:
        height = height if height is not None else anchor.figure.get_figheight()
        rows = max(4, int((height - 0.4) / 0.22))
        shown = [(texts or {}).get(k, k) for k in labels]
        anchor.legend([handles[k] for k in labels], shown, title=title, loc="upper left",
                        bbox_to_anchor=(1.02, 1), ncol=math.ceil(len(labels) / rows))


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


def panel_grid(n: int, width: float, height: float, max_cols: int = 3, **kw):
    """A figure of ``n`` panels, at most ``max_cols`` a row (three keep a figure legible at 800 px);
    the unused ones of the last row hidden. Returns the figure and the ``n`` axes in order."""
    cols = max(1, min(n, max_cols))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, **kw)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]
