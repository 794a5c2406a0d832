"""Dupont et al. 2019 ("Augmented Neural ODEs"), two representability cases, read from committed
runs (docs/dupont.md): the 1-D map g(x) = -x (``results/dupont_reflection``) and the concentric
rings (``results/anode``: annuli and Sphere2, trained with dopri5). Nothing is trained here.

The exact argument for the 1-D case: the time-T flow of any 1-D field is increasing (two
trajectories cannot cross), so a NODE's test MSE on -x is at least that of the best increasing
map on the test points, the isotonic regression's (:func:`isotonic_bound`). ANODE's extra
dimension lifts the bound.

``python -m robustbench_ode.studies.dupont OUT.png`` draws the loss-curve figure."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets import DATASETS
from ..outputs.tables import read_training

# the concentric-rings datasets of results/anode, with their NODE / ANODE labels
RINGS = ("annuli", "sphere2")


def isotonic_bound(x: np.ndarray, y: np.ndarray) -> float:
    """The least mean squared error of any increasing map x -> y on these points (pool adjacent
    violators on the points sorted by x)."""
    order = np.argsort(x, kind="stable")
    blocks: list[list[float]] = []  # [sum, count]
    for v in np.asarray(y, dtype=np.float64)[order]:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, n = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += n
    fit = np.concatenate([np.full(int(n), s / n) for s, n in blocks])
    return float(np.mean((fit - np.asarray(y, dtype=np.float64)[order]) ** 2))


def reflection_bound(seed: int, n_test: int) -> float:
    """The isotonic bound of the reflection test set that ``seed`` generates."""
    d = DATASETS.get("reflection")(seed, n_train=1, n_test=n_test)
    return isotonic_bound(d.x_test[:, 0].double().numpy(), d.y_test[:, 0, 0].double().numpy())


def _curves(log: pd.DataFrame, dataset: str, solver: str) -> pd.DataFrame:
    rows = log[(log["dataset"] == dataset) & (log["train_solver"] == solver)]
    return rows[["model", "seed", "iteration", "loss"]]


def draw(reflection: Path, anode: Path, out: Path) -> None:
    """Training loss against iteration, NODE vs ANODE, one panel per dataset, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(read_training(reflection / "training.csv"), "reflection", "rk4", "g(x) = -x (MSE)")]
    rings = read_training(anode / "training.csv")[["dataset", "model", "seed", "train_solver",
                                                   "iteration", "loss"]]
    panels += [(rings, name, "dopri5", f"{name} (cross-entropy)") for name in RINGS]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (log, dataset, solver, title) in zip(axes, panels):
        for (model, seed), g in _curves(log, dataset, solver).groupby(["model", "seed"]):
            ax.plot(g["iteration"], g["loss"], color="C3" if model == "node" else "C0", lw=0.8,
                    alpha=0.8, label=model if seed == 0 else None)
        ax.set_yscale("log")
        ax.set_title(f"{title}, trained with {solver}", fontsize=9)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training loss")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":  # pragma: no cover
    root = Path(__file__).resolve().parents[2] / "results"
    draw(root / "dupont_reflection", root / "anode", Path(sys.argv[1]))
