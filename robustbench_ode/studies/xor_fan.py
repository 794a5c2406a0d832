"""Lady Windermere's fan for the XOR case: trajectories and the three pictures of docs/xor_fan.md.

Needs the trained models, so it works from a run's cell store (its weights); the trajectories go
to ``trajectories.csv`` beside ``results.csv``, and
picture (c) is built from ``results.csv`` alone.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ..core.status import Status  # noqa: E402
from ..harness.build import build_model, load_data  # noqa: E402
from ..harness.cell import CellConfig, CellResult  # noqa: E402
from ..outputs.figures.style import save  # noqa: E402
from ..outputs.tables import write_csv  # noqa: E402
from ..run.store import CellStore  # noqa: E402
from ..solvers import SOLVERS  # noqa: E402

FAN_STEPS = (1, 2, 4, 16, 256)  # test step counts drawn in picture (a)
EXACT_SAMPLES = 200  # points along each exact trajectory
CLASS_COLOURS = ("tab:blue", "tab:red")


def _model(res: CellResult):
    data = load_data(res.cell)
    model = build_model(res.cell, data)
    model.load_state_dict(res.record.weights.load())
    # float64: the pictures compare solvers down to small errors, float32 rounding would blur them
    return model.double().eval(), data


def numerical_path(field, z0: torch.Tensor, solver: str, steps: int, t1: float = 1.0) -> np.ndarray:
    """States at the step grid, shape (steps + 1, B, 2); one step at a time (the field is
    autonomous, so this equals one solve of ``steps`` steps). Stops early once non-finite."""
    zs, z, h = [z0], z0, t1 / steps
    for k in range(steps):
        z = SOLVERS.get(solver).solve(field, z, (k * h, (k + 1) * h), steps=1).z
        zs.append(z)
        if not bool(torch.isfinite(z).all()):
            break
    return torch.stack(zs).numpy()


def exact_path(field, z0: torch.Tensor, t0: float = 0.0, t1: float = 1.0,
               n: int = EXACT_SAMPLES) -> np.ndarray:
    return torch.stack([field.exact_flow(z0, t0, t) for t in np.linspace(t0, t1, n)]).numpy()


def trajectories(results: list[CellResult], solvers=("euler", "midpoint", "rk4"),
                 steps=FAN_STEPS) -> pd.DataFrame:
    """Tidy trajectories of the test points for every cell whose field has an exact flow."""
    rows = []
    with torch.no_grad():
        for res in results:
            if res.record.weights is None:
                continue
            model, data = _model(res)
            field = model.block.field
            if not hasattr(field, "exact_flow"):
                continue
            z0 = model.input_map(data.x_test.double())
            paths = [("exact", None, np.linspace(0, 1, EXACT_SAMPLES), exact_path(field, z0))]
            for s in solvers:
                for n in steps:
                    p = numerical_path(field, z0, s, n)
                    paths.append((s, n, np.linspace(0, 1, n + 1)[: len(p)], p))
            for solver, n, ts, p in paths:
                for k, t in enumerate(ts):
                    for i in range(p.shape[1]):
                        rows.append({**res.cell.columns(), "solver": solver, "steps": n, "point": i,
                                     "label": int(data.y_test[i]), "t": float(t),
                                     "x": float(p[k, i, 0]), "y": float(p[k, i, 1])})
    return pd.DataFrame(rows)


def _boundary(ax, model, lim) -> None:
    """The linear head's decision boundary: logit_1 - logit_0 = 0, a line in the final state."""
    w = model.head.weight.detach().numpy()
    b = model.head.bias.detach().numpy()
    dw, db = w[1] - w[0], b[1] - b[0]
    xs = np.linspace(*lim[0], 2)
    if abs(dw[1]) > 1e-12:
        ax.plot(xs, -(db + dw[0] * xs) / dw[1], "k-", lw=1.2, label="decision boundary")
    else:
        ax.axvline(-db / dw[0], color="k", lw=1.2, label="decision boundary")


def _field_background(ax, field, lim) -> None:
    gx, gy = np.meshgrid(np.linspace(*lim[0], 17), np.linspace(*lim[1], 17))
    z = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1))
    with torch.no_grad():
        v = field(0.0, z).numpy()
    norm = np.linalg.norm(v, axis=1, keepdims=True) + 1e-12
    ax.quiver(gx, gy, *(v / norm).T, norm.ravel(), cmap="Greys", alpha=0.35, width=0.003)


