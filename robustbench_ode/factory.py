"""Factories named by import path: a suite's model may be ``package.module:factory`` instead of a
registered name, so models defined outside the package run through suites unchanged.

The factory has the registered factories' signature, ``f(in_shape, n_classes, **params)``, and
returns a module usable as an ODE classifier (see :mod:`robustbench_ode.benchmark` for the
interface; a plain model with ``input_map``/``field``/``head`` is adapted).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .registry import Registry


def is_import_path(name: str) -> bool:
    return ":" in name


def import_factory(path: str) -> Callable:
    module_name, _, attr = path.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {path!r}: {type(exc).__name__}: {exc}") from None
    if not callable(obj):
        raise ValueError(f"{path!r} is not callable")
    return obj


def resolve(registry: Registry, name: str) -> Callable:
    """A registered factory by name, or an imported one by ``module:attr``."""
    return import_factory(name) if is_import_path(name) else registry.get(name)
