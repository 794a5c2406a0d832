"""What every figure shares: the non-interactive backend, how a train configuration is labelled
and ordered, which score a table's figures show, and how a figure is saved."""

from __future__ import annotations

from pathlib import Path

import matplotlib

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
    labels = [f"{s} {int(n)}" if pd.notna(n) else f"{s} tol {t:g}"
              for s, n, t in zip(df.train_solver, df.train_steps, df.train_tol)]
    varying = [c for c in _VARIANTS if c in df.columns and df[c].nunique() > 1]
    if varying:
        prefix = df[varying].astype(str).agg("/".join, axis=1)
        labels = [f"{p}: {label}" for p, label in zip(prefix, labels)]
    return labels


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


