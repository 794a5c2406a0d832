"""The parameters each registered dataset takes, as frozen pydantic models: a suite's
``dataset:`` entry is validated against these (without importing torch), and each factory
validates its keyword arguments with the same model, so the defaults live here only."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.types import Bool, Count, Float, Int, Noise


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sphere2Params(Params):
    n_train: Count = 2000
    n_test: Count = 1000


class SpheresParams(Params):
    dim: Annotated[Int, Field(ge=2, le=4096)] = 2
    n_train: Count = 2000
    n_test: Count = 1000


class MoonsParams(Params):
    n_train: Count = 2000
    n_test: Count = 1000
    noise: Noise = 0.1


class AnnuliParams(Params):
    n_train: Count = 2000
    n_test: Count = 1000
    noise: Noise = 0.05
    factor: Annotated[Float, Field(gt=0.0, lt=1.0)] = 0.5  # inner / outer radius


class SpiralsParams(Params):
    n_train: Count = 2000
    n_test: Count = 1000
    noise: Noise = 0.02
    turns: Annotated[Float, Field(gt=0.0, le=10.0)] = 1.5


class XorParams(Params):
    n_train: Count = 4
    n_test: Count = 4
    noise: Noise = 0.0


class ImageParams(Params):
    """Files under ``root`` (see datasets/images.py for the search order); seeded subsets."""

    root: Annotated[str, Field(max_length=4096)] | None = None
    download: Bool = False
    n_train: Count | None = None
    n_test: Count | None = None


class DigitsParams(Params):
    n_test: Annotated[Int, Field(ge=10, le=1000)] = 360


Points = Annotated[Int, Field(ge=1, le=10_000)]
Sampling = Literal["regular", "irregular"]
Rate = Annotated[Float, Field(gt=0.0, le=100.0)]
Horizon = Annotated[Float, Field(gt=0.0, le=1e3)]
Trajectories = Annotated[Int, Field(gt=0, le=1_000_000)]


class TimeSeriesParams(Params):
    n_train: Trajectories = 1000
    n_test: Trajectories = 200
    n_points: Points = 20
    t_end: Horizon = 5.0
    sampling: Sampling = "regular"
    noise: Noise = 0.0


class LotkaVolterraParams(TimeSeriesParams):
    alpha: Rate = 1.5
    beta: Rate = 1.0
    gamma: Rate = 3.0
    delta: Rate = 1.0


class VanDerPolParams(TimeSeriesParams):
    mu: Annotated[Float, Field(ge=0.0, le=100.0)] = 1.0


class ReflectionParams(Params):
    """Dupont et al.'s g(x) = -x on [-1, -0.5] U [0.5, 1] (datasets/reflection.py)."""

    n_train: Count = 200
    n_test: Count = 200


class MinimaParams(Params):
    n_train: Count = 2000
    n_test: Count = 1000
    damping: Annotated[Float, Field(gt=0.0, le=10.0)] = 0.5
    t_end: Annotated[Float, Field(gt=0.0, le=1000.0)] = 20.0
    x_max: Annotated[Float, Field(gt=0.0, le=10.0)] = 1.6
    v_max: Annotated[Float, Field(gt=0.0, le=10.0)] = 1.5


# Density sets (datasets/density.py): samples only. 2000 / 1000 points, as the classification toys.
class DensityToyParams(Params):
    n_train: Count = 2000
    n_test: Count = 1000


Scale = Annotated[Float, Field(gt=0.0, le=100.0)]


class TwoMoonsParams(DensityToyParams):
    noise: Noise = 0.1
    scale: Scale = 2.0


class EightGaussiansParams(DensityToyParams):
    radius: Scale = 2.8
    std: Annotated[Float, Field(gt=0.0, le=10.0)] = 0.35


class PinwheelParams(DensityToyParams):
    arms: Annotated[Int, Field(ge=1, le=64)] = 5
    radial_std: Annotated[Float, Field(gt=0.0, le=10.0)] = 0.3
    tangential_std: Annotated[Float, Field(gt=0.0, le=10.0)] = 0.1
    rate: Annotated[Float, Field(ge=0.0, le=10.0)] = 0.25


class TwoSpiralsParams(DensityToyParams):
    turns: Annotated[Float, Field(gt=0.0, le=10.0)] = 1.5
    scale: Scale = 3.2
    noise: Noise = 0.1
