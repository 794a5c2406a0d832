"""Figures of adapted training, built from ``training.csv`` / ``results.csv`` (and ``critical.csv``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


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
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def adapted_vs_fixed(adapted: pd.DataFrame, fixed: pd.DataFrame, path: Path,
                     test_solver: str = "euler") -> Path | None:
    """Test accuracy across absolute test step counts of ``test_solver``: each adapted model (its
    final step count in the label) next to the fixed-step models, seeds averaged for the latter."""
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
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_adaptation_plots(out_dir: Path) -> list[Path]:
    """``adaptation_steps.png`` for a run with adapted cells (with its own ``critical.csv`` as the
    band, when the same run also swept step counts); nothing otherwise."""
    out_dir = Path(out_dir)
    log_path, crit_path = out_dir / "training.csv", out_dir / "critical.csv"
    if not log_path.is_file() or log_path.stat().st_size == 0:
        return []
    try:
        training = pd.read_csv(log_path)
    except pd.errors.EmptyDataError:  # no cell trained (e.g. models tested from a checkpoint)
        return []
    critical = pd.read_csv(crit_path) if crit_path.is_file() else None
    path = steps_over_training(training, out_dir / "adaptation_steps.png", critical)
    return [path] if path else []
