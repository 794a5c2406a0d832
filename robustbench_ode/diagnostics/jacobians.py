"""Per-sample Jacobians of one step of a solver, and of the reference flow over one step.

Two ways, both batched over samples:

- :func:`step_jacobians_autodiff`: ``torch.func.jacrev`` of the batched one-step map, summed over
  the batch. Samples do not interact in any field of this project (no batch norm), so the
  derivative of ``sum_b Psi(z)_b`` with respect to ``z_b`` is sample b's own Jacobian; one forward
  pass for the whole batch, one backward pass per state dimension, vmapped. The textbook
  ``vmap(jacrev(single_sample_step))`` does not run on our fixed-step loop:
  ``solvers/base.py::_finite_status`` calls ``bool(torch.isfinite(z).all())``, data-dependent
  control flow that ``vmap`` refuses. jacrev alone (grad transform) accepts it, hence the sum.
  torchdiffeq's solvers do not run under torch.func at all (an ``autograd.Function`` without
  ``setup_context``), so this path is for the hand-written fixed-step loop only.
- :func:`variational_jacobians`: integrate the variational equation ``dJ/dt = (df/dz)(t, z) J``,
  ``J(t0) = I``, alongside ``z`` with any registered solver. For an explicit Runge-Kutta step of a
  fixed size this is *exactly* the Jacobian of the discrete step (differentiation and RK
  discretisation commute for a fixed step), so it serves torchdiffeq's fixed-grid steps.
  ``df/dz`` is taken as above (jacrev of f summed over the batch: one forward pass, D vmapped
  backward passes; half the time of vmapping forward-mode jvp over J's columns on Sphere2's field),
  then multiplied into J.
- :func:`flow_jacobians`: the same variational system under the reference's error control, with
  the error measured on z alone (a seminorm, torchdiffeq's ``norm`` option). The step sizes are
  then those of the plain reference solve of the same batch, and J is the derivative of that
  discrete solution with its steps held fixed: the flow Jacobian to the reference's accuracy.
  Controlling J's error too is not affordable: for ReLU fields df/dz jumps wherever a trajectory
  crosses a kink, and dopri5 at 1e-7 then shrinks its steps for J without end (200 Sphere2 points,
  2 steps: 39 s instead of a fraction of a second).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import jacrev

from ..solvers import solve


def state_dim(z: torch.Tensor) -> int:
    """The flattened per-sample state size of a batch (B, *state)."""
    return int(z[0].numel())


def _per_sample(j: torch.Tensor, b: int, d: int) -> torch.Tensor:
    # jacrev of sum_b out_b wrt (B, *state): (*state_out, B, *state_in) -> (B, D_out, D_in)
    return j.reshape(d, b, d).permute(1, 0, 2)


def step_jacobians_autodiff(step: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                            chunk: int = 256) -> torch.Tensor:
    """(B, D, D) Jacobians of a batched, sample-independent map ``step`` at the rows of ``z``."""
    d = state_dim(z)
    out = []
    for zc in z.split(chunk):
        j = jacrev(lambda x: step(x).sum(0))(zc)
        out.append(_per_sample(j, zc.shape[0], d))
    return torch.cat(out)


def exact_flow_jacobians(field, z: torch.Tensor, t0: float, t1: float, chunk: int = 256) -> torch.Tensor:
    """(B, D, D) Jacobians of ``field.exact_flow(., t0, t1)`` (a closed form: plain jacrev)."""
    return step_jacobians_autodiff(lambda x: field.exact_flow(x, t0, t1), z, chunk)


class Variational:
    """The field of the variational system on flattened (B, D + D*D) states ``[z, vec(J)]``.

    ``J`` is stored row-major (``J[i, j] = dz_i / dz0_j``) and moves by ``(df/dz)(t, z) J``.
    """

    def __init__(self, field, state_shape: tuple[int, ...]) -> None:
        self.field = field
        self.state_shape = tuple(state_shape)
        self.d = 1
        for n in self.state_shape:
            self.d *= int(n)

    def pack(self, z: torch.Tensor, j: torch.Tensor | None = None) -> torch.Tensor:
        b, d = z.shape[0], self.d
        if j is None:
            j = torch.eye(d, dtype=z.dtype, device=z.device).expand(b, d, d)
        return torch.cat([z.reshape(b, d), j.reshape(b, d * d)], 1)

    def unpack(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, d = s.shape[0], self.d
        return s[:, :d].reshape(b, *self.state_shape), s[:, d:].reshape(b, d, d)

    def __call__(self, t, s: torch.Tensor) -> torch.Tensor:
        z, j = self.unpack(s)
        b, d = z.shape[0], self.d

        def f_sum(x):
            fx = self.field(t, x)
            return fx.sum(0), fx

        jf, fz = jacrev(f_sum, has_aux=True)(z)  # one forward, D vmapped backward passes
        dj = torch.bmm(_per_sample(jf, b, d), j)
        return torch.cat([fz.reshape(b, d), dj.reshape(b, d * d)], 1)


def variational_jacobians(field, z: torch.Tensor, solver: str, t0: float, t1: float, *,
                          steps: int | None = None, rtol: float | None = None,
                          atol: float | None = None, max_steps: int = 10_000, chunk: int = 256):
    """z(t1) and the (B, D, D) Jacobians dz(t1)/dz(t0) of one solve of ``solver`` from ``t0``.

    Returns ``(z1, jac, stats)``; ``stats`` is the worst chunk's :class:`SolveStats` (a failed
    chunk leaves NaN, as the solver does).
    """
    var = Variational(field, tuple(z.shape[1:]))
    zs, js, worst = [], [], None
    for zc in z.split(chunk):
        sol = solve(var, var.pack(zc), solver, steps=steps, rtol=rtol, atol=atol,
                    t_span=(float(t0), float(t1)), max_steps=max_steps)
        z1, j1 = var.unpack(sol.z)
        zs.append(z1)
        js.append(j1)
        if worst is None or sol.stats.status.severity > worst.status.severity:
            worst = sol.stats
    return torch.cat(zs), torch.cat(js), worst


def slogdet(jac: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sign and log|det| of (B, D, D) Jacobians; non-finite Jacobians give NaN for both."""
    bad = ~torch.isfinite(jac).flatten(1).all(1)
    if bool(bad.any()):  # LAPACK is not handed NaN: an identity stands in, then NaN is written
        eye = torch.eye(jac.shape[-1], dtype=jac.dtype, device=jac.device)
        jac = torch.where(bad[:, None, None], eye, jac)
    sign, logabs = torch.linalg.slogdet(jac)
    if bool(bad.any()):
        sign = sign.masked_fill(bad, float("nan"))
        logabs = logabs.masked_fill(bad, float("nan"))
    return sign, logabs


