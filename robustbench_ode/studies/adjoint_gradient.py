"""Why adjoint training fails at coarse steps: the adjoint's gradient against autograd's, on the
models a run trained.

torchdiffeq's adjoint recovers z(t) by solving the ODE backwards from z(1) with the solver and
grid of the forward solve, and integrates the adjoint along that recovered path. With Euler at a
few steps the backward solve does not return to z(0), so the gradient belongs to another
trajectory. For each fixed-step model of one seed in a run folder this study prints:

- the cosine between the adjoint's parameter gradient and autograd's (the exact gradient of the
  discrete map the model computes) of the cross-entropy on training points, and both norms;
- the median relative error of z(0) recovered by the backward solve at the train solver and
  steps, and (control) with rk4 at 512 steps both ways, in float64::

    python -m robustbench_ode.studies.adjoint_gradient results/sphere2 --seed 0

Printed as a Markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import load_suite
from ..core.console import configure
from ..core.status import Status
from ..harness.build import build_model, load_data
from ..harness.cell import CellConfig, cells
from ..models.fields import prepared
from ..run.store import CellStore
from ..solvers import SOLVERS, Kind, solve

log = logging.getLogger(__name__)  # shown by main's configure() (core/console.py)


def _gradient(model, x: torch.Tensor, y: torch.Tensor, spec) -> torch.Tensor:
    model.zero_grad()
    logits, _ = model(x, spec)
    F.cross_entropy(logits, y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _recovered(model, x: torch.Tensor, solver: str, steps: int) -> float:
    """Median relative error of z(0) after solving forwards and then backwards (float64)."""
    model = model.double()
    with torch.no_grad():
        z0 = model.input_map(x.double())
        field = model.block.field
        with prepared(field, z0):
            z1 = solve(field, z0, solver, steps=steps).z
            back = solve(field, z1, solver, steps=steps, t_span=(1.0, 0.0)).z
    error = (back - z0).flatten(1).norm(dim=1) / z0.flatten(1).norm(dim=1)
    return error.median().item()


def measure(cell: CellConfig, state: dict, samples: int) -> dict:
    data = load_data(cell)
    model = build_model(cell, data)
    model.load_state_dict(state)
    x, y = data.x_train[:samples], data.y_train[:samples]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchdiffeq's notes on options; not this study's matter
        auto = _gradient(model, x, y, dataclasses.replace(cell.train_spec, adjoint=False))
        adjoint = _gradient(model, x, y, dataclasses.replace(cell.train_spec, adjoint=True))
    return {"steps": cell.steps, "cos": F.cosine_similarity(auto, adjoint, dim=0).item(),
            "norm_autograd": auto.norm().item(), "norm_adjoint": adjoint.norm().item(),
            "recovered_train": _recovered(model, x, cell.solver, cell.steps),
            "recovered_rk4_512": _recovered(model, x, "rk4", 512)}


def study(run: Path, seed: int = 0, samples: int = 512) -> list[dict]:
    """One row per stored, trained fixed-step cell of ``seed`` whose solver has an adjoint."""
    suite = load_suite(run / "suite.yaml")
    store = CellStore(run)
    rows = []
    for cell in cells(suite):
        solver = SOLVERS.get(cell.solver)
        wanted = cell.seed == seed and solver.kind is Kind.FIXED and solver.adjoint
        if not wanted or not store.has(cell.key):
            continue
        stored = store.load(cell.key)
        if stored.status is Status.OK:
            rows.append({"label": cell.label(), **measure(cell, stored.record.weights.load(), samples)})
    return sorted(rows, key=lambda r: r["steps"])


def main(argv: list[str] | None = None) -> None:
    configure()  # the study's table on stdout through the package log
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a run folder with its cell store (e.g. results/sphere2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=512, help="training points for the gradient")
    args = p.parse_args(argv)
    if not (args.run / "suite.yaml").is_file() or not (args.run / "cells").is_dir():
        p.error(f"run {args.run}: no suite.yaml and cells/ there (give a run folder with its cell store)")
    torch.set_num_threads(1)
    rows = study(args.run, args.seed, args.samples)
    if not rows:
        p.error(f"run {args.run}: no trained fixed-step cell of seed {args.seed} with an adjoint")
    log.info("| model | cos(adjoint, autograd) | norm autograd | norm adjoint | z(0) recovered: train solver "
             "| rk4 512 |\n|---|---|---|---|---|---|")
    for r in rows:
        log.info(f"| {r['label']} | {r['cos']:.3f} | {r['norm_autograd']:.3g} | {r['norm_adjoint']:.3g} | "
                 f"{r['recovered_train']:.3g} | {r['recovered_rk4_512']:.2g} |")


if __name__ == "__main__":
    main()
