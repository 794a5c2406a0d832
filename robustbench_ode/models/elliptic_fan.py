"""The elliptic fan: rotation along concentric ellipses, angular speed growing with the radius.

Design (docs/xor_fan.md): with centre ``c``, axis ratio ``a`` and normalised coordinates
``u = x - c_x``, ``v = (y - c_y) / a``, the elliptic radius is ``rho = sqrt(u^2 + v^2)`` and

    du/dt = -omega(rho) v,    dv/dt = omega(rho) u,    omega(rho) = w0 + w1 rho^2.

``rho`` is a first integral (d(rho^2)/dt = 2(u du + v dv) = 0), so each point turns on its own
ellipse at the constant angular speed ``omega(rho)``: the exact flow is a rotation by
``omega(rho) (t1 - t0)`` in (u, v). One Euler step instead multiplies ``rho`` by
``sqrt(1 + h^2 omega(rho)^2)``: it moves points *across* ellipses, which the exact flow never does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .classifier import ODEClassifier, init_weights
from .fields import Field
from .params import EllipticFanParams


class EllipticFan(Field):
    """f(t, z) on (B, 2): the elliptic fan, with learnable centre, log axis ratio, w0 and w1."""

    def __init__(self, centre: tuple[float, float] = (0.0, 0.0), axis_ratio: float = 1.0,
                 w0: float = 0.0, w1: float = 0.25, learn_centre: bool = True) -> None:
        super().__init__()
        centre_t = torch.tensor([float(centre[0]), float(centre[1])])
        # a buffer when fixed, so state dicts and .to(dtype) treat both cases alike
        if learn_centre:
            self.centre = nn.Parameter(centre_t)
        else:
            self.register_buffer("centre", centre_t)
        # log-parametrised: the axis ratio stays positive whatever the optimiser does
        self.log_axis = nn.Parameter(torch.tensor(math.log(axis_ratio)))
        self.w0 = nn.Parameter(torch.tensor(float(w0)))
        self.w1 = nn.Parameter(torch.tensor(float(w1)))

    def _normalised(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a = self.log_axis.exp().to(z.dtype)
        c = self.centre.to(z.dtype)
        return z[:, 0] - c[0], (z[:, 1] - c[1]) / a, a

    def omega(self, rho2: torch.Tensor) -> torch.Tensor:
        """Angular speed as a function of the squared elliptic radius."""
        return self.w0.to(rho2.dtype) + self.w1.to(rho2.dtype) * rho2

    def forward(self, t, z: torch.Tensor) -> torch.Tensor:
        u, v, a = self._normalised(z)
        w = self.omega(u * u + v * v)
        return torch.stack([-w * v, a * w * u], 1)

    def exact_flow(self, z0: torch.Tensor, t0: float, t1: float) -> torch.Tensor:
        """The closed-form flow map from ``t0`` to ``t1``: a rotation by omega(rho) (t1 - t0)."""
        u, v, a = self._normalised(z0)
        phi = self.omega(u * u + v * v) * (float(t1) - float(t0))
        cos, sin = torch.cos(phi), torch.sin(phi)
        c = self.centre.to(z0.dtype)
        return torch.stack([c[0] + u * cos - v * sin, c[1] + a * (u * sin + v * cos)], 1)

    def extra_repr(self) -> str:
        c = self.centre.detach().tolist()
        return (f"centre=({c[0]:.3g}, {c[1]:.3g}), axis_ratio={self.log_axis.exp().item():.3g}, "
                f"w0={self.w0.item():.3g}, w1={self.w1.item():.3g}")


def elliptic_fan(in_shape: tuple[int, ...], n_classes: int, **params) -> ODEClassifier:
    """2-D points through the elliptic fan, then one linear layer; the field has an exact flow.

    The default speed is gentle (w1 = 0.25): omega grows like rho^2, so a fast field on inputs far
    from the centre makes explicit solvers blow up within a few coarse steps."""
    q = EllipticFanParams(**params)
    if math.prod(in_shape) != 2:
        raise ValueError(f"elliptic_fan needs 2-D points, got input shape {tuple(in_shape)}")
    field = EllipticFan((q.centre_x, q.centre_y), q.axis_ratio, q.w0, q.w1, q.learn_centre)
    model = ODEClassifier(nn.Flatten(), field, nn.Linear(2, n_classes), (0.0, q.t1))
    init_weights(model)  # touches only the head: the field's scalars are set above
    return model
