"""A plain density model (a continuous normalising flow written as FFJORD code is written) under
solver substitution: what the harness reads from it.

A plain CNF calls ``torchdiffeq.odeint`` on the augmented state itself, typically the tuple
``(z, delta_logp)`` with the field returning ``(f, -tr(df/dz))``, as FFJORD's ``ODEfunc`` does;
every such call is substituted (:mod:`.substitution`) like any other. The harness asks two
things of it, read here:

- **its log-likelihood**: ``model.log_prob(x)`` if the model has one, else ``model(x)``; either
  returns log p(x) per sample in nats, (B,) or (B, 1). The rows' ``nll`` is ``-log p(x) / D``, nats
  per dimension, the number the ``cnf`` family's ``logits`` are;
- **its samples** (optional): ``model.sample(z)`` maps base draws z (B, D) ~ N(0, I) to data,
  solving the flow backwards with odeint. The base draws are the family's
  (:func:`robustbench_ode.models.cnf.base_draws`: the same seed, the same numbers), so the energy
  distance of a plain flow and of the same flow in the family are one number. A model without
  ``sample`` has ``energy_distance`` NaN.
"""

from __future__ import annotations

import torch
from torch import nn

from ..diagnostics.density import energy_distance
from ..models.cnf import base_draws
from ..models.spec import SolveSpec
from .substitution import substituted


def plain_nll(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Each sample's negative log-likelihood in nats per dimension (B,), from the model's
    ``log_prob`` (or its forward); TypeError when that is not one number per sample."""
    log_prob = getattr(model, "log_prob", None) or model
    out = log_prob(x)
    if not torch.is_tensor(out) or out.numel() != len(x) or out.dim() > 2:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise TypeError(f"{type(model).__name__}.log_prob(x) (or its forward) returned {shape} for "
                        f"{len(x)} samples: a plain density model returns log p(x), one number per sample")
    return -out.reshape(len(x)) / x[0].numel()


def plain_energy_distance(model: nn.Module, spec: SolveSpec, held_out: torch.Tensor, seed: int = 0,
                          device: str = "cpu") -> float:
    """:func:`~robustbench_ode.diagnostics.density.sample_energy_distance` for a plain flow: as
    many samples as held out, ``model.sample(z)`` of the family's base draws under substitution
    with ``spec``; NaN without ``sample`` or when a sample is not finite."""
    if not callable(getattr(model, "sample", None)):
        return float("nan")
    dtype = next(model.parameters()).dtype
    z = base_draws(len(held_out), held_out.shape[1], torch.Generator().manual_seed(seed), dtype, device)
    with torch.no_grad(), substituted(spec):
        samples = model.sample(z)
    if not torch.is_tensor(samples) or samples.shape != z.shape or not torch.isfinite(samples).all():
        return float("nan")
    return energy_distance(samples.cpu(), held_out.cpu())
