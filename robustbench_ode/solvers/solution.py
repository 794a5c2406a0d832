"""What a solve returns: the final state and its counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.status import Status

if TYPE_CHECKING:
    import torch


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

    def add(self, other: SolveStats) -> SolveStats:
        """Counters of two solves one after the other (summed; the worse status wins)."""
        both = self.accepted is not None or other.accepted is not None
        worse = self.status.combine(other.status)
        return SolveStats(
            nfe=self.nfe + other.nfe, steps=self.steps + other.steps,
            accepted=(self.accepted or 0) + (other.accepted or 0) if both else None,
            rejected=(self.rejected or 0) + (other.rejected or 0) if both else None,
            status=worse, message=self.message if worse is self.status else other.message)


@dataclass
class Solution:
    z: Any  # torch.Tensor
    stats: SolveStats = field(default_factory=SolveStats)

    @property
    def status(self) -> Status:
        return self.stats.status


def finite_status(z: torch.Tensor) -> Status:
    """OK for an all-finite state, NON_FINITE otherwise; OK inside ``torch.vmap`` (seeds stacked by
    models/vmapped.py), where one status cannot speak for every seed: the stack checks each
    seed's output itself."""
    import torch  # solution.py stays importable without torch (the CLI lists solvers without it)

    if torch._C._functorch.is_batchedtensor(z):  # no public test for "inside vmap" exists
        return Status.OK
    return Status.OK if bool(torch.isfinite(z).all()) else Status.NON_FINITE
