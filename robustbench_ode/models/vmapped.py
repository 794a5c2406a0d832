"""S copies of any model architecture trained as one: ``torch.func.stack_module_state`` stacks
their parameters and buffers along a leading seed dimension and ``torch.vmap`` of
``torch.func.functional_call`` runs one model's own forward over that dimension, so every
operation runs once for all seeds. The general path of seed stacking, for families whose field
has no hand-written stacked form (:class:`~robustbench_ode.models.stacked.StackedClassifier`,
faster where it exists, stays theirs).

A family whose forward cannot run under ``vmap`` (data-dependent control flow per seed, such as
an adaptive solver's step count, or in-place buffer updates) declares ``stackable=False`` in its
registry entry (models/catalog.py); tests/test_stack_vmap.py checks each declaration.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from ..solvers import SolveStats
from .spec import SolveSpec


class VmappedModel(nn.Module):
    """``stacked[j][i]`` is seed i's parameter ``names[j]`` (``models[0].named_parameters()``
    order, as :class:`StackedClassifier` keeps it, so optimizer states slice alike)."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        params, buffers = stack_module_state(models)
        self.names = list(params)
        self.stacked = nn.ParameterList(nn.Parameter(params[n].detach().clone()) for n in self.names)
        self.buffer_names = list(buffers)
        for j, n in enumerate(self.buffer_names):
            self.register_buffer(f"stacked_buffer_{j}", buffers[n].clone())
        # the template whose forward is called: its own tensors are never read (functional_call
        # substitutes every parameter and buffer); kept out of this module's parameters
        self._template = [copy.deepcopy(models[0])]

    def _apply(self, fn, recurse=True):  # .to(device) also moves the template's plain tensors
        self._template[0]._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        buffers = {n: getattr(self, f"stacked_buffer_{j}") for j, n in enumerate(self.buffer_names)}
        return dict(zip(self.names, self.stacked)), buffers

    def forward(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats, torch.Tensor]:
        """Outputs (S, B, ...) from inputs (S, B, ...), the first seed's solve stats (a fixed-step
        solve counts the same for every seed) and which seeds' outputs are finite (S,)."""
        template = self._template[0]
        template.train(self.training)
        seen: list[SolveStats] = []

        def one(params, buffers, xi):
            out, stats = functional_call(template, (params, buffers), (xi, spec))
            seen.append(stats)  # vmap traces the forward once: one stats for the stack
            return out

        params, buffers = self._state()
        out = torch.vmap(one, randomness="different")(params, buffers, x)
        return out, seen[0], torch.isfinite(out.detach()).flatten(1).all(1)

    def seed_state(self, i: int) -> dict[str, torch.Tensor]:
        """Seed i's parameters and persistent buffers, as its own model's state dict (its keys)."""
        params, buffers = self._state()
        tensors = {**params, **buffers}
        return {n: tensors[n][i].detach().clone() for n in self._template[0].state_dict()}

    def load_seed(self, i: int, state: dict[str, torch.Tensor]) -> None:
        params, buffers = self._state()
        with torch.no_grad():
            for n, t in {**params, **buffers}.items():
                if n in state:  # a non-persistent buffer is not in a state dict
                    t[i].copy_(state[n])
