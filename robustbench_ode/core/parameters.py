"""A registry entry's parameters as ``list`` shows them: name, type and default, read from the
entry's pydantic params model (the one a suite's entry is validated against, so the listing and
the validation cannot disagree). Torch-free, like everything in :mod:`robustbench_ode.core`."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def type_text(annotation: Any) -> str:
    """``int``, ``float``, ``bool``, ``str``, ``relu|tanh`` (a Literal), ``int|None`` (optional)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return type_text(typing.get_args(annotation)[0])
    if origin is Literal:
        return "|".join(str(v) for v in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return "|".join(type_text(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def parameters(params: type[BaseModel]) -> list[tuple[str, str, str]]:
    """(name, type, default) per field of a params model, in declaration order; a required
    field's default is ``required``."""
    out = []
    for name, field in params.model_fields.items():
        default = "required" if field.default is PydanticUndefined else repr(field.default)
        out.append((name, type_text(field.annotation), default.strip("'")))
    return out


def parameter_items(params: type[BaseModel] | None) -> list[str]:
    """``["width: int = 32", "time_input: bool = False", ...]`` (``["no parameters"]``)."""
    found = parameters(params) if params is not None else []
    return [f"{n}: {t} = {d}" for n, t, d in found] or ["no parameters"]
