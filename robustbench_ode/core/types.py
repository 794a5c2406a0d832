"""Typed values shared by the configs of every axis (pydantic ``Annotated`` types), defined once
so that a count, a noise level or an end time has the same bounds wherever it appears.

Numbers are strict about type confusion: a YAML ``true`` is not the number 1 and ``"0.1"`` is not
0.1; an integer is a fine float (``1`` -> ``1.0``), a float is not an integer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, Strict

from .preview import preview


def _number(value: object) -> object:
    if isinstance(value, (bool, str, bytes)) or value is None:
        hint = ""
        if isinstance(value, str) and len(value) < 40:
            try:
                float(value)
                # YAML 1.1 (PyYAML) reads 1e-3 as a string; 1.0e-3 or 0.001 is a number
                hint = f" {value!r} (YAML reads an exponent without a dot as text: write e.g. 1.0e-3)"
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {type(value).__name__}{hint}")
    return value


def _unique(values: list) -> list:
    seen: list = []
    for i, v in enumerate(values):
        if v in seen:  # a list (not a set): 1 and 1.0 are one value, as they are one step count
            raise ValueError(f"{preview(v, 30)} is listed twice (item {i}); list each value once")
        seen.append(v)
    return values


Float = Annotated[float, BeforeValidator(_number)]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]

Count = Annotated[int, Strict(), Field(gt=0, le=10_000_000)]  # samples, iterations, batch sizes
NonNegInt = Annotated[int, Strict(), Field(ge=0, le=10_000_000)]
Steps = Annotated[int, Strict(), Field(gt=0, le=1_000_000)]  # solver steps
Tol = Annotated[float, BeforeValidator(_number), Field(gt=0.0, lt=1.0)]  # rtol = atol
Factor = Annotated[float, BeforeValidator(_number), Field(gt=0.0, le=1e4)]  # step / tol factors
Noise = Annotated[float, BeforeValidator(_number), Field(ge=0.0, le=10.0)]  # std of added noise
EndTime = Annotated[float, BeforeValidator(_number), Field(gt=0.0, le=1e6)]  # end of the interval
Seed = Annotated[int, Strict(), Field(ge=0, lt=2**31)]
Width = Annotated[int, Strict(), Field(gt=0, le=65536)]
Depth = Annotated[int, Strict(), Field(ge=1, le=64)]
Augment = Annotated[int, Strict(), Field(ge=0, le=1024)]  # ANODE's extra zero dimensions / channels
Activation = Literal["relu", "tanh", "softplus", "elu"]
Weight = Annotated[float, BeforeValidator(_number), Field(ge=0.0, le=1e4)]  # a penalty weight
# A name in the tables (labels) and a suite name: plain identifiers, no separators, not "." / "..".
Label = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$", max_length=60)]
Name = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=100)]


def unique_list(item, min_length: int = 1, max_length: int = 10_000):
    """A non-empty list of ``item`` with no value listed twice (seeds, step counts, tolerances)."""
    return Annotated[list[item], Field(min_length=min_length, max_length=max_length),
                     AfterValidator(_unique)]
