"""S copies of one ODE classifier architecture with their parameters stacked along a leading seed
dimension, so that S small matrix products per layer become one batched product (``baddbmm``).

Built from S separately initialised models (each exactly as the single-seed path builds it);
``forward`` takes x of shape (S, B, ...) and returns logits (S, B, K). The field's stacked form
comes from the field itself (:class:`~robustbench_ode.models.fields.StackableField`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..solvers import SolveStats, solve
from .classifier import ODEClassifier
from .fields import StackableField
from .spec import SolveSpec

_FIELD = "block.field."


def can_stack(model: nn.Module) -> bool:
    """A package classifier whose field has a stacked form, a linear head and a parameter-free,
    buffer-free input map (what :class:`StackedClassifier` implements)."""
    # exactly the plain classifier: a ResNet trains through its own discrete loop, a trajectory
    # model through its interval solves
    return (type(model) is ODEClassifier and isinstance(model.block.field, StackableField)
            and model.block.field.can_stack and isinstance(model.head, nn.Linear)
            and not any(True for _ in model.input_map.parameters())
            and not any(True for _ in model.buffers()))


class StackedClassifier(nn.Module):
    """Parameters in ``models[0].named_parameters()`` order, stacked: ``stacked[j][i]`` is seed i's."""

    def __init__(self, models: list[ODEClassifier]) -> None:
        super().__init__()
        if not all(can_stack(m) for m in models):
            raise ValueError("every model of a stacked group needs a stackable field, a linear head "
                             "and a parameter-free input map")
        first = models[0]
        self.names = [name for name, _ in first.named_parameters()]
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.stack([m.get_parameter(n).detach() for m in models]).clone())
            for n in self.names)
        self.input_map, self.field, self.t_span = first.input_map, first.block.field, first.block.t_span

    def params(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.stacked))

    def final_state(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats, torch.Tensor]:
        """Final states (S, B, D) of the seeds' ODE blocks from inputs (S, B, ...), the solve's
        stats and which seeds' final states are finite (S,)."""
        s, b = x.shape[:2]
        z0 = self.input_map(x.flatten(0, 1))
        length = z0.shape[-1]
        z0 = z0.reshape(s, b, -1)  # channel-major, as the single model's z.flatten(1)
        p = self.params()
        f = self.field.stacked({k[len(_FIELD):]: v for k, v in p.items() if k.startswith(_FIELD)}, length)
        sol = solve(f, z0, spec.solver, steps=spec.steps, t_span=self.t_span)
        return sol.z, sol.stats, torch.isfinite(sol.z).flatten(1).all(1)

    def forward(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats, torch.Tensor]:
        """Logits (S, B, K), the solve's stats and which seeds' final states are finite (S,)."""
        z, stats, finite = self.final_state(x, spec)
        p = self.params()
        logits = torch.baddbmm(p["head.bias"].unsqueeze(1), z, p["head.weight"].transpose(1, 2))
        return logits, stats, finite

    def member_logits(self, z: torch.Tensor, i: int) -> torch.Tensor:
        """Seed i's head on its final states z (B, D): logits (B, K), as its own model computes them."""
        p = self.params()
        return torch.addmm(p["head.bias"][i], z, p["head.weight"][i].t())

    def load_seed(self, i: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, p in zip(self.names, self.stacked):
                p[i].copy_(state[name])

    def seed_state(self, i: int) -> dict[str, torch.Tensor]:
        """Seed i's parameters, as its own model's state dict (parameters only: no buffers)."""
        return {n: p[i].detach().clone() for n, p in zip(self.names, self.stacked)}
