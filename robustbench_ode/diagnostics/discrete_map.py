"""The discrete map of a fixed-step solve and its exact log-determinant: is a coarse flow still a
density?

A solver run with N fixed steps of size h = (t1 - t0) / N turns a field f into the map
``Psi = psi_N o ... o psi_1``, where ``psi_n`` is the solver's one-step map from t_{n-1} = t0 +
(n - 1) h. A continuous normalising flow trained with that solver *is* this map on its state z
(the solver never sees anything else), so the density it really defines, where Psi is a
diffeomorphism, is the change of variables

    log p_Psi(x) = log N(Psi(x); 0, I) + sum_n log |det dpsi_n(z_{n-1})|,   z_0 = x,

whereas the log-likelihood the solver reports integrates the trace: ``log N(Psi(x)) - a_N`` with
a_N the solver's quadrature of ``-int tr(df/dz) dt`` (for Euler ``a_N = -h sum_n tr J(z_{n-1})``,
the first-order term of ``log det(I + h J) = h tr J + O(h^2)``). The two agree as h -> 0; at a
coarse step they need not, and the solver's number is then not the likelihood of any density.

``dpsi_n`` is the Jacobian of the one-step map itself, taken by autograd through one step of the
package's own solve (:func:`~robustbench_ode.solvers.solve` with ``steps=1`` on [t_{n-1}, t_n]),
so it is exact for every registered fixed-step method, whatever its stages: for Euler it is
``I + h J(z)``, for an explicit Runge-Kutta method the chain rule through its stages, ``I + h sum_i
b_i J(Y_i) dY_i/dz`` with ``dY_i/dz = I + h sum_j a_ij J(Y_j) dY_j/dz`` (on a linear field f = A z
both are the method's stability polynomial R(hA): I + hA for Euler, I + hA + (hA)^2/2 + (hA)^3/6
+ (hA)^4/24 for RK4; tests/test_cnf_math.py checks both). One forward step and D backward passes
per step (a Jacobian row each), batched over samples, which must not interact (no batch norm).

A step whose determinant is <= 0 at z_{n-1} *folds* there: the map reverses orientation, so
nearby points map onto each other and Psi is no normalising flow. It is the fold notion of the
classifier diagnostics (``det(dPsi_h/dz) <= 0``, docs/diagnostics.md) on the flow's own field; a
non-finite Jacobian counts as a fold too. The lead unifies this module with diagnostics/'s fold
test (one implementation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.cnf import CNF, standard_normal_logprob
from ..solvers import solve


@dataclass
class DiscreteMap:
    """Per sample of a batch (B, D): the map's image and its log-determinant, step by step."""

    z: torch.Tensor  # (B, D): Psi(x), the fixed-step solve's final state
    step_log_det: torch.Tensor  # (B, N): log |det dpsi_n(z_{n-1})| (NaN where not finite)
    step_sign: torch.Tensor  # (B, N): its sign, +1, -1 or 0 (NaN where not finite)

    @property
    def log_det(self) -> torch.Tensor:
        """(B,): sum over steps of log |det dpsi_n|: log |det dPsi(x)|."""
        return self.step_log_det.sum(1)

    @property
    def fold_steps(self) -> torch.Tensor:
        """(B,): steps whose determinant is <= 0 or not finite."""
        return (~(self.step_sign > 0)).sum(1)

    @property
    def folded(self) -> torch.Tensor:
        """(B,) bool: the map folds at the sample (some step's determinant is <= 0)."""
        return self.fold_steps > 0

    @property
    def min_log_det(self) -> torch.Tensor:
        """(B,): the smallest step log |det| (NaN where a step is not finite)."""
        return self.step_log_det.min(1).values


def step_jacobians(field, z: torch.Tensor, solver: str, t0: float, t1: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ``solver`` from t0 to t1 at the rows of ``z`` (B, D): the next states (B, D)
    and the one-step map's Jacobians (B, D, D), ``J[b, i, j] = d psi(z)_i / d z_j`` of sample b."""
    with torch.enable_grad():
        x = z.detach().requires_grad_(True)
        out = solve(field, x, solver, steps=1, t_span=(t0, t1)).z
        rows = []
        for i in range(out.shape[1]):
            (g,) = torch.autograd.grad(out[:, i].sum(), x, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(x) if g is None else g)
    return out.detach(), torch.stack(rows, 1)


def discrete_map(field, x: torch.Tensor, solver: str, steps: int,
                 t_span: tuple[float, float] = (0.0, 1.0)) -> DiscreteMap:
    """The N-step map of ``solver`` on ``field`` from the rows of ``x`` (B, D), with the exact
    log-determinant and sign of each step's Jacobian. Its ``z`` equals the final state of
    ``solve(field, x, solver, steps=steps, t_span=t_span)`` to float rounding (the step times are
    t0 + n h, as the fixed-step loop takes them)."""
    t0, t1 = float(t_span[0]), float(t_span[1])
    h = (t1 - t0) / int(steps)
    z, logs, signs = x.detach(), [], []
    for n in range(int(steps)):
        z, jac = step_jacobians(field, z, solver, t0 + n * h, t0 + (n + 1) * h)
        finite = torch.isfinite(jac).flatten(1).all(1)
        eye = torch.eye(jac.shape[-1], dtype=jac.dtype, device=jac.device)
        # LAPACK is not handed NaN: an identity stands in, then NaN is written
        sign, logabs = torch.linalg.slogdet(torch.where(finite[:, None, None], jac, eye))
        logs.append(logabs.masked_fill(~finite, float("nan")))
        signs.append(sign.masked_fill(~finite, float("nan")))
    return DiscreteMap(z, torch.stack(logs, 1), torch.stack(signs, 1))


def discrete_log_likelihood(model: CNF, x: torch.Tensor, solver: str, steps: int
                            ) -> tuple[torch.Tensor, DiscreteMap]:
    """The log-likelihood (B,) the N-step map of a CNF really assigns to the rows of ``x``,
    ``log N(Psi(x)) + log |det dPsi(x)|`` (module docstring), and the map itself (its folds).
    Where the map folds it is no change of variables: the value is still returned, and
    ``DiscreteMap.folded`` says where it means nothing."""
    dm = discrete_map(model.velocity, x, solver, steps, model.block.t_span)
    return standard_normal_logprob(dm.z) + dm.log_det, dm
