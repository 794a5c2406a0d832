"""Typed parameters shared by the model factories: a suite's values are validated against these
(config.py builds each factory's parameter model from its signature)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

Width = Annotated[int, Field(gt=0, le=65536)]
Depth = Annotated[int, Field(ge=1, le=64)]
Augment = Annotated[int, Field(ge=0, le=1024)]  # ANODE's extra zero dimensions / channels
EndTime = Annotated[float, Field(gt=0.0, le=1e6)]
Activation = Literal["relu", "tanh", "softplus", "elu"]
