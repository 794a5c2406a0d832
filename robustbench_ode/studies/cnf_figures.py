"""The tables behind a 2-D flow run's density figures, computed from its stored cells.

The report draws its figures from tables alone; a flow's density on the window and its samples
need the trained model, so this study evaluates the stored models once and writes two tables
into the run folder, which the report then draws (outputs/figures/density.py):

- ``density_grid.csv`` (:data:`~robustbench_ode.core.schema.DENSITY_GRID`): log p on an n x n grid
  of the window [-4, 4]^2 (:func:`~robustbench_ode.diagnostics.density.log_density_grid`) under the
  model's own train solve (``train``), each solve of :data:`TEST_SOLVES`, and the reference;
- ``samples.csv`` (:data:`~robustbench_ode.core.schema.SAMPLES`): samples solved back from the base
  under the train solve and the reference, and as many held-out test points (``data``).

One model per train configuration (the lowest seed), 2-D cells only; an adaptive-trained cell's
``train`` solve is its own tolerance. Usage::

    python -m robustbench_ode.studies.cnf_figures results/cnf_toy [--grid 48] [--samples 1000]
    python -m robustbench_ode report results/cnf_toy
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import torch

from ..core.console import configure
from ..core.schema import CELL_COLUMNS, DENSITY_GRID, RESULTS, SAMPLES
from ..diagnostics.density import log_density_grid, window_grid
from ..models.spec import SolveSpec
from ..outputs.tables import read_table, write_csv
from .cnf_map import REFERENCE, load_cell

# The test solves of the heat-map grid besides the model's own and the reference: a fine Euler
# solve (the train solver refined) and a fourth-order one.
TEST_SOLVES = {"euler 128": SolveSpec("euler", steps=128), "rk4 32": SolveSpec("rk4", steps=32)}
SAMPLE_SEED = 0
# Significant digits the tables keep of each coordinate and log-density: a figure draws them at a
# few hundred pixels and one colour scale per row, so five digits change no pixel, and the CSV
# (48 x 48 x 4 solves per configuration) is written at well under half the bytes of float64's 17.
DIGITS = 5

log = logging.getLogger(__name__)  # shown by main's configure() (core/console.py)


def _train_spec(config: dict) -> SolveSpec:
    if config["steps"] is not None:
        return SolveSpec(config["solver"], steps=int(config["steps"]))
    return SolveSpec(config["solver"], rtol=float(config["tol"]), atol=float(config["tol"]))


def _ident(cell_dir: Path) -> dict:
    """The cell's identifying columns, as its stored rows (and so results.csv) name it."""
    rows = read_table(cell_dir / "rows.csv", RESULTS, what="cell rows", rows=True)
    return {c.name: rows[c.name].iloc[0] for c in CELL_COLUMNS}


def cell_tables(cell_dir: Path, grid: int, samples: int) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """One cell's density-grid and sample rows; None for a cell whose data is not 2-D."""
    config, model, data = load_cell(cell_dir)
    if model.dim != 2:
        return None
    ident = _ident(cell_dir)
    solves = {"train": _train_spec(config), **TEST_SOLVES, "reference": REFERENCE}
    points, _ = window_grid(grid)
    grids = []
    for name, spec in solves.items():
        logp, _, _ = log_density_grid(model, spec, n=grid)
        grids.append(pd.DataFrame({**ident, "test_config": name, "x": points[:, 0].numpy(),
                                   "y": points[:, 1].numpy(), "log_density": logp.flatten().numpy()}))
    held_out = data.prepare(data.x_test[:samples]).double()
    parts = [pd.DataFrame({**ident, "sampler": "data", "x": held_out[:, 0].numpy(),
                           "y": held_out[:, 1].numpy()})]
    for name in ("train", "reference"):
        x, _ = model.sample(len(held_out), solves[name], torch.Generator().manual_seed(SAMPLE_SEED))
        x = x.detach().numpy()
        parts.append(pd.DataFrame({**ident, "sampler": name, "x": x[:, 0], "y": x[:, 1]}))
    return pd.concat(grids), pd.concat(parts)


def _first_seeds(cells: list[Path]) -> list[Path]:
    """The lowest-seed cell of each train configuration (of each dataset, model and training)."""
    idents = pd.DataFrame([{**_ident(d), "dir": d} for d in cells])
    keys = [c.name for c in CELL_COLUMNS if c.name not in ("cell", "seed")]
    first = idents.sort_values("seed").drop_duplicates(keys).sort_index()
    return list(first["dir"])


def write_tables(run: Path, grid: int = 48, samples: int = 1000) -> list[Path]:
    # the run's own cells: the store may hold others (an earlier, larger version of the suite)
    listed = set(read_table(run / "results.csv", RESULTS, what="results table")["cell"].astype(str))
    cells = sorted(d for d in (run / "cells").iterdir() if d.name in listed and (d / "model.pt").exists())
    found = [t for d in _first_seeds(cells) if (t := cell_tables(d, grid, samples)) is not None]
    if not found:
        return []
    out = []
    for i, (name, schema) in enumerate((("density_grid.csv", DENSITY_GRID), ("samples.csv", SAMPLES))):
        table = pd.concat([t[i] for t in found], ignore_index=True)[[c.name for c in schema]]
        table = rounded(table, [c for c in ("x", "y", "log_density") if c in table])
        write_csv(table, run / name)
        out.append(run / name)
    return out


def rounded(table: pd.DataFrame, columns: list[str], digits: int = DIGITS) -> pd.DataFrame:
    """The columns rounded to ``digits`` significant digits (NaN and inf kept). By hand because
    numpy rounds to decimal places only, and ``to_csv(float_format=...)`` would also rewrite the
    cell columns (train_steps, train_tol) that identify the cell."""
    return table.assign(**{c: table[c].map(lambda v: float(f"{v:.{digits}g}")) for c in columns})


def main(argv: list[str] | None = None) -> None:
    configure()  # what it wrote, through the package log
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a 2-D CNF run folder (its cells/ store)")
    parser.add_argument("--grid", type=int, default=48, help="grid cells per side of the window")
    parser.add_argument("--samples", type=int, default=1000, help="samples per solve")
    args = parser.parse_args(argv)
    for path in write_tables(args.run, args.grid, args.samples):
        log.info("wrote %s", path)


if __name__ == "__main__":
    main()
