"""ResNet baselines: a base model's vector field used as N discrete residual blocks.

A residual block here is ``z_{k+1} = z_k + (1/N) f_k(z_k)``, k = 0 ... N-1: exactly one explicit
Euler step of size h = 1/N on t in [0, 1]. The usual ``z + g(z)`` block is the same family
(``g = f / N``: a rescaling of the last layer's weights and bias), so nothing is lost by writing the
1/N; it is what makes the discrete network and Euler with N steps one and the same computation.

- ``resnet_shared``: one field f for every block (f_k = f). Tested as an ODE it is dz/dt = f(z).
- ``resnet``: N separately initialised copies f_0 ... f_{N-1}. Tested as an ODE it is the
  piecewise-constant-in-time field dz/dt = f_{k(t)}(z), block k on [k/N, (k+1)/N)
  (:class:`PiecewiseField`).

Both *train* as the discrete network: in training mode ``forward`` runs the written-out loop over
the blocks and ignores the solve spec it is given. In evaluation mode, and always through
``final_state``, the block is integrated with whatever solver the caller passes, so the models go
through the same test grid as any ODE model. A suite must train them with ``euler`` at ``blocks``
steps (the registry's train rule, models/catalog.py), so the train columns of the results table
say what was trained.
"""

from __future__ import annotations

import contextlib
import copy
import math

import torch
from torch import nn

from ..solvers import SolveStats
from ..solvers.solution import finite_status
from .catalog import base_size_error
from .classifier import ODEClassifier, init_weights
from .families import mlp, ott_conv1d, ott_conv2d
from .fields import Field, prepared
from .params import ResNetParams, base_params
from .spec import SolveSpec

BASES = {"ott_conv1d": ott_conv1d, "ott_conv2d": ott_conv2d, "mlp": mlp}

# Block boundaries, as a fraction of [t0, t1]: t less than BOUNDARY_EPS (t1 - t0) below k/N counts
# as block k. The fixed-step loop computes t = t0 + n h in float64 (rounding ~1e-16), but
# torchdiffeq hands the field float32 times (the state's dtype), off by up to ~1.2e-7 near t = 1:
# the guard must exceed that. It also moves every jump of the ODE that much earlier, so it is kept
# small: a 1e-4 guard (in blocks) shifted dopri5's integral of a 4-block step function by 1e-4.
BOUNDARY_EPS = 1e-6


class PiecewiseField(Field):
    """dz/dt = f_{k(t)}(z) with k(t) = min(floor(N ((t - t0) / (t1 - t0) + eps)), N - 1).

    Block k owns [t0 + k h, t0 + (k+1) h), h = (t1 - t0) / N. A stage evaluated exactly at a
    boundary (rk4's last stage, midpoint at a coarse step that spans two blocks, an adaptive step
    ending on a boundary) sees the block that *starts* there; at t1 itself the last block. So the
    Euler loop at N steps calls f_k exactly at the start of block k, as the discrete network does,
    while a higher-order method's end-of-step stage already looks at the next block.
    """

    def __init__(self, fields: list[nn.Module], t_span: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        if not fields:
            raise ValueError("PiecewiseField needs at least one field")
        self.fields = nn.ModuleList(fields)
        self.t_span = (float(t_span[0]), float(t_span[1]))

    def index(self, t) -> int:
        """The block whose time interval holds ``t`` (a float or a 0-dim tensor)."""
        t = float(t.detach()) if isinstance(t, torch.Tensor) else float(t)
        t0, t1 = self.t_span
        n = len(self.fields)
        k = math.floor(n * ((t - t0) / (t1 - t0) + BOUNDARY_EPS))
        return min(max(k, 0), n - 1)

    def forward(self, t, z: torch.Tensor) -> torch.Tensor:
        return self.fields[self.index(t)](t, z)

    @contextlib.contextmanager
    def prepared(self, z: torch.Tensor):
        """Every sub-field's fast path (e.g. OttConv1d's dense matrices), set up once per solve."""
        with contextlib.ExitStack() as stack:
            for f in self.fields:
                stack.enter_context(prepared(f, z))
            yield


class ResNetClassifier(ODEClassifier):
    """``head(flatten(z_N))`` with N residual blocks; an ODE classifier when tested.

    ``block.field`` is the shared field f (``resnet_shared``) or a :class:`PiecewiseField`
    (``resnet``); ``final_state`` integrates it like any ODE block.
    """

    def __init__(self, input_map: nn.Module, field: nn.Module, head: nn.Module, blocks: int) -> None:
        # h = 1/N on [0, 1]: the protocol's interval, and what makes block k the Euler step k
        super().__init__(input_map, field, head, (0.0, 1.0))
        self.blocks = int(blocks)

    def block_fields(self) -> list[nn.Module]:
        field = self.block.field
        return list(field.fields) if isinstance(field, PiecewiseField) else [field] * self.blocks

    def discrete(self, z0: torch.Tensor) -> torch.Tensor:
        """z_N of the residual network: z_{k+1} = z_k + h f_k(t_k, z_k), t_k = t0 + k h."""
        t0, t1 = self.block.t_span
        h = (t1 - t0) / self.blocks
        z = z0
        with prepared(self.block.field, z0):
            for k, f in enumerate(self.block_fields()):
                # t_k and the fused add as the Euler loop computes them, so the two agree to the bit
                z = torch.add(z, f(t0 + k * h, z), alpha=h)
        return z

    def forward(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats]:
        """Training mode: the discrete network (``spec`` is not used). Evaluation mode: the ODE
        block solved with ``spec``, as for any ODE classifier."""
        if not self.training:
            return super().forward(x, spec)
        z = self.discrete(self.input_map(x))
        status = finite_status(z)
        return self.logits(z), SolveStats(nfe=self.blocks, steps=self.blocks, status=status)

    def extra_repr(self) -> str:
        return f"blocks={self.blocks}"


def _build(in_shape: tuple[int, ...], n_classes: int, q: ResNetParams, separate: bool) -> ResNetClassifier:
    if q.blocks is None:
        raise ValueError("blocks: give the number of residual blocks (a suite fills it in from the "
                         "train step count)")
    why = base_size_error(q.model_dump())
    if why:
        raise ValueError(why)
    given = base_params(q)
    model = BASES[q.base](in_shape, n_classes, **given)
    field = model.block.field
    if separate:
        copies = [field]
        for _ in range(q.blocks - 1):
            f = copy.deepcopy(field)
            init_weights(f)  # its own Kaiming draw, as if built alone
            copies.append(f)
        field = PiecewiseField(copies)
    return ResNetClassifier(model.input_map, field, model.head, q.blocks)


def resnet_shared(in_shape: tuple[int, ...], n_classes: int, **params) -> ResNetClassifier:
    """``base``'s model (input map, field, head, Kaiming init) as N residual blocks sharing one field.

    Size parameters left out (None) take the base's defaults; ``blocks`` left out is filled with
    the cell's train step count."""
    return _build(in_shape, n_classes, ResNetParams(**params), False)


def resnet(in_shape: tuple[int, ...], n_classes: int, **params) -> ResNetClassifier:
    """``base``'s model as N residual blocks with separate, separately initialised fields.

    Tested as an ODE it is the piecewise-constant-in-time field of :class:`PiecewiseField`."""
    return _build(in_shape, n_classes, ResNetParams(**params), True)


__all__ = ["BOUNDARY_EPS", "PiecewiseField", "ResNetClassifier", "resnet", "resnet_shared"]
