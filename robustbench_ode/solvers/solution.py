"""What a solve returns: the final state and its counters."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..status import Status


@dataclass
class SolveStats:
    """Counters of one solve.

    ``nfe`` counts calls of the vector field (for a batch, one call is one evaluation).
    ``steps`` counts accepted steps; adaptive solvers also report ``accepted`` and ``rejected``
    (``None`` for fixed-step solvers).
    """

    nfe: int = 0
    steps: int = 0
    accepted: int | None = None
    rejected: int | None = None
    status: Status = Status.OK
    message: str = ""


@dataclass
class Solution:
    z: torch.Tensor
    stats: SolveStats = field(default_factory=SolveStats)

    @property
    def status(self) -> Status:
        return self.stats.status
