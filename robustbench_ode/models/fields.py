"""Vector fields f(t, z): the right-hand sides of the ODE blocks.

All take ``time_input``: when true, t enters as one extra input channel (or feature); by default
f does not depend on t, as in the protocol. A field that can train seed-stacked (several seeds'
parameters along a leading dimension, see :mod:`robustbench_ode.models.stacked`) defines its
stacked form here, beside its own forward, from the same layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

# f(t, z) on stacked states (S, B, D) -> (S, B, D)
StackedField = Callable[[float, torch.Tensor], torch.Tensor]


class Field(nn.Module):
    """Base of the package's fields: ``prepared(z)`` is the once-per-solve set-up (a no-op here)."""

    def prepared(self, z: torch.Tensor):
        return contextlib.nullcontext()


class StackableField(Field):
    """A field with a seed-stacked form: ``stacked(params, length)`` returns f on (S, B, D) states
    built from stacked parameters ``params`` (this field's parameter names -> (S, ...) tensors)."""

    @property
    def can_stack(self) -> bool:
        return True

    def stacked(self, params: dict[str, torch.Tensor], length: int) -> StackedField:
        raise NotImplementedError


def prepared(field: nn.Module, z: torch.Tensor):
    """``field``'s once-per-solve set-up for initial states like ``z`` as a context manager; a
    field from outside the package gets a no-op."""
    return field.prepared(z) if isinstance(field, Field) else contextlib.nullcontext()


def scalar_time(t) -> float:
    """t as a float: it arrives as a float (fixed-step loop) or a 0-dim tensor (torchdiffeq); no
    gradient flows into t."""
    return float(t.detach()) if isinstance(t, torch.Tensor) else float(t)


def _time_channel(t, z: torch.Tensor) -> torch.Tensor:
    shape = (z.shape[0], 1) + tuple(z.shape[2:])
    return torch.full(shape, scalar_time(t), dtype=z.dtype, device=z.device)


def conv_as_matrix(weight: torch.Tensor, length: int, padding: int) -> torch.Tensor:
    """The dense matrix of a stride-1 Conv1d on signals of ``length``, channel-major flattening.

    Written by hand because no library turns a convolution into its (tiny) Toeplitz matrix. On
    length-2 signals one matrix product is several times faster than a Conv1d call. Leading
    dimensions of ``weight`` (stacked seeds) are kept.
    """
    *lead, c_out, c_in, k = weight.shape
    pos = torch.arange(length, device=weight.device)
    # shift[k, l, m] = 1 where output position l reads input position m through kernel tap k
    shift = (pos[None, None, :] == pos[None, :, None] + torch.arange(k, device=weight.device)
             [:, None, None] - padding).to(weight.dtype)
    return torch.einsum("...oik,klm->...olim", weight, shift).reshape(
        *lead, c_out * length, c_in * length)


class OttConv1d(StackableField):
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
            x = torch.cat([x, torch.full((z.shape[0], z.shape[-1]), scalar_time(t), dtype=z.dtype,
                                         device=z.device)], 1)
        # relu in place on addmm's fresh output: addmm's backward does not need it, one
        # allocation fewer per layer
        h = torch.addmm(b1, x, w1).relu_()
        h = torch.addmm(b2, h, w2).relu_()
        return torch.addmm(b3, h, w3).view_as(z)

    def dense_relu_layers(self) -> list | None:
        """The fast path's layers as (W (in, out), b) for the hand-derived fixed-step backward
        (solvers/dense_backward.py), inside ``prepared``; None where it does not apply."""
        if not self.fast or self.time_input or self._dense is None:
            return None
        return list(self._dense)

    def _dense_layers(self, length: int):
        return tuple((conv_as_matrix(c.weight, length, c.padding[0]).t().contiguous(),
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

    @property
    def can_stack(self) -> bool:
        return self.fast  # the stacked form is the fast path's

    def stacked(self, params: dict[str, torch.Tensor], length: int) -> StackedField:
        """The fast path with a leading seed dimension: (S, B, C*L) -> (S, B, C*L)."""
        layers = []
        for name, conv in (("conv1", self.conv1), ("conv2", self.conv2), ("conv3", self.conv3)):
            w = conv_as_matrix(params[f"{name}.weight"], length, conv.padding[0]).transpose(1, 2).contiguous()
            layers.append((params[f"{name}.bias"].repeat_interleave(length, dim=1).unsqueeze(1), w))
        (b1, w1), (b2, w2), (b3, w3) = layers
        time_input = self.time_input

        def f(t, z):
            x = z
            if time_input:
                x = torch.cat([z, z.new_full(z.shape[:2] + (length,), float(t))], -1)
            h = torch.baddbmm(b1, x, w1).relu_()
            h = torch.baddbmm(b2, h, w2).relu_()
            return torch.baddbmm(b3, h, w3)

        return f


class OttConv2d(Field):
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


class MLP(StackableField):
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

    def dense_relu_layers(self) -> list | None:
        """The layers as (W (in, out), b) for the hand-derived fixed-step backward
        (solvers/dense_backward.py): a ReLU field without a time input; else None. W is a
        transposed view of nn.Linear's weight (for the d <- 64 output layer the faster layout)."""
        if self.time_input or not all(isinstance(m, (nn.Linear, nn.ReLU)) for m in self.net):
            return None
        return [(m.weight.t(), m.bias) for m in self.net if isinstance(m, nn.Linear)]

    def stacked(self, params: dict[str, torch.Tensor], length: int) -> StackedField:
        """The same layers with a leading seed dimension: (S, B, d) -> (S, B, d)."""
        linears = [i for i, m in enumerate(self.net) if isinstance(m, nn.Linear)]
        layers = [(params[f"net.{i}.bias"].unsqueeze(1), params[f"net.{i}.weight"].transpose(1, 2))
                  for i in linears]
        activation = self.net[1]  # elementwise, so it applies to any shape
        time_input = self.time_input

        def f(t, z):
            h = z
            if time_input:
                h = torch.cat([z, z.new_full(z.shape[:2] + (1,), float(t))], -1)
            for n, (b, w) in enumerate(layers):
                h = torch.baddbmm(b, h, w)
                if n < len(layers) - 1:
                    h = activation(h)
            return h

        return f
