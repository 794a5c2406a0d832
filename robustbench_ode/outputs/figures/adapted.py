"""The adapted models beside the fixed-step sweep (``robustbench-ode critical --adapted``): built
from two runs' ``results.csv``."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .style import accuracy_axis, chance_levels, draw_chance, save, styled


@styled
def adapted_vs_fixed(adapted: pd.DataFrame, fixed: pd.DataFrame, path: Path,
                     test_solver: str = "euler") -> Path | None:
    """Test accuracy across absolute test step counts of ``test_solver``: each adapted model (its
    final step count in the label) next to the fixed-step models, seeds averaged for the latter;
    accuracy on [0, 1], the chance level dashed."""
    def part(df: pd.DataFrame) -> pd.DataFrame:
        ok = df[(df["status"] == "ok") & (df["test_solver"] == test_solver) & df["test_steps"].notna()]
        return ok.astype({"test_steps": float})

    a, f = part(adapted), part(fixed)
    if a.empty and f.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.8, 4.0))
    if not f.empty:
        f = f.assign(train=[f"fixed {int(n)}" for n in f["train_steps"]])
        order = [f"fixed {n}" for n in sorted(f["train_steps"].unique())]
        sns.lineplot(data=f, x="test_steps", y="accuracy", hue="train", hue_order=order,
                     palette="Greys", errorbar=None, ax=ax, lw=1)
    for (seed, n), g in a.groupby(["seed", "train_steps"]):
        g = g.sort_values("test_steps")
        ax.plot(g["test_steps"], g["accuracy"], marker="o", lw=2, label=f"adapted seed {seed} ({n} steps)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"test steps ({test_solver})")
    ax.set_ylabel("test accuracy")
    accuracy_axis(ax)
    draw_chance(ax, chance_levels(pd.concat([adapted, fixed], ignore_index=True)))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    return save(fig, path)
