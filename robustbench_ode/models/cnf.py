"""Continuous normalising flows (Chen et al. 2018; FFJORD, Grathwohl et al. 2019): a density as
an ODE solve.

A CNF transports a data point x at t = 0 along dz/dt = f(t, z) to z(T), where the base density
is the standard Gaussian. Along the way the log-density changes by the instantaneous change of
variables, d log p(z(t)) / dt = -tr(df/dz), so with the augmented state (z, a),

    dz/dt = f(t, z),   da/dt = -tr(df/dz)(t, z),   z(0) = x,  a(0) = 0,

the model's log-likelihood is ``log p(x) = log N(z(T); 0, I) - a(T)``. That augmented system is
one ODE, solved by the package's own :func:`~robustbench_ode.solvers.solve` with whatever
solver a :class:`~.spec.SolveSpec` names, so the solver registry, the counters (NFE, steps,
status) and the adjoint apply to it as to any other block. A coarse train solver therefore
reports a likelihood computed by that solver; docs/cnf.md is about whether it holds.

The trace is a strategy (models/trace.py): exact, or Hutchinson's estimate with probe vectors
drawn once per solve. RNODE's penalties (Finlay et al. 2020) ride along as two more state
components, the kinetic energy ||f||^2 and the squared Frobenius norm of df/dz (the same vector-
Jacobian products as the trace), when :meth:`CNF.penalised` is asked for them.

The model answers the calls the harness makes of every model (``forward``, ``final_state``,
``logits``, ``block.field``, ``input_map``): its "final state" is the augmented state
(B, D + 1), and its "logits" are each sample's negative log-likelihood in nats per dimension.
"""

from __future__ import annotations

import contextlib
import math
from typing import Literal

import torch
from torch import nn

from ..solvers import SolveStats, solve
from .classifier import AugmentChannels, ODEClassifier
from .fields import MLP, Field
from .params import CNFParams, resolved_trace
from .spec import SolveSpec
from .trace import ExactTrace, Hutchinson, Noise, draw_probes

# Evaluation draws its Hutchinson probes from this seed at every solve: a test row is
# reproducible, and every test configuration sees the same probes for the same batch position
# (common random numbers), so the gap between two solvers carries no difference in probes.
EVAL_PROBE_SEED = 2019
_LOG_2PI = math.log(2 * math.pi)

Estimator = ExactTrace | Hutchinson


def standard_normal_logprob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per row of (B, D)."""
    return -0.5 * (z.pow(2) + _LOG_2PI).sum(1)


class CNFField(Field):
    """FFJORD's ``ODEfunc``: the field on the augmented state ``s = [z, a]`` (B, D + 1), or
    ``[z, a, E, J]`` (B, D + 3) when penalised, returning ``[f, -tr(df/dz), ||f||^2, ||df/dz||_F^2]``.

    ``net(t, z)`` is the flow's own field. The trace comes from ``estimator`` in training mode
    and from ``test_estimator`` in evaluation mode; Hutchinson's needs :attr:`probes`, set by
    :meth:`probing` for the length of a solve (called outside one, the field draws the evaluation
    probes itself, the same at every call, so it stays a well-defined ODE)."""

    def __init__(self, net: nn.Module, dim: int, estimator: Estimator, test_estimator: Estimator,
                 probe_count: int = 1) -> None:
        super().__init__()
        self.net, self.dim = net, dim
        self.estimator, self.test_estimator = estimator, test_estimator
        self.probe_count = probe_count
        self.probes: torch.Tensor | None = None

    @property
    def active(self) -> Estimator:
        return self.estimator if self.training else self.test_estimator

    def forward(self, t, s: torch.Tensor) -> torch.Tensor:
        differentiate = torch.is_grad_enabled()  # training, or the adjoint's backward pass
        estimator = self.active
        with torch.enable_grad():
            if not s.requires_grad:  # evaluation, or a first stage: z must be in the graph
                s = s.detach().requires_grad_(True)
            # a slice, never a leaf, in the graph: module backward hooks (torch's FLOP counter)
            # refuse a leaf in autograd.grad
            z = s[:, :self.dim]
            f = self.net(t, z)
            probes = self.probes
            if estimator.needs_probe and (probes is None or probes.shape[1:] != z.shape):
                probes = eval_probes(estimator.noise, self.probe_count, z)
            trace, frobenius = estimator(f, z, probes, differentiate)
        parts = [f, -trace.unsqueeze(1)]
        if s.shape[1] > self.dim + 1:  # penalised: the kinetic and Jacobian integrands
            parts += [f.pow(2).sum(1, keepdim=True), frobenius.unsqueeze(1)]
        out = torch.cat(parts, 1)
        return out if differentiate else out.detach()

    @contextlib.contextmanager
    def probing(self, probes: torch.Tensor | None):
        self.probes = probes
        try:
            yield
        finally:
            self.probes = None


def base_draws(n: int, dim: int, generator: torch.Generator | None, dtype: torch.dtype,
               device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` draws of the base N(0, I) (n, dim): float64 on the CPU from ``generator``, then cast
    and moved, so the same seed gives the same draws on every device and for a plain flow
    (harness/plain_density.py) as for the family."""
    z = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    return z.to(device=device, dtype=dtype)


def eval_probes(noise: Noise, count: int, like: torch.Tensor) -> torch.Tensor:
    return draw_probes(noise, count, like, torch.Generator().manual_seed(EVAL_PROBE_SEED))


