"""The trace of a field's Jacobian, the integrand of a CNF's log-density (models/cnf.py), as a
strategy: exact, or Hutchinson's stochastic estimate (FFJORD, Grathwohl et al. 2019).

Both take the field's output ``f`` (B, D) and its input ``z`` (B, D) with ``f`` computed from
``z`` in the autograd graph, and return per sample the trace of df/dz and the squared Frobenius
norm of df/dz (exact, or its estimate with the same probes: RNODE's Jacobian penalty, Finlay et
al. 2020, for free). Samples must not interact (no batch norm), so the derivative of
``sum_b f_b`` is each sample's own. ``create_graph``: keep the graph of the result (training, and
the adjoint's backward pass, differentiate the trace once more).

Written by hand rather than with ``torch.func.jacrev``: the estimate needs one vector-Jacobian
product with a given probe, and the fields see the batch, as the solvers call them.
"""

from __future__ import annotations

from typing import Literal

import torch

Noise = Literal["gaussian", "rademacher"]


class ExactTrace:
    """D vector-Jacobian products per evaluation, one per dimension (a Jacobian row each): the
    diagonal gives the trace, the rows' squared norms the Frobenius norm. Exact; its cost grows
    with D (autograd over the dimensions)."""

    name = "exact"
    needs_probe = False

    def __call__(self, f: torch.Tensor, z: torch.Tensor, probe: torch.Tensor | None,
                 create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
        trace = f.new_zeros(f.shape[0])
        frobenius = f.new_zeros(f.shape[0])
        for i in range(f.shape[1]):
            row = _grad(f[:, i].sum(), z, None, create_graph)
            trace = trace + row[:, i]
            frobenius = frobenius + row.pow(2).sum(1)
        return trace, frobenius


class Hutchinson:
    """Hutchinson's estimator with K probe vectors e (K, B, D), E[e e^T] = I:
    tr(J) ~ mean_k e_k^T J e_k and ||J||_F^2 ~ mean_k ||e_k^T J||^2, one vector-Jacobian product
    per probe. Unbiased; for a probe set drawn once per solve (as FFJORD does) the augmented ODE
    is a well-defined ODE, which any solver may integrate."""

    name = "hutchinson"
    needs_probe = True

    def __init__(self, noise: Noise = "gaussian") -> None:
        self.noise = noise

    def __call__(self, f: torch.Tensor, z: torch.Tensor, probe: torch.Tensor | None,
                 create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if probe is None:
            raise ValueError("Hutchinson's estimator needs probe vectors (K, B, D)")
        trace = f.new_zeros(f.shape[0])
        frobenius = f.new_zeros(f.shape[0])
        for e in probe:
            vjp = _grad(f, z, e, create_graph)
            trace = trace + (vjp * e).sum(1)
            frobenius = frobenius + vjp.pow(2).sum(1)
        return trace / len(probe), frobenius / len(probe)


def _grad(out: torch.Tensor, z: torch.Tensor, v: torch.Tensor | None, create_graph: bool) -> torch.Tensor:
    """v^T d out / dz; zeros where ``out`` does not depend on ``z`` (a constant field)."""
    (g,) = torch.autograd.grad(out, z, v, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return torch.zeros_like(z) if g is None else g


def draw_probes(noise: Noise, count: int, like: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``count`` probe vectors shaped like ``like`` (B, D): standard Gaussian, or Rademacher
    (+-1 with probability 1/2 each, the smaller variance of the two). Drawn on the CPU from
    ``generator`` (the global one if None), then moved: the draws are the same on every device."""
    shape = (count, *like.shape)
    if noise == "gaussian":
        e = torch.randn(shape, generator=generator, dtype=torch.float64)
    else:
        e = torch.randint(0, 2, shape, generator=generator).to(torch.float64) * 2 - 1
    return e.to(dtype=like.dtype, device=like.device)
