"""Log-determinants of a discrete solve and of the flow: the one implementation of the fold notion.

Two numbers answer "does this map preserve orientation, and how much does it change volume":

- :func:`discrete_log_det`: for the map a fixed-step solve actually computes,
  ``z_N = Psi_{N-1}( ... Psi_0(z_0))``, the sign and ``log|det dz_N/dz_0| = sum_k log|det dPsi_k(z_k)|``
  with the per-step terms. For Euler ``dPsi_k = I + h J(z_k)``; for an explicit Runge-Kutta step
  ``dPsi = I + h sum_i b_i dk_i`` with the stage-wise chain rule ``dk_i = J(Y_i) (I + h sum_j
  a_ij dk_j)``: autodiff of the step computes exactly this (its determinant is *not* a product
  of per-stage determinants). A step with ``det <= 0`` folds: no ODE flow can (below).
- :func:`liouville_log_det`: for the exact flow, Liouville's formula
  ``log det dPhi_{t0->t1}(z0) = int_{t0}^{t1} tr J(z(t)) dt``, integrated alongside z by an
  adaptive solver. The determinant of a flow is ``exp`` of that integral, so it is > 0 by
  construction: forming the flow Jacobian explicitly and taking its determinant cannot resolve it
  once trajectories contract by 1e-20 (issue 27: reference "folds" on 17 committed models, all of
  them rounding), the integral can.

:func:`discrete_log_det` is also the continuous normalising flows' discrete change of variables
(:mod:`.discrete_map`: the likelihood a coarse flow's N-step map really assigns, and where it
folds): one implementation for the classifiers' fold test and the flows.

Both are differentiable with respect to the field's parameters when called with gradients enabled
(the continuous normalising flows use them for the likelihood); the diagnostics call them under
``torch.no_grad``. ``trace_jacobian`` is the exact trace (D backward passes, batched over samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import jacrev

from ..solvers import SOLVERS, Kind, solve
from .jacobians import slogdet, state_dim, step_jacobians_autodiff, variational_jacobians


@dataclass(frozen=True)
class DiscreteLogDet:
    """What :func:`discrete_log_det` returns. ``z``: the end state z_N (B, *state); ``sign`` (B,):
    the product of the step signs (-1 where an odd number of steps fold, 0 where one is singular);
    ``log_abs`` (B,): ``sum_k log|det dPsi_k(z_k)|``; ``step_sign``, ``step_log_abs`` (B, N): the
    per-step terms; ``points`` (B, N + 1, D): z_0 ... z_N flattened. NaN where a step is not finite."""

    z: torch.Tensor
    sign: torch.Tensor
    log_abs: torch.Tensor
    step_sign: torch.Tensor
    step_log_abs: torch.Tensor
    points: torch.Tensor

    @property
    def fold_steps(self) -> torch.Tensor:
        """(B,): steps whose determinant is <= 0 or not finite (the fold test's notion of a fold)."""
        return (~(self.step_sign > 0)).sum(1)

    @property
    def folded(self) -> torch.Tensor:
        """(B,) bool: the map folds at the sample: some step's determinant is <= 0 or not finite."""
        return self.fold_steps > 0


def step_jacobians(field, z: torch.Tensor, solver: str, t0: float, t1: float,
                   chunk: int = 256) -> torch.Tensor:
    """(B, D, D) Jacobians of one step of ``solver`` from ``t0`` to ``t1`` at the rows of ``z``.

    The project's fixed-step loop: autodiff of the batched step (``jacobians.py``). A torchdiffeq
    method run as one fixed step (an adaptive pair with its error control off): one step of the
    same method on the variational system, which for an explicit RK step is exactly the
    derivative of the discrete map."""
    s = SOLVERS.get(solver)
    if s.kind is Kind.FIXED:
        return step_jacobians_autodiff(
            lambda x: solve(field, x, s.name, steps=1, t_span=(t0, t1)).z, z, chunk)
    _, j, _ = variational_jacobians(field, z, s.name, t0, t1, steps=1, chunk=chunk)
    return j


def discrete_log_det(field, z0: torch.Tensor, solver: str = "euler", *, steps: int = 1,
                     t_span: tuple[float, float] = (0.0, 1.0), spans: list[tuple[float, float]] | None = None,
                     chunk: int = 256) -> DiscreteLogDet:
    """Sign and log|det| of the discrete map of ``steps`` equal steps of ``solver`` over ``t_span``
    (or of the given ``spans``, e.g. an adaptive solve's accepted steps replayed), from ``z0``
    (B, *state). Each step is ``solve(field, z_k, solver, steps=1, t_span=(t_k, t_k + h))``, the
    steps the project's loop takes; the step Jacobian is :func:`step_jacobians`."""
    if spans is None:
        t0, t1 = float(t_span[0]), float(t_span[1])
        h = (t1 - t0) / int(steps)
        spans = [(t0 + k * h, t0 + k * h + h) for k in range(int(steps))]
    b, d = z0.shape[0], state_dim(z0)
    z, pts, signs, logs = z0, [z0.reshape(b, d)], [], []
    for a, e in spans:
        sign, log_abs = slogdet(step_jacobians(field, z, solver, a, e, chunk))
        signs.append(sign)
        logs.append(log_abs)
        z = solve(field, z, solver, steps=1, t_span=(a, e)).z
        pts.append(z.reshape(b, d))
    step_sign, step_log = torch.stack(signs, 1), torch.stack(logs, 1)
    return DiscreteLogDet(z, step_sign.prod(1), step_log.sum(1), step_sign, step_log, torch.stack(pts, 1))


def trace_jacobian(field, t, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(t, z), tr df/dz)`` per sample, exactly: jacrev of f summed over the batch (samples do
    not interact in any field of this project), one forward and D vmapped backward passes."""
    b, d = z.shape[0], state_dim(z)

    def f_sum(x):
        fx = field(t, x)
        return fx.sum(0), fx

    jf, fz = jacrev(f_sum, has_aux=True)(z)  # (*state_out, B, *state_in)
    per = jf.reshape(d, b, d).permute(1, 0, 2)
    return fz, per.diagonal(dim1=1, dim2=2).sum(1)


class _Liouville(torch.nn.Module):
    """The field on flattened (B, D + 1) states ``[z, l]`` with ``dl/dt = tr J(z)``."""

    def __init__(self, field, state_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.field, self.state_shape = field, tuple(state_shape)

    def forward(self, t, s):
        z = s[:, :-1].reshape(s.shape[0], *self.state_shape)
        fz, tr = trace_jacobian(self.field, t, z)
        return torch.cat([fz.reshape(s.shape[0], -1), tr[:, None]], 1)


def liouville_log_det(field, z0: torch.Tensor, t_span: tuple[float, float] = (0.0, 1.0), *,
                      method: str = "dopri5", rtol: float = 1e-7, atol: float | None = None,
                      max_steps: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z(t1), log det dz(t1)/dz(t0))`` of the flow of ``field`` from ``z0``, by Liouville's
    formula: ``int tr J dt`` integrated alongside z by torchdiffeq's ``method`` at ``rtol`` /
    ``atol`` (atol = rtol when not given), the error controlled on z alone (a seminorm: the
    steps are those the reference takes for z; for ReLU fields tr J jumps at every kink and
    controlling its error would shrink the steps without end, as for the variational system in
    ``jacobians.flow_jacobians``). The determinant is ``exp`` of the result: never <= 0. A solver
    failure (step limit, underflow) raises RuntimeError."""
    import torchdiffeq

    atol = rtol if atol is None else atol
    b, d = z0.shape[0], state_dim(z0)
    aug = _Liouville(field, tuple(z0.shape[1:]))

    def seminorm(ratio: torch.Tensor) -> torch.Tensor:  # torchdiffeq's RMS norm over z alone
        return ratio[:, :d].abs().pow(2).mean().sqrt()

    t = torch.tensor([float(t_span[0]), float(t_span[1])], dtype=z0.dtype, device=z0.device)
    s0 = torch.cat([z0.reshape(b, d), torch.zeros(b, 1, dtype=z0.dtype, device=z0.device)], 1)
    try:
        s = torchdiffeq.odeint(aug, s0, t, method=method, rtol=rtol, atol=atol,
                               options={"max_num_steps": int(max_steps), "step_t": t,
                                        "norm": seminorm})[-1]
    except AssertionError as err:  # torchdiffeq's underflow / step-limit checks
        raise RuntimeError(str(err)) from None
    return s[:, :d].reshape(z0.shape), s[:, d]