def _limits(p: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    flat = p.reshape(-1, 2)
    flat = flat[np.isfinite(flat).all(1)]  # a diverged Euler path must not blow up the axes
    if len(flat) == 0:
        return (-1.0, 2.0), (-1.0, 2.0)
    lo, hi = flat.min(0), flat.max(0)
    pad = 0.15 * (hi - lo).max() + 0.1
    return (lo[0] - pad, hi[0] + pad), (lo[1] - pad, hi[1] + pad)


def plot_fan(res: CellResult, path: Path, solver: str = "euler", steps=FAN_STEPS) -> Path:
    """(a) Numerical trajectories of the test points for several step counts, over the field,
    with the exact trajectories (dashed) and the head's decision boundary."""
    model, data = _model(res)
    field = model.block.field
    with torch.no_grad():
        z0 = model.input_map(data.x_test.double())
        exact = exact_path(field, z0)
        paths = {n: numerical_path(field, z0, solver, n) for n in steps}
        ex_lo, ex_hi = exact.reshape(-1, 2).min(0), exact.reshape(-1, 2).max(0)
        # numerical points within 2 units of the exact paths' box stay in view, runaways do not
        near = [q[(q >= ex_lo - 2).all(1) & (q <= ex_hi + 2).all(1)]
                for p in paths.values() for q in [p.reshape(-1, 2)]]
        lim = _limits(np.concatenate([exact.reshape(-1, 2)] + near))
        fig, axes = plt.subplots(1, len(steps), figsize=(3.6 * len(steps), 3.6), squeeze=False)
        for ax, n in zip(axes[0], steps):
            _field_background(ax, field, lim)
            p = paths[n]
            for i, y in enumerate(data.y_test.tolist()):
                c = CLASS_COLOURS[y]
                ax.plot(exact[:, i, 0], exact[:, i, 1], "--", color=c, lw=0.9, alpha=0.7)
                ax.plot(p[:, i, 0], p[:, i, 1], "-o", color=c, ms=3, lw=1.4)
                ax.plot(*p[-1, i], "s", color=c, ms=7, mec="k")
            _boundary(ax, model, lim)
            ax.set(xlim=lim[0], ylim=lim[1], aspect="equal", title=f"{solver}, {n} step(s)")
        axes[0][0].set_ylabel(f"trained: {res.cell.solver} {res.cell.steps}")
    fig.suptitle("(a) the fan: numerical (solid) vs exact (dashed) trajectories; squares: z(1)")
    save(fig, path, tight=False)
    return path


def plot_windermere(res: CellResult, path: Path, solver: str = "euler", steps: int = 4) -> Path:
    """(b) Lady Windermere's fan: from every numerical node (t_k, z_k) the exact solution to t = 1.
    Its end point moves by the k-th local error carried to t = 1; the moves add to the global error."""
    model, data = _model(res)
    field = model.block.field
    with torch.no_grad():
        z0 = model.input_map(data.x_test.double())
        p = numerical_path(field, z0, solver, steps)
        ts = np.linspace(0, 1, steps + 1)
        n_pts = z0.shape[0]
        fig, axes = plt.subplots(1, n_pts, figsize=(3.6 * n_pts, 3.6), squeeze=False)
        for i, ax in enumerate(axes[0]):
            curves = [exact_path(field, torch.as_tensor(p[k, i:i + 1]), ts[k], 1.0, 100)[:, 0]
                      for k in range(len(p))]
            pts = np.concatenate(curves + [p[:, i]])
            lo, hi = curves[0].min(0), curves[0].max(0)
            # runaway Euler nodes (the quadratic speed makes Euler blow up) would hide the fan
            lim = _limits(pts[(pts >= lo - 2).all(1) & (pts <= hi + 2).all(1)])
            colours = plt.cm.viridis(np.linspace(0, 0.9, len(curves)))
            for k, (curve, c) in enumerate(zip(curves, colours)):
                ax.plot(curve[:, 0], curve[:, 1], color=c, lw=1.2,
                        label="exact from z_0" if k == 0 else None)
                ax.plot(*curve[-1], "o", color=c, ms=5)
            ax.plot(p[:, i, 0], p[:, i, 1], "k-o", ms=3, lw=1, label=f"{solver} nodes")
            err = np.linalg.norm(p[-1, i] - curves[0][-1])
            ax.set(xlim=lim[0], ylim=lim[1], aspect="equal",
                   title=f"x0={tuple(data.x_test[i].tolist())}, |global err|={err:.2g}")
        axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"(b) Lady Windermere's fan: {solver}, {steps} steps; model trained with "
                 f"{res.cell.solver} {res.cell.steps}, seed {res.cell.seed}")
    save(fig, path, tight=False)
    return path


