"""The vector field wrapped to count evaluations and adaptive steps, for solves run by torchdiffeq."""

from __future__ import annotations

from torch import nn


class Counted(nn.Module):
    """Wraps f to count evaluations. An ``nn.Module`` so that torchdiffeq's adjoint finds f's
    parameters through it. For fixed-step solves: it declares no step callbacks, which
    torchdiffeq's fixed-grid solvers do not support (and warn about)."""

    def __init__(self, f) -> None:
        super().__init__()
        self.f = f
        self.nfe = 0

    def forward(self, t, z):
        self.nfe += 1
        return self.f(t, z)


class CountedSteps(Counted):
    """Counted, also counting accepted and rejected steps through torchdiffeq's adaptive-step
    callbacks."""

    def __init__(self, f) -> None:
        super().__init__(f)
        self.accepted = 0
        self.rejected = 0

    @property
    def attempted(self) -> int:
        return self.accepted + self.rejected

    def callback_accept_step(self, t0, y0, dt) -> None:
        self.accepted += 1

    def callback_reject_step(self, t0, y0, dt) -> None:
        self.rejected += 1
