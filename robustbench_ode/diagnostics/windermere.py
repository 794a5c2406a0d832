"""Lady Windermere's fan: the global error of a fixed-step solve as a sum of transported local errors.

With the train solver's points ``z_0 ... z_N`` on the grid ``t_0 ... t_N = T`` and the reference
flow ``Phi``, let ``w_k = Phi_{t_k -> T}(z_k)``: where the exact solution through the k-th computed
point ends. Then ``w_0 = z_ref(T)``, ``w_N = z_N``, and

    z_N - z_ref(T) = sum_k (w_{k+1} - w_k),
    w_{k+1} - w_k = Phi_{t_{k+1} -> T}(Psi_h(z_k)) - Phi_{t_{k+1} -> T}(Phi_{t_k -> t_{k+1}}(z_k)):

step k's local error ``Psi_h(z_k) - Phi(z_k)`` carried to T by the flow (Hairer, Norsett and
Wanner, Fig. II.3.2). With many steps the decomposition is taken over blocks of consecutive steps
(:func:`transport_indices`); the sum still telescopes exactly.

The class of ``w_k`` (``head(w_k)``) starts at the reference class and ends at the train class; the
step after which it first differs from the reference class is the flip step.
"""

from __future__ import annotations

import numpy as np
import torch


def transport_indices(n_steps: int, max_transport: int) -> np.ndarray:
    """Grid indices at which w_k is computed: every step if ``n_steps <= max_transport``, else
    ``max_transport + 1`` indices evenly spaced (rounded) from 0 to ``n_steps``; always 0 and N."""
    if n_steps <= max_transport:
        return np.arange(n_steps + 1)
    return np.unique(np.round(np.linspace(0, n_steps, max_transport + 1)).astype(np.int64))


def first_change(classes: np.ndarray) -> np.ndarray:
    """Per row of ``classes`` (B, M + 1): the first block i (0-based) with
    ``classes[:, i + 1] != classes[:, 0]``, or -1 where the class never leaves ``classes[:, 0]``."""
    differs = classes[:, 1:] != classes[:, :1]
    any_ = differs.any(1)
    return np.where(any_, differs.argmax(1), -1)


def class_changes(classes: np.ndarray) -> np.ndarray:
    """How often the class of w changes along each row (B, M + 1)."""
    return (classes[:, 1:] != classes[:, :-1]).sum(1)


def concentration(norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From contribution norms (B, M): the largest contribution's share of the sum of norms (1 when
    one step makes all the error; the verdict calls a flipped sample with a share >= 1/2
    *concentrated*: nothing accumulated) and the sum of norms itself."""
    total = norms.sum(1)
    return norms.max(1).values / total, total
