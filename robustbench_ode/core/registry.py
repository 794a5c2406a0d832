"""A registry per benchmark axis: register, get (with a helpful error), list with a glob filter.

Solvers, models, datasets and executors each have one instance, filled by their axis's
``catalog`` module when :mod:`robustbench_ode` is imported. An entry carries typed metadata
(``meta``: a solver's kind, a dataset's task, a model's train rule and the values the harness
provides it, ...), read by the harness instead of probing functions or parameter names.

An entry's object may be given as an import path ``"package.module:attr"``, loaded on first
:meth:`Registry.get`: listing and validating then never import torch (the implementations do).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from . import imports
from .preview import clip, preview

T = TypeVar("T")
# package.module:attr, each part a Python identifier (no relative imports, no file paths)
_IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)


class UnknownNameError(KeyError):
    """An unknown registry name. The message lists the valid names and the closest match."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def load(target: str) -> Any:
    """The object an import path ``"package.module:attr"`` names."""
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


def is_import_path(name: str) -> bool:
    """A suite may name a factory outside the package as ``package.module:attr``."""
    return ":" in str(name)


def import_factory(path: str) -> Any:
    """A user's factory by import path; a malformed path, a missing module or attribute, or a
    module that fails on import is a ValueError (one line)."""
    if not isinstance(path, str) or not _IMPORT_PATH.fullmatch(path):
        raise ValueError(f"{preview(path, 40)}: not a registered name, nor an import path "
                         "package.module:factory")
    refused = imports.refusal(path)
    if refused is not None:
        raise ValueError(refused)
    try:
        obj = load(path)
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything on import
        raise ValueError(f"cannot import {preview(path, 60)}: {type(exc).__name__}: "
                         f"{clip(str(exc).splitlines()[0] if str(exc) else '', 100)}") from None
    if not callable(obj):
        raise ValueError(f"{preview(path, 60)} is not callable")
    return obj


@dataclass
class Entry(Generic[T]):
    name: str
    target: T | str  # the object, or an import path loaded on first use
    description: str
    meta: Any = None  # the axis's typed metadata (see each catalog)
    _loaded: Any = field(default=None, repr=False)

    @property
    def obj(self) -> T:
        if self._loaded is None:
            self._loaded = load(self.target) if isinstance(self.target, str) else self.target
        return self._loaded


class Registry(Generic[T]):
    """Name -> entry, for one axis (``kind`` is used in messages: "solver", "model", ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, target: T | str, description: str = "", meta: Any = None) -> Entry[T]:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        entry = Entry(name, target, description, meta)
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Unregister an entry (a plugin's or a test's throwaway entry)."""
        self.entry(name)
        del self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def meta(self, name: str) -> Any:
        return self.entry(name).meta

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: object) -> str:
        valid = sorted(self._entries)
        close = difflib.get_close_matches(name, valid, n=1) \
            if isinstance(name, str) and len(name) <= 100 else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        # the name comes from a file: echoed bounded (a 20 kB name costs 30 characters here)
        return f"unknown {self.kind} {preview(name, 30)}{hint} (valid: {', '.join(valid)})"

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def entries(self, pattern: str = "*") -> list[Entry[T]]:
        return [self._entries[n] for n in self.names(pattern)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
