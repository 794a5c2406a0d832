"""Vector fields f(t, z): the right-hand sides of the ODE blocks.

All take ``time_input``: when true, t enters as one extra input channel (or feature); by default
f does not depend on t, as in the protocol.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def prepared(field, z: torch.Tensor):
    """``field``'s once-per-solve set-up for initial states like ``z`` (e.g. OttConv1d's dense
    matrices) as a context manager; a field without one gets a no-op."""
    prepare = getattr(field, "prepared", None)
    return prepare(z) if prepare is not None else contextlib.nullcontext()


def _scalar(t) -> float:
    # t is a float (fixed-step loop) or a 0-dim tensor (torchdiffeq); no gradient flows into t.
    return float(t.detach()) if isinstance(t, torch.Tensor) else float(t)


def _time_channel(t, z: torch.Tensor) -> torch.Tensor:
    shape = (z.shape[0], 1) + tuple(z.shape[2:])
    return torch.full(shape, _scalar(t), dtype=z.dtype, device=z.device)


def _conv_as_matrix(weight: torch.Tensor, length: int, padding: int) -> torch.Tensor:
    """The dense matrix of a stride-1 Conv1d on signals of ``length``, channel-major flattening.

    Written by hand because no library turns a convolution into its (tiny) Toeplitz matrix. On
    length-2 signals one matrix product is several times faster than a Conv1d call. Leading
    dimensions of ``weight`` (stacked seeds, see :mod:`robustbench_ode.seed_group`) are kept.
    """
    *lead, c_out, c_in, k = weight.shape
    pos = torch.arange(length, device=weight.device)
    # shift[k, l, m] = 1 where output position l reads input position m through kernel tap k
    shift = (pos[None, None, :] == pos[None, :, None] + torch.arange(k, device=weight.device)
             [:, None, None] - padding).to(weight.dtype)
    return torch.einsum("...oik,klm->...olim", weight, shift).reshape(
        *lead, c_out * length, c_in * length)


class OttConv1d(nn.Module):
    """Ott et al.'s Sphere2 field on (B, C, L): Conv1d C->w (k1), ReLU, w->w (k3, pad 1), ReLU, w->C (k1).

    ``fast=True`` evaluates the same function as three matrix products on the flattened state
    (identical parameters, outputs equal to float rounding); ``fast=False`` calls Conv1d.
    """

    def __init__(self, channels: int = 1, width: int = 32, time_input: bool = False,
                 fast: bool = True) -> None:
        super().__init__()
        self.time_input = time_input
        self.fast = fast
        c_in = channels + int(time_input)
        self.conv1 = nn.Conv1d(c_in, width, 1)
        self.conv2 = nn.Conv1d(width, width, 3, padding=1)
        self.conv3 = nn.Conv1d(width, channels, 1)
        self._dense: tuple | None = None

    def forward(self, t, z: torch.Tensor) -> torch.Tensor:
        if not self.fast:
            x = torch.cat([z, _time_channel(t, z)], 1) if self.time_input else z
            return self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        (w1, b1), (w2, b2), (w3, b3) = self._dense or self._dense_layers(z.shape[-1])
        x = z.flatten(1)
        if self.time_input:
            x = torch.cat([x, torch.full((z.shape[0], z.shape[-1]), _scalar(t), dtype=z.dtype,
                                         device=z.device)], 1)
        # relu in place on addmm's fresh output: addmm's backward does not need it, one
        # allocation fewer per layer
        h = torch.addmm(b1, x, w1).relu_()
        h = torch.addmm(b2, h, w2).relu_()
        return torch.addmm(b3, h, w3).view_as(z)

    def _dense_layers(self, length: int):
        return tuple((_conv_as_matrix(c.weight, length, c.padding[0]).t().contiguous(),
                      c.bias.repeat_interleave(length))
                     for c in (self.conv1, self.conv2, self.conv3))

    @contextlib.contextmanager
    def prepared(self, z: torch.Tensor):
        """Build the dense matrices once per solve rather than once per f call."""
        if not self.fast:
            yield
            return
        self._dense = self._dense_layers(z.shape[-1])
        try:
            yield
        finally:
            self._dense = None


class OttConv2d(nn.Module):
    """Ott et al.'s image field on (B, C, H, W): Conv2d C->w (k1), ReLU, w->w (k3, pad 1), ReLU, w->C (k1)."""

    def __init__(self, channels: int, width: int = 128, time_input: bool = False) -> None:
        super().__init__()
        self.time_input = time_input
        self.conv1 = nn.Conv2d(channels + int(time_input), width, 1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, channels, 1)

    def forward(self, t, z: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, _time_channel(t, z)], 1) if self.time_input else z
        return self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "elu": nn.ELU}


class MLP(nn.Module):
    """A fully connected field on (B, d): ``depth`` hidden layers of ``hidden`` units."""

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, activation: str = "relu",
                 time_input: bool = False) -> None:
        super().__init__()
        self.time_input = time_input
        layers: list[nn.Module] = []
        width = dim + int(time_input)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, t, z: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, _time_channel(t, z)], 1) if self.time_input else z
        return self.net(x)
