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

``dpsi_n`` is the Jacobian of the one-step map itself, taken by autodiff through one step of the
package's own solve, by :func:`~.logdet.discrete_log_det`, the one implementation the classifier
fold test (``diagnostics/pieces.py``) uses too: exact for every registered fixed-step method,
whatever its stages: for Euler it is ``I + h J(z)``, for an explicit Runge-Kutta method the chain
rule through its stages (on a linear field f = A z both are the method's stability polynomial
R(hA): I + hA for Euler, I + hA + (hA)^2/2 + (hA)^3/6 + (hA)^4/24 for RK4; tests/test_cnf_math.py
checks both). Samples must not interact (no batch norm).

A step whose determinant is <= 0 at z_{n-1} *folds* there: the map reverses orientation, so
nearby points map onto each other and Psi is no normalising flow. It is the fold notion of the
classifier diagnostics (``det(dPsi_h/dz) <= 0``, docs/diagnostics.md) on the flow's own field,
:attr:`~.logdet.DiscreteLogDet.folded`; a non-finite Jacobian counts as a fold too.
"""

from __future__ import annotations

import torch

from ..models.cnf import CNF, standard_normal_logprob
from .logdet import DiscreteLogDet, discrete_log_det


def discrete_log_likelihood(model: CNF, x: torch.Tensor, solver: str, steps: int
                            ) -> tuple[torch.Tensor, DiscreteLogDet]:
    """The log-likelihood (B,) the N-step map of a CNF really assigns to the rows of ``x``,
    ``log N(Psi(x)) + log |det dPsi(x)|`` (module docstring), and the map itself (its folds:
    ``.folded``). Where the map folds it is no change of variables: the value is still returned,
    and ``folded`` says where it means nothing."""
    dm = discrete_log_det(model.velocity, x.detach(), solver, steps=steps, t_span=model.block.t_span)
    return standard_normal_logprob(dm.z) + dm.log_abs, dm