class CNF(ODEClassifier):
    """``forward(x, spec)`` -> (negative log-likelihood per dimension of each sample (B,), stats).

    Subclasses ODEClassifier for its plumbing (``input_map`` appends a = 0, ``block.field`` is
    the augmented field, parameters are ``block.field.net.*``). ``probe_seed``: the seed of the
    next training solve's Hutchinson probes (training/density.py sets it per iteration, so a
    resumed run draws what an uninterrupted one does); None: the global generator."""

    def __init__(self, net: nn.Module, dim: int, estimator: Estimator, test_estimator: Estimator,
                 probe_count: int = 1, t1: float = 1.0) -> None:
        field = CNFField(net, dim, estimator, test_estimator, probe_count)
        super().__init__(AugmentChannels(1), field, nn.Identity(), (0.0, t1))
        self.dim = dim
        self.probe_seed: int | None = None

    @property
    def velocity(self) -> nn.Module:
        """The flow's own field ``f(t, z)`` on (B, D), without the log-density component."""
        return self.block.field.net

    def _probes(self, z0: torch.Tensor) -> torch.Tensor | None:
        field = self.block.field
        estimator = field.active
        if not estimator.needs_probe:
            return None
        if not self.training:
            return eval_probes(estimator.noise, field.probe_count, z0)
        generator = None if self.probe_seed is None else torch.Generator().manual_seed(self.probe_seed)
        return draw_probes(estimator.noise, field.probe_count, z0, generator)

    def _solve(self, s0: torch.Tensor, spec: SolveSpec):
        field = self.block.field
        with field.probing(self._probes(s0[:, :self.dim])):
            return solve(field, s0, spec.solver, steps=spec.steps, rtol=spec.rtol, atol=spec.atol,
                         t_span=self.block.t_span, max_steps=spec.max_steps, adjoint=spec.adjoint,
                         control=spec.control)

    def final_state(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats]:
        """The augmented state [z(T), a(T)] (B, D + 1) of the data ``x`` (B, D)."""
        sol = self._solve(self.input_map(x), spec)
        return sol.z, sol.stats

    def log_likelihood(self, s: torch.Tensor) -> torch.Tensor:
        """log p(x) = log N(z(T)) - a(T) per sample, from the augmented final state."""
        return standard_normal_logprob(s[:, :self.dim]) - s[:, self.dim]

    def logits(self, s: torch.Tensor) -> torch.Tensor:
        """Each sample's negative log-likelihood in nats per dimension (the harness's name for a
        model's output on final states)."""
        return -self.log_likelihood(s) / self.dim

    def forward(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats]:
        s, stats = self.final_state(x, spec)
        return self.logits(s), stats

    def penalised(self, x: torch.Tensor, spec: SolveSpec
                  ) -> tuple[torch.Tensor, SolveStats, torch.Tensor, torch.Tensor]:
        """One solve of [z, a, E, J]: the NLL per dimension (B,), the stats, and the batch means of
        the kinetic integral int ||f||^2 dt and the Jacobian integral int ||df/dz||_F^2 dt (exact
        with the exact trace, Hutchinson's estimate with the same probes otherwise)."""
        s0 = torch.cat([x, x.new_zeros(x.shape[0], 3)], 1)
        sol = self._solve(s0, spec)
        s, d = sol.z, self.dim
        return self.logits(s[:, :d + 1]), sol.stats, s[:, d + 1].mean(), s[:, d + 2].mean()

    @torch.no_grad()
    def sample(self, n: int, spec: SolveSpec, generator: torch.Generator | None = None,
               device: str | torch.device = "cpu") -> tuple[torch.Tensor, SolveStats]:
        """``n`` samples: base draws z(T) ~ N(0, I) (on the CPU from ``generator``, in the
        parameters' dtype) solved backwards to t = 0 along the flow's own field (no trace is
        needed to sample)."""
        z = base_draws(n, self.dim, generator, next(self.parameters()).dtype, device)
        t0, t1 = self.block.t_span
        sol = solve(self.velocity, z, spec.solver, steps=spec.steps, rtol=spec.rtol, atol=spec.atol,
                    t_span=(t1, t0), max_steps=spec.max_steps, control=spec.control)
        return sol.z, sol.stats

    def extra_repr(self) -> str:
        field = self.block.field
        return f"dim={self.dim}, trace={field.estimator.name}, test_trace={field.test_estimator.name}"


def make_estimator(kind: Literal["exact", "hutchinson"], noise: Noise) -> Estimator:
    return ExactTrace() if kind == "exact" else Hutchinson(noise)


def cnf(in_shape: tuple[int, ...], n_classes: int, **params) -> CNF:
    """A CNF on flat D-dimensional samples: an MLP field on (z, t) (``hidden`` units, ``depth``
    hidden layers, ``activation``; t as one more input unless ``time_input: false``), PyTorch's
    default initialisation (as FFJORD). ``n_classes`` is ignored (a density has none)."""
    q = CNFParams(**params)
    if len(in_shape) != 1:
        raise ValueError(f"model 'cnf' needs flat samples (a density dataset), got shape {tuple(in_shape)}")
    dim = int(in_shape[0])
    kind = resolved_trace(q.trace, dim)
    estimator = make_estimator(kind, q.probe)
    test_estimator = ExactTrace() if q.test_trace == "exact" else estimator
    net = MLP(dim, q.hidden, q.depth, q.activation, q.time_input)
    return CNF(net, dim, estimator, test_estimator, q.probes, q.t1)

