"""The protocol's ODE classifier: input map -> ODE block -> flatten -> linear classifier."""

from __future__ import annotations

import torch
from torch import nn

from ..solvers import SOLVERS, SolveStats, solve
from ..solvers.dense_backward import hand_solve
from .fields import prepared
from .spec import SolveSpec


class ODEBlock(nn.Module):
    """z(T) = ODESolve(z0, f, [t0, t1]) with whatever :class:`SolveSpec` the caller passes."""

    def __init__(self, field: nn.Module, t_span: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        self.field = field
        self.t_span = (float(t_span[0]), float(t_span[1]))

    def forward(self, z0: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats]:
        with prepared(self.field, z0):
            # training's fixed-step solves of dense ReLU fields: one hand-derived backward
            sol = hand_solve(self.field, z0, SOLVERS.get(spec.solver), spec.steps, spec.adjoint,
                             self.t_span) if spec.solver in SOLVERS else None
            if sol is None:
                sol = solve(self.field, z0, spec.solver, steps=spec.steps, rtol=spec.rtol,
                            atol=spec.atol, t_span=self.t_span, max_steps=spec.max_steps,
                            adjoint=spec.adjoint, control=spec.control)
        return sol.z, sol.stats


class ODEClassifier(nn.Module):
    """``head(flatten(block(input_map(x))))``; ``forward`` returns logits and the solve's stats.

    ``input_map`` lifts the data into the ODE state (a reshape, a strided conv, or zero-padded
    augmented channels); ``head`` is one linear layer, as in the protocol.
    """

    def __init__(self, input_map: nn.Module, field: nn.Module, head: nn.Module,
                 t_span: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        self.input_map = input_map
        self.block = ODEBlock(field, t_span)
        self.head = head

    def forward(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats]:
        z, stats = self.block(self.input_map(x), spec)
        return self.logits(z), stats

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """The classifier applied to final states z(T)."""
        return self.head(z.flatten(1))

    def final_state(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats]:
        return self.block(self.input_map(x), spec)


class Reshape(nn.Module):
    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class AugmentChannels(nn.Module):
    """ANODE-style augmentation (Dupont et al. 2019): append ``extra`` zero channels to dim 1."""

    def __init__(self, extra: int) -> None:
        super().__init__()
        self.extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra == 0:
            return x
        pad = x.new_zeros((x.shape[0], self.extra) + tuple(x.shape[2:]))
        return torch.cat([x, pad], 1)


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal weights and zero biases for every conv and linear layer (the protocol)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
