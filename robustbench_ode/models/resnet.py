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
steps (:func:`check_training`), so the train columns of the results table say what was trained.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import nn

from ..solvers import SolveStats
from ..status import Status
from .catalog import mlp, ott_conv1d, ott_conv2d
from .classifier import ODEClassifier, SolveSpec, init_weights
from .fields import prepared
from .params import Activation, Augment, Depth, Width

BASES = {"ott_conv1d": ott_conv1d, "ott_conv2d": ott_conv2d, "mlp": mlp}
Base = Literal["ott_conv1d", "ott_conv2d", "mlp"]
Blocks = Annotated[int, Field(ge=1, le=100_000)]

# Block boundaries, as a fraction of [t0, t1]: t less than BOUNDARY_EPS (t1 - t0) below k/N counts
# as block k. The fixed-step loop computes t = t0 + n h in float64 (rounding ~1e-16), but
# torchdiffeq hands the field float32 times (the state's dtype), off by up to ~1.2e-7 near t = 1:
# the guard must exceed that. It also moves every jump of the ODE that much earlier, so it is kept
# small: a 1e-4 guard (in blocks) shifted dopri5's integral of a 4-block step function by 1e-4.
BOUNDARY_EPS = 1e-6


class PiecewiseField(nn.Module):
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
        status = Status.OK if bool(torch.isfinite(z).all()) else Status.NON_FINITE
        return self.logits(z), SolveStats(nfe=self.blocks, steps=self.blocks, status=status)

    def extra_repr(self) -> str:
        return f"blocks={self.blocks}"


def base_kwargs(base: str, given: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for the base factory: the given (non-None) ones it takes.

    A size parameter the base does not take is an error naming it; ``fast`` is a speed switch (the
    harness turns it off for every factory that has it), so a base without it just ignores it.
    """
    takes = set(inspect.signature(BASES[base]).parameters)
    out = {}
    for name, value in given.items():
        if value is None:
            continue
        if name in takes:
            out[name] = value
        elif name != "fast":
            raise ValueError(f"model.{name}: not a parameter of base {base!r} "
                             f"(it takes {', '.join(sorted(takes - {'in_shape', 'n_classes'}))})")
    return out


def _build(in_shape: tuple[int, ...], n_classes: int, blocks: int | None, base: str,
           separate: bool, given: dict[str, Any]) -> ResNetClassifier:
    if blocks is None:
        raise ValueError("blocks: give the number of residual blocks (a suite fills it in from the "
                         "train step count)")
    model = BASES[base](in_shape, n_classes, **base_kwargs(base, given))
    field = model.block.field
    if separate:
        copies = [field]
        for _ in range(blocks - 1):
            f = copy.deepcopy(field)
            init_weights(f)  # its own Kaiming draw, as if built alone
            copies.append(f)
        field = PiecewiseField(copies)
    return ResNetClassifier(model.input_map, field, model.head, blocks)


def resnet_shared(in_shape: tuple[int, ...], n_classes: int, blocks: Blocks | None = None,
                  base: Base = "ott_conv1d", width: Width | None = None,
                  hidden: Width | None = None, depth: Depth | None = None,
                  activation: Activation | None = None, augment: Augment | None = None,
                  time_input: bool | None = None, fast: bool = True) -> ResNetClassifier:
    """``base``'s model (input map, field, head, Kaiming init) as N residual blocks sharing one field.

    Size parameters left out (None) take the base's defaults; ``blocks`` left out is filled with
    the cell's train step count."""
    given = dict(width=width, hidden=hidden, depth=depth, activation=activation, augment=augment,
                 time_input=time_input, fast=fast)
    return _build(in_shape, n_classes, blocks, base, False, given)


def resnet(in_shape: tuple[int, ...], n_classes: int, blocks: Blocks | None = None,
           base: Base = "ott_conv1d", width: Width | None = None,
           hidden: Width | None = None, depth: Depth | None = None,
           activation: Activation | None = None, augment: Augment | None = None,
           time_input: bool | None = None, fast: bool = True) -> ResNetClassifier:
    """``base``'s model as N residual blocks with separate, separately initialised fields.

    Tested as an ODE it is the piecewise-constant-in-time field of :class:`PiecewiseField`."""
    given = dict(width=width, hidden=hidden, depth=depth, activation=activation, augment=augment,
                 time_input=time_input, fast=fast)
    return _build(in_shape, n_classes, blocks, base, True, given)


def check_training(name: str, params: dict[str, Any], grid: list, training: Any) -> str | None:
    """Why a suite may not train this ResNet as configured (one line naming the key), or None.

    The discrete network *is* Euler at h = 1/blocks, so only that train configuration is honest:
    any other would put a solver in the train columns that never ran.
    """
    blocks = params.get("blocks")
    for i, entry in enumerate(grid):
        if entry.solver != "euler":
            return (f"train.grid.{i}.solver: {name} trains as its discrete network, which is Euler "
                    f"with h = 1/blocks: give solver euler (got {entry.solver!r})")
        wrong = [s for s in entry.steps or [] if blocks is not None and s != blocks]
        if wrong:
            return (f"train.grid.{i}.steps: {name} with blocks={blocks} is Euler at {blocks} steps: "
                    f"give steps [{blocks}], or leave blocks out to take it from each step count "
                    f"(got {wrong[0]})")
    if getattr(training, "adaptation", None) is not None:
        return f"training.adaptation: {name} has a fixed number of blocks; its steps cannot adapt"
    if getattr(training, "regularization", None) is not None:
        return f"training.regularization: {name} trains as discrete blocks; there is no flow to regularise"
    if getattr(training, "gradient", "autograd") != "autograd":
        return f"training.gradient: {name} trains by autograd through its blocks (no solve, no adjoint)"
    try:
        base_kwargs(params.get("base", "ott_conv1d"), {k: v for k, v in params.items()
                                                       if k not in ("blocks", "base")})
    except ValueError as exc:
        return str(exc)
    return None


# A factory's ``train_rule`` is checked by config.parse_suite against the suite's train grid.
resnet_shared.train_rule = lambda params, grid, training: check_training(  # type: ignore[attr-defined]
    "resnet_shared", params, grid, training)
resnet.train_rule = lambda params, grid, training: check_training(  # type: ignore[attr-defined]
    "resnet", params, grid, training)

__all__ = ["BOUNDARY_EPS", "PiecewiseField", "ResNetClassifier", "check_training",
           "resnet", "resnet_shared"]
