"""Is a coarse-trained CNF still a density? Its discrete map, measured on a run's stored cells.

For every fixed-step cell of a CNF run folder (``model.pt`` in its cell store), on the cell's
test set:

- ``nll_train``: the NLL (nats per dimension) its own train solver reports (the trace integral);
- ``nll_map``: the NLL the train solver's N-step *discrete map* really assigns, log N(Psi(x)) +
  log |det dPsi(x)| (:func:`~robustbench_ode.diagnostics.discrete_map.discrete_log_likelihood`),
  over the samples where the map does not fold;
- ``nll_ref``: the NLL under the reference solve (dopri5, rtol = atol = 1e-7);
- ``folded``: the fraction of test samples at which some step's Jacobian determinant is <= 0.

Usage (the table of docs/cnf.md)::

    python -m robustbench_ode.studies.cnf_map results/cnf_toy [--samples 500]

Printed as a Markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from ..core.console import configure
from ..core.files import MAX_BLOB_BYTES, open_regular, read_text
from ..datasets import DATASETS
from ..diagnostics.discrete_map import discrete_log_likelihood
from ..models import MODELS
from ..models.spec import SolveSpec

log = logging.getLogger(__name__)  # shown by main's configure() (core/console.py)

REFERENCE = SolveSpec("dopri5", rtol=1e-7, atol=1e-7)


def load_cell(cell_dir: Path):
    """The cell's config, its trained CNF (float64, eval mode) and its test samples."""
    config = json.loads(read_text(cell_dir / "config.json", 1 << 20, "config.json"))["cell"]
    data_params = dict(config["dataset"])
    name, data_seed = data_params.pop("name"), data_params.pop("data_seed")
    data = DATASETS.get(name)(config["seed"] if data_seed is None else data_seed, **data_params)
    model_params = {k: v for k, v in config["model"].items() if k not in ("name", "checkpoint")}
    model = MODELS.get(config["model"]["name"])(data.in_shape, 0, **model_params)
    with open_regular(cell_dir / "model.pt", MAX_BLOB_BYTES, "model.pt") as f:
        model.load_state_dict(torch.load(f, map_location="cpu", weights_only=True))
    return config, model.double().eval(), data


def measure(cell_dir: Path, samples: int) -> dict | None:
    """One row of the table, or None for an adaptive-trained cell (no fixed discrete map)."""
    config, model, data = load_cell(cell_dir)
    if config["steps"] is None:
        return None
    x = data.prepare(data.x_test[:samples]).double()
    solver, steps = config["solver"], int(config["steps"])
    with torch.no_grad():
        s_train, _ = model.final_state(x, SolveSpec(solver, steps=steps))
        s_ref, _ = model.final_state(x, REFERENCE)
    logp_map, dm = discrete_log_likelihood(model, x, solver, steps)
    logp_map = logp_map.detach()
    keep = ~dm.folded
    per_dim = -1.0 / model.dim
    return {"dataset": config["dataset"]["name"], "seed": config["seed"], "train": f"{solver} {steps}",
            "nll_train": float(model.logits(s_train).mean()),
            "nll_map": float(per_dim * logp_map[keep].mean()) if keep.any() else float("nan"),
            "nll_ref": float(model.logits(s_ref).mean()),
            "folded": float(dm.folded.double().mean())}


def main(argv: list[str] | None = None) -> None:
    configure()  # the study's table on stdout through the package log
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a CNF run folder (its cells/ store)")
    parser.add_argument("--samples", type=int, default=500, help="test samples per cell")
    args = parser.parse_args(argv)
    rows = [r for d in sorted((args.run / "cells").iterdir()) if (d / "model.pt").exists()
            if (r := measure(d, args.samples)) is not None]
    rows.sort(key=lambda r: (r["dataset"], r["seed"], int(r["train"].split()[1])))
    log.info("| dataset | seed | train | NLL own solver | NLL discrete map | NLL reference | gap ref - own "
             "| folded |")
    log.info("|---|---|---|---|---|---|---|---|")
    for r in rows:
        log.info(f"| {r['dataset']} | {r['seed']} | {r['train']} | {r['nll_train']:.3f} | {r['nll_map']:.3f} "
                 f"| {r['nll_ref']:.3f} | {r['nll_ref'] - r['nll_train']:+.3f} | {r['folded']:.1%} |")


if __name__ == "__main__":
    main()