def plot_accuracy(results: pd.DataFrame, path: Path) -> Path | None:
    """(c) Test accuracy against test steps per test solver; the exact flow as a horizontal line."""
    df = results[results["status"] == "ok"]
    trains = sorted(df["train_steps"].dropna().unique())
    if not trains:
        return None
    fig, axes = plt.subplots(1, len(trains), figsize=(4.2 * len(trains), 3.6), sharey=True,
                             squeeze=False)
    for ax, n in zip(axes[0], trains):
        part = df[df["train_steps"] == n]
        for solver, rows in part[part["test_steps"].notna()].groupby("test_solver"):
            acc = rows.groupby("test_steps")["accuracy"].mean()
            ax.plot(acc.index.astype(float), acc.values, "-o", ms=4, label=solver)
        exact = part[part["test_solver"] == "exact"]["accuracy"]
        if len(exact):
            ax.axhline(exact.mean(), color="k", ls="--", label="exact flow")
        ax.axvline(float(n), color="grey", ls=":", lw=1)
        ax.set(xscale="log", title=f"trained: {part['train_solver'].iloc[0]} {int(n)} step(s)",
               xlabel="test steps", ylim=(-0.05, 1.05))
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("(c) accuracy vs test steps (missing points: non-finite solve)")
    save(fig, path, tight=False)
    return path


def stored_results(cells: list[CellConfig], out_dir: Path) -> list[CellResult]:
    """The trained cells of a run with their weights, from its cell store (model.pt)."""
    store = CellStore(out_dir)
    out = []
    for cell in cells:
        if store.has(cell.key):
            stored = store.load(cell.key)
            if stored.status is Status.OK:
                out.append(stored)
    return out


def _readable_steps(res: CellResult, candidates=(8, 16, 32, 64), max_error: float = 1.0) -> int:
    model, data = _model(res)
    field = model.block.field
    with torch.no_grad():
        z0 = model.input_map(data.x_test.double())
        exact = field.exact_flow(z0, 0.0, 1.0).numpy()
        for n in candidates:
            end = numerical_path(field, z0, "euler", n)[-1]
            if end.shape == exact.shape and np.isfinite(end).all() \
                    and np.linalg.norm(end - exact, axis=1).max() <= max_error:
                return n
    return candidates[-1]


def write_fan(cells: list[CellConfig], table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Trajectories and the three pictures for a run's cells; returns the files written."""
    results = stored_results(cells, out_dir)
    usable = [r for r in results if r.record.weights is not None
              and hasattr(_model(r)[0].block.field, "exact_flow")]
    written = []
    if usable:
        write_csv(trajectories(usable), out_dir / "trajectories.csv")
        written.append(out_dir / "trajectories.csv")
        by_steps = sorted(usable, key=lambda r: (r.cell.steps or 0, r.cell.seed))
        first_seed = {}  # one fan picture per train configuration: its lowest seed
        for res in by_steps:
            first_seed.setdefault((res.cell.solver, res.cell.steps, res.cell.tol), res)
        for res in first_seed.values():
            written.append(plot_fan(res, out_dir / f"fan_{res.cell.solver}{res.cell.steps}"
                                               f"_seed{res.cell.seed}.png"))
        # The fan reads best with moderate local errors: a coarse-step model's field is so fast
        # that Euler paths run off to infinity, so draw the finest-trained model at the coarsest
        # Euler step count whose four paths all stay near their exact solutions.
        fine = list(first_seed.values())[-1]
        written.append(plot_windermere(fine, out_dir / "windermere.png",
                                       steps=_readable_steps(fine)))
    acc = plot_accuracy(table, out_dir / "accuracy_exact.png")
    return written + ([acc] if acc else [])
