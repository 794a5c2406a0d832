"""The pluggable forward pass of the training loop: one member (a seed) or a stack of them.

- :class:`PlainForward`: one model's own forward (any package or interface model, any solver,
  adjoint, amp, compile), optionally regularised: the kinetic-energy and Jacobian-Frobenius
  penalties of Finlay et al. 2020 ("How to train your neural ODE") integrated along with the
  state, so one solve with the train solver gives the final state and both penalties at the
  solver's own quadrature:

      dz/dt = f(t, z),   dE/dt = ||f(t, z)||^2,   dJ/dt = ||eps^T df/dz (t, z)||^2,

  with ``eps ~ N(0, I)`` drawn once per iteration (Hutchinson's estimator: E[||eps^T A||^2] =
  ||A||_F^2), both summed over the state's dimensions and averaged over the batch. Written by
  hand because torchdiffeq has no regulariser; the augmented-state construction follows the paper.
- :class:`StackedForward`: S seeds of one configuration as one stacked model:
  :class:`~robustbench_ode.models.stacked.StackedClassifier` where the field has a hand-written
  stacked form (S small matrix products per layer become one batched product; the fastest), any
  other model through ``torch.vmap`` (:class:`~robustbench_ode.models.vmapped.VmappedModel`).
  Each seed keeps its own parameters, data and batches; the loss is
  the sum of the seeds' losses, so each seed's gradient is its own, and Adam is elementwise.

Both return a :class:`Forwarded` with a leading member dimension, so the loop, the loss, the
divergence rule and the log rows are the same code for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import RegularizationConfig, TrainingConfig
from ..core.status import Status
from ..models.cnf import CNF
from ..models.fields import prepared
from ..models.spec import SolveSpec
from ..models.stacked import StackedClassifier, can_stack
from ..models.vmapped import VmappedModel
from ..solvers import SolveStats, solve
from .acceleration import autocast, prepare_model
from .density import density_forward
from .probes import FieldCalls


@dataclass
class Forwarded:
    """One forward pass of every member: outputs (S, B, ...) and per-member statuses."""

    outputs: torch.Tensor  # logits (S, B, K), or predicted trajectories (S, B, K, d)
    stats: SolveStats  # the solve's counters (shared by the members of a stack)
    statuses: list[Status]
    extras: list[dict[str, Any]] = field(default_factory=list)  # per member: extra log columns
    penalty: torch.Tensor | None = None  # (S,): added to each member's loss


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
                        generator: torch.Generator) -> tuple[torch.Tensor, SolveStats, dict[str, Any],
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
    logged = {"kinetic": float(kinetic.detach()),
              "jacobian": float(jacobian.detach()) if eps is not None else None}
    return model.logits(z), sol.stats, logged, penalty


class PlainForward:
    """One model (a member of one): its own forward, regularised when the training says so."""

    def __init__(self, model: nn.Module, cfg: TrainingConfig, device: str, seed: int) -> None:
        self.model, self.cfg, self.device, self.seed = model, cfg, device, seed
        prepare_model(model, cfg)
        # autograd re-evaluates nothing in the backward pass (0 by construction); the adjoint's
        # evaluations are counted by a hook, which costs a little on every field call
        self.calls = FieldCalls(model) if cfg.gradient == "adjoint" else None

    size = 1

    def parameters(self):
        return self.model.parameters()

    def train(self) -> None:
        self.model.train()

    def __call__(self, x: torch.Tensor, spec: SolveSpec, iteration: int) -> Forwarded:
        reg = self.cfg.regularization
        with autocast(self.cfg, self.device):
            if isinstance(self.model, CNF):  # the density task: a likelihood solve (training/density.py)
                out, stats, logged, penalty = density_forward(self.model, x[0], spec, reg, self.seed,
                                                              iteration)
                return Forwarded(out.unsqueeze(0), stats, [stats.status], [logged], penalty)
            if reg is not None:
                generator = torch.Generator().manual_seed(self.seed * 1_000_003 + iteration)
                out, stats, logged, penalty = regularized_forward(self.model, x[0], spec, reg, generator)
                return Forwarded(out.unsqueeze(0), stats, [stats.status], [logged], penalty.reshape(1))
            out, stats = self.model(x[0], spec)
        return Forwarded(out.unsqueeze(0), stats, [stats.status], [{}])

    def member_state(self, i: int) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_member(self, i: int, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def member_optimizer(self, opt: torch.optim.Optimizer, i: int) -> dict:
        return opt.state_dict()

    def stack_optimizer(self, states: list[dict]) -> dict:
        return states[0]

    def close(self) -> None:
        if self.calls is not None:
            self.calls.close()


class StackedForward:
    """S models trained as one stack (fixed-step autograd training of a stackable family)."""

    def __init__(self, models: list[nn.Module], device: str) -> None:
        self.models, self.device = models, device
        # whether seeds stack is planning's (harness/grouping.py); here only which stacked form
        form = StackedClassifier if all(can_stack(m) for m in models) else VmappedModel
        self.stack = form(models).to(device)
        self.size = len(models)
        self.calls = None

    def parameters(self):
        return self.stack.parameters()

    def train(self) -> None:
        self.stack.train()

    def __call__(self, x: torch.Tensor, spec: SolveSpec, iteration: int) -> Forwarded:
        logits, stats, finite = self.stack(x, spec)
        statuses = [Status.OK if ok else Status.NON_FINITE for ok in finite.tolist()]
        return Forwarded(logits, stats, statuses, [{} for _ in statuses])

    def member_state(self, i: int) -> dict[str, torch.Tensor]:
        return self.stack.seed_state(i)

    def load_member(self, i: int, state: dict[str, torch.Tensor]) -> None:
        self.stack.load_seed(i, state)

    def member_optimizer(self, opt: torch.optim.Optimizer, i: int) -> dict:
        """Seed i's slice of the stacked Adam state, as its own model's optimizer state dict (the
        parameters are in the same order), so a checkpoint resumes alone or stacked alike."""
        full = opt.state_dict()
        state = {j: {k: (v[i].clone() if k != "step" and torch.is_tensor(v) and v.dim() > 0 else
                         v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
                 for j, s in full["state"].items()}
        return {"state": state, "param_groups": full["param_groups"]}

    def stack_optimizer(self, states: list[dict]) -> dict:
        first = states[0]
        state = {j: {k: (torch.stack([st["state"][j][k] for st in states])
                         if k != "step" and torch.is_tensor(v) and v.dim() > 0 else v)
                     for k, v in s.items()}
                 for j, s in first["state"].items()}
        return {"state": state, "param_groups": first["param_groups"]}

    def close(self) -> None:
        pass
