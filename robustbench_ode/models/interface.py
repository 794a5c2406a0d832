"""The interface a model from outside the package implements to be tested (by
:func:`robustbench_ode.benchmark` or in a suite by import path).

- ``input_map``: a module, ``x -> z0`` (the maps before the ODE block; ``nn.Identity()`` if none);
- ``field``: a module ``f(t, z) -> dz/dt`` (t a float or a 0-dim tensor);
- ``head``: a module, ``z(T) -> logits`` (the maps after the block; it gets z(T) unflattened);
- optionally ``t_span = (t0, t1)``, default ``(0.0, 1.0)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .classifier import ODEBlock, ODEClassifier
from .spec import SolveSpec


class _Pieces(nn.Module):
    """Adapts a model with ``input_map``/``field``/``head`` to what evaluation calls."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        missing = [a for a in ("input_map", "field", "head") if not hasattr(model, a)]
        if missing:
            raise TypeError(f"{type(model).__name__} lacks {', '.join(missing)}: a benchmarked model "
                            "needs input_map, field (f(t, z)) and head (see robustbench_ode.benchmark)")
        self.input_map, self.head = model.input_map, model.head
        self.block = ODEBlock(model.field, tuple(getattr(model, "t_span", (0.0, 1.0))))

    def forward(self, x: torch.Tensor, spec: SolveSpec):
        z, stats = self.block(self.input_map(x), spec)
        return self.logits(z), stats

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)

    def final_state(self, x: torch.Tensor, spec: SolveSpec):
        return self.block(self.input_map(x), spec)


def as_classifier(model: nn.Module) -> nn.Module:
    """The model as evaluation calls it: ``forward(x, spec) -> (logits, stats)``,
    ``final_state(x, spec)`` and ``logits(z)``; a package ODEClassifier is returned as it is."""
    return model if isinstance(model, ODEClassifier) else _Pieces(model)