def flow_jacobians(field, z: torch.Tensor, method: str, t0: float, t1: float, *, rtol: float,
                   atol: float, max_steps: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """z(t1) and the flow Jacobians dz(t1)/dz(t0) (B, D, D) by torchdiffeq's ``method`` at
    ``rtol``/``atol``, error controlled on z only (module docstring). The options are the project's
    AdaptiveSolver's (``max_num_steps``; ``step_t`` so the solve lands on t1). A solver failure
    (step limit, underflow) raises RuntimeError."""
    import torchdiffeq

    var = Variational(field, tuple(z.shape[1:]))
    d = var.d

    def seminorm(ratio: torch.Tensor) -> torch.Tensor:  # torchdiffeq's RMS norm, over z alone
        return ratio[:, :d].abs().pow(2).mean().sqrt()

    t = torch.tensor([float(t0), float(t1)], dtype=z.dtype, device=z.device)
    try:
        s = torchdiffeq.odeint(var, var.pack(z), t, method=method, rtol=rtol, atol=atol,
                               options={"max_num_steps": int(max_steps), "step_t": t,
                                        "norm": seminorm})[-1]
    except AssertionError as err:  # torchdiffeq's underflow / step-limit checks
        raise RuntimeError(str(err)) from None
    return var.unpack(s)
