"""Plots built from the results table alone (seaborn, PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def accuracy_vs_test_steps(results: pd.DataFrame, path: Path) -> Path | None:
    """The protocol's figure: test accuracy against test steps, one line per train configuration,
    one panel per test solver, the seeds as a band (95% CI). Adaptive test solvers get a panel
    with the test tolerance on the x axis."""
    df = results[results["status"] == "ok"].copy()
    if df.empty:
        return None
    df["train"] = [f"{s} {int(n)}" if pd.notna(n) else f"{s} tol {t:g}"
                   for s, n, t in zip(df.train_solver, df.train_steps, df.train_tol)]
    order = (df.drop_duplicates("train").sort_values(["train_solver", "train_steps", "train_tol"])
             ["train"].tolist())
    panels = []
    for solver, part in df.groupby("test_solver", sort=False):
        if part["test_steps"].notna().any():
            panels.append((solver, "test_steps", part[part["test_steps"].notna()]))
        if part["test_tol"].notna().any():
            panels.append((solver, "test_tol", part[part["test_tol"].notna()]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), sharey=True,
                             squeeze=False)
    palette = dict(zip(order, sns.color_palette("viridis", len(order))))
    for ax, (solver, x, part) in zip(axes[0], panels):
        sns.lineplot(data=part.astype({x: float}), x=x, y="accuracy", hue="train",
                     hue_order=[o for o in order if o in set(part["train"])], palette=palette,
                     marker="o", errorbar=("ci", 95), ax=ax, legend=ax is axes[0][-1])
        ax.set_xscale("log", base=2 if x == "test_steps" else 10)
        if x == "test_tol":
            ax.invert_xaxis()  # more accurate to the right, as on the step panels
        ax.set_title(f"test solver: {solver}")
        ax.set_xlabel("test steps" if x == "test_steps" else "test tolerance")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy")
    legend = axes[0][-1].get_legend()
    if legend is not None:
        legend.set_title("trained with")
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
