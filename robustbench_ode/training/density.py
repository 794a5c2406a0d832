"""The density task's training forward and loss: a CNF (models/cnf.py) trained by maximum
likelihood, optionally with RNODE's penalties (Finlay et al. 2020).

The loss is the batch's mean negative log-likelihood in nats per dimension (the number the test
rows report). ``training.regularization`` adds ``kinetic x int ||f||^2 dt + jacobian x int
||df/dz||_F^2 dt`` (batch means, summed over dimensions), both integrated by the train solve
itself as two more components of the CNF's augmented state; the Jacobian integrand reuses the
trace's vector-Jacobian products (exact with the exact trace, Hutchinson's estimate with its
probes otherwise), so the penalties cost no extra field evaluation, as in RNODE.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import RegularizationConfig
from ..models.cnf import CNF
from ..models.spec import SolveSpec
from ..solvers import SolveStats


def density_forward(model: CNF, x: torch.Tensor, spec: SolveSpec, reg: RegularizationConfig | None,
                    seed: int, iteration: int
                    ) -> tuple[torch.Tensor, SolveStats, dict[str, Any], torch.Tensor | None]:
    """One training solve: each sample's NLL per dimension (B,), the stats, the log's penalty
    columns and the weighted penalty (None without regularisation). Hutchinson probes come from
    a generator seeded by (seed, iteration), so a resumed run draws the probes an uninterrupted
    one does."""
    model.probe_seed = seed * 1_000_003 + iteration
    if reg is None:
        nll, stats = model(x, spec)
        return nll, stats, {}, None
    nll, stats, kinetic, jacobian = model.penalised(x, spec)
    penalty = reg.kinetic * kinetic + reg.jacobian * jacobian
    logged = {"kinetic": float(kinetic.detach()), "jacobian": float(jacobian.detach())}
    return nll, stats, logged, penalty.reshape(1)


def density_losses(outputs: torch.Tensor) -> torch.Tensor:
    """Each member's loss (S,): the mean over its batch of the per-sample NLL per dimension (S, B)."""
    return outputs.float().reshape(outputs.shape[0], -1).mean(1)
