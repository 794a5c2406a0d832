"""Regularised dynamics (Finlay et al. 2020, "How to train your neural ODE"): penalties on the
kinetic energy of the flow and on the Frobenius norm of the field's Jacobian, integrated along
the trajectory.

The two integrals ride along with the state, so one solve with the train solver gives the final
state and both penalties, at the solver's own quadrature:

    dz/dt = f(t, z),   dE/dt = ||f(t, z)||^2,   dJ/dt = ||eps^T df/dz (t, z)||^2,

with ``eps ~ N(0, I)`` drawn once per iteration (Hutchinson's estimator: E[||eps^T A||^2] =
||A||_F^2). Both are summed over the state's dimensions and averaged over the batch; the loss
becomes ``task loss + kinetic * E + jacobian * J``. Only training solves carry the integrals;
testing solves the plain field. Written by hand because torchdiffeq has no regulariser; the
augmented-state construction follows the paper.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .models import SolveSpec
from .models.fields import prepared
from .solve import solve
from .solvers import SolveStats

Weight = Annotated[float, Field(ge=0.0, le=1e4)]


class RegularizationConfig(BaseModel):
    """``training.regularization``: the penalties' weights (0 switches one off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kinetic: Weight = 0.0
    jacobian: Weight = 0.0


class _Augmented(nn.Module):
    """The field on the flat state ``[z, E, J]`` (B, D + 2). An ``nn.Module`` so the adjoint finds
    the field's parameters through it."""

    def __init__(self, field: nn.Module, shape: tuple[int, ...], eps: torch.Tensor | None) -> None:
        super().__init__()
        self.field, self.shape, self.eps = field, shape, eps
        self.dim = torch.Size(shape).numel()

    def forward(self, t, s: torch.Tensor) -> torch.Tensor:
        z = s[:, :self.dim].reshape(s.shape[0], *self.shape)
        with torch.enable_grad():
            if self.eps is not None and not z.requires_grad:
                z = z.detach().requires_grad_(True)  # the vjp needs z in the graph
            f = self.field(t, z)
            parts = [f.flatten(1), f.pow(2).flatten(1).sum(1, keepdim=True)]
            if self.eps is not None:
                (vjp,) = torch.autograd.grad(f, z, self.eps, create_graph=True)
                parts.append(vjp.pow(2).flatten(1).sum(1, keepdim=True))
            else:
                parts.append(torch.zeros_like(parts[1]))
        return torch.cat(parts, 1)


def regularized_forward(model: nn.Module, x: torch.Tensor, spec: SolveSpec, cfg: RegularizationConfig,
                        generator: torch.Generator) -> tuple[torch.Tensor, SolveStats, dict[str, float],
                                                             torch.Tensor]:
    """``model``'s logits from one train solve that also integrates the penalties. Returns the
    logits, the solve's stats, the batch means of both integrals (for the log) and the weighted
    penalty to add to the loss."""
    block = model.block
    z0 = model.input_map(x)
    shape = tuple(z0.shape[1:])
    eps = None
    if cfg.jacobian > 0:  # drawn from the iteration's own generator: a resumed run draws the same
        eps = torch.randn(z0.shape, generator=generator, dtype=z0.dtype).to(z0.device)
    s0 = torch.cat([z0.flatten(1), z0.new_zeros(z0.shape[0], 2)], 1)
    with prepared(block.field, z0):
        sol = solve(_Augmented(block.field, shape, eps), s0, spec.solver, steps=spec.steps,
                    rtol=spec.rtol, atol=spec.atol, t_span=block.t_span, max_steps=spec.max_steps,
                    adjoint=spec.adjoint)
    dim = s0.shape[1] - 2
    z = sol.z[:, :dim].reshape(z0.shape)
    kinetic, jacobian = sol.z[:, dim].mean(), sol.z[:, dim + 1].mean()
    penalty = cfg.kinetic * kinetic + cfg.jacobian * jacobian
    logged = {"kinetic": float(kinetic.detach()), "jacobian": float(jacobian.detach()) if eps is not None
              else None}
    return model.logits(z), sol.stats, logged, penalty
