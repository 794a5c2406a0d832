"""Known-answer constructions the fold test and the verdict are calibrated on (docs/diagnostics.md,
"Calibration"; ``tests/test_fold_calibration.py`` runs them at the default sample size, 256).
Each is a vector field f(t, z) on (B, 2) states, a head and a sampler, with the answer known by
construction:

- :class:`Pleat`: Euler steps that are the identity except step ``k``, whose map
  ``x -> x (1 - c exp(-x^2 / s^2))`` (y kept) folds the strip around x = 0 into a pleat; every
  flow of this field keeps the sign of x, the head reads that sign, so exactly the samples with
  ``|x| < s sqrt(ln c)`` flip, all by the fold, at step k; only those with
  ``c exp(-u)(1 - 2u) > 1`` (u = x^2 / s^2) have det <= 0 themselves (for c = 2 about half).
  Answer: ``fold`` at step k.
- :class:`Rotation`: ``dz/dt = w J z`` (J the rotation by 90 degrees). Euler's step is a rotation
  by ``atan(h w)`` scaled by ``sqrt(1 + h^2 w^2)``: linear, injective, det > 0 everywhere, so no
  fold anywhere; the lag ``N (h w - atan(h w))`` accumulates evenly over the N steps and moves
  the samples within that angle of the boundary x = 0. Answer: ``accumulation``.
- The XOR fan (``models/elliptic_fan.py``) under a fine fixed step against its closed-form exact
  flow: the discrete map is a close approximation of a flow. Answer: ``robust`` (no flip, no fold).
"""

from __future__ import annotations

import math

import torch


def sign_head(z: torch.Tensor) -> torch.Tensor:
    """Logits of class 1 where z_0 > 0: the decision boundary is the line z_0 = 0."""
    return torch.stack([-z[:, 0], z[:, 0]], 1)


def uniform_square(n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """``n`` points uniform on [-1, 1]^2, from ``torch.Generator().manual_seed(seed)``."""
    g = torch.Generator().manual_seed(seed)
    return 2.0 * torch.rand(n, 2, generator=g, dtype=dtype) - 1.0


def unit_circle(n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """``n`` points on the unit circle at uniformly random angles."""
    g = torch.Generator().manual_seed(seed)
    angle = 2.0 * math.pi * torch.rand(n, generator=g, dtype=dtype)
    return torch.stack([angle.cos(), angle.sin()], 1)


class Pleat(torch.nn.Module):
    """``f(t, z) = (-(c / h) b(t) x exp(-x^2 / s^2), 0)`` with ``b`` a narrow Gaussian bump in time
    centred at ``t_k = k / steps`` (width h / 10: 1 at t_k, below 1e-40 at every other grid time),
    so Euler with ``steps`` steps on [0, 1] is the identity except at step ``k``, where it is the
    pleat of the module docstring. The flow is smooth and keeps the sign of x."""

    def __init__(self, k: int = 0, steps: int = 1, c: float = 2.0, s: float = 0.3) -> None:
        super().__init__()
        self.k, self.steps, self.c, self.s = int(k), int(steps), float(c), float(s)

    def forward(self, t, z):
        t = float(t)
        h = 1.0 / self.steps
        bump = math.exp(-(((t - self.k * h) / (h / 10.0)) ** 2))
        x = z[:, 0]
        fx = -(self.c / h) * bump * x * torch.exp(-(x / self.s) ** 2)
        return torch.stack([fx, torch.zeros_like(fx)], 1)

    def flipped(self, z0: torch.Tensor) -> torch.Tensor:
        """The samples the pleat moves across x = 0 (the known answer)."""
        return z0[:, 0].abs() < self.s * math.sqrt(math.log(self.c))


class Rotation(torch.nn.Module):
    """``dz/dt = w J z`` with its closed-form flow (a rotation by ``w (t1 - t0)``)."""

    def __init__(self, w: float = math.pi) -> None:
        super().__init__()
        self.w = float(w)

    def forward(self, t, z):
        return self.w * torch.stack([-z[:, 1], z[:, 0]], 1)

    def exact_flow(self, z0, t0, t1):
        a = self.w * (float(t1) - float(t0))
        c, s = math.cos(a), math.sin(a)
        return torch.stack([c * z0[:, 0] - s * z0[:, 1], s * z0[:, 0] + c * z0[:, 1]], 1)

    def flipped(self, z0: torch.Tensor, steps: int) -> torch.Tensor:
        """Samples whose Euler end point and exact end point lie on different sides of x = 0."""
        angle = torch.atan2(z0[:, 1], z0[:, 0])
        euler = angle + steps * math.atan(self.w / steps)
        return torch.cos(euler).sign() != torch.cos(angle + self.w).sign()
