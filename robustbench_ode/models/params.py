"""The parameters each registered model family takes, as frozen pydantic models: a suite's
``model:`` entry is validated against these (without importing torch), and each factory validates
its keyword arguments with the same model, so the defaults live here only."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.types import Activation, Augment, Bool, Depth, EndTime, Float, Int, Width


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OttConv1dParams(Params):
    width: Width = 32
    time_input: Bool = False
    augment: Augment = 0
    t1: EndTime = 1.0
    # dense matrix products instead of Conv1d calls (same function); training.fast: false turns it off
    fast: Bool = True


class OttConv2dParams(Params):
    width: Width = 128
    time_input: Bool = False
    augment: Augment = 0
    t1: EndTime = 1.0
    input_map: Literal["none", "strided_conv"] = "none"
    map_channels: Annotated[Int, Field(gt=0, le=4096)] | None = None
    map_stride: Annotated[Int, Field(ge=1, le=16)] = 2


class MLPParams(Params):
    hidden: Width = 64
    depth: Depth = 2
    activation: Activation = "relu"
    time_input: Bool = False
    augment: Augment = 0
    t1: EndTime = 1.0


Coordinate = Annotated[Float, Field(ge=-1e3, le=1e3)]


class EllipticFanParams(Params):
    centre_x: Coordinate = 0.0
    centre_y: Coordinate = 0.0
    axis_ratio: Annotated[Float, Field(gt=0.0, le=1e3)] = 1.0
    w0: Coordinate = 0.0
    w1: Coordinate = 0.25
    learn_centre: Bool = True
    t1: EndTime = 1.0


Base = Literal["ott_conv1d", "ott_conv2d", "mlp"]


class ResNetParams(Params):
    """A base family's field as residual blocks; size parameters left out take the base's defaults."""

    blocks: Annotated[Int, Field(ge=1, le=100_000)] | None = None
    base: Base = "ott_conv1d"
    width: Width | None = None
    hidden: Width | None = None
    depth: Depth | None = None
    activation: Activation | None = None
    augment: Augment | None = None
    time_input: Bool | None = None
    fast: Bool = True


class TrajectoryParams(Params):
    hidden: Width = 64
    depth: Depth = 2
    activation: Activation = "tanh"
    time_input: Bool = False


class AugmentedTrajectoryParams(TrajectoryParams):
    """The trajectory model with ANODE's ``augment`` zero dimensions (models/trajectory.py)."""

    augment: Augment = 0


BASE_PARAMS: dict[str, type[Params]] = {"ott_conv1d": OttConv1dParams, "ott_conv2d": OttConv2dParams,
                                        "mlp": MLPParams}


def base_params(q: ResNetParams) -> dict:
    """The parameters a ResNet passes to its base family: the base's own that were given
    (``fast`` is a speed switch a base may lack); the factory and the cost rule both use it."""
    takes = BASE_PARAMS[q.base].model_fields
    return {k: v for k, v in q.model_dump(exclude={"blocks", "base"}).items()
            if v is not None and k in takes}


class CNFParams(Params):
    """A continuous normalising flow (models/cnf.py): an MLP field on (z, t)."""

    hidden: Width = 64
    depth: Depth = 3
    activation: Activation = "tanh"
    time_input: Bool = True
    # tr(df/dz): exact (D vector-Jacobian products per evaluation) or Hutchinson's estimate with
    # ``probes`` probe vectors of the ``probe`` distribution, drawn once per solve; auto: exact up to
    # EXACT_MAX_DIM dimensions, Hutchinson above
    trace: Literal["auto", "exact", "hutchinson"] = "auto"
    probe: Literal["gaussian", "rademacher"] = "gaussian"
    probes: Annotated[Int, Field(ge=1, le=64)] = 1
    # the trace test rows integrate: exact (no estimator noise in a test NLL) or the training one
    test_trace: Literal["exact", "train"] = "exact"
    t1: EndTime = 1.0


# A CNF's ``trace: auto`` takes the exact trace up to this many dimensions, Hutchinson's above.
EXACT_MAX_DIM = 16


def resolved_trace(trace: str, dim: int) -> Literal["exact", "hutchinson"]:
    """The trace a CNF of ``dim`` dimensions trains with; the factory and the cost rule both use it."""
    if trace == "auto":
        return "exact" if dim <= EXACT_MAX_DIM else "hutchinson"
    return trace  # type: ignore[return-value]
