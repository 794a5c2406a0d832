"""torchdiffeq's ``adaptive_heun`` is registered as what it computes (issue 27): its solver reuses
the last stage as the next step's first (FSAL) although Heun's last stage is f at the Euler
predictor, so each attempted step costs one new evaluation, and the registry says so (stages 1)."""

from __future__ import annotations

import torch

from robustbench_ode.solvers import SOLVERS, solve


def _decay(t, z):
    return -z


def test_adaptive_heun_costs_one_evaluation_per_attempted_step():
    z0 = torch.ones(3, 1, dtype=torch.float64)
    s = solve(_decay, z0, "adaptive_heun", rtol=1e-6, atol=1e-6, t_span=(0.0, 1.0)).stats
    attempted = s.accepted + s.rejected
    assert attempted > 50
    # a true Heun-Euler pair needs 2 per step; this one needs 1 (plus the initial-step heuristic)
    assert s.nfe <= attempted + 4
    assert SOLVERS.get("adaptive_heun").stages == 1 and SOLVERS.get("heun_torchode").stages == 2
