"""Which modules a suite or a stored cell may make this process import (docs/reliability.md,
"Security model").

A factory named by import path (``package.module:factory``) runs the module's code on import, so
a suite file or a run folder from someone else could run anything (``os:system``, the standard
library's ``venv.__main__:main``) if every path were imported. Only modules the user opts into
are: ``--allow-import MODULE`` on the command line (repeatable; a package allows its submodules),
kept in the environment variable :data:`ENV` so worker processes inherit the choice, and the
modules an installed distribution declares in the entry-point group :data:`GROUP` (as pytest's
``pytest11`` and timm's plugins: installing a package is the opt-in). Reading that group reads
the distributions' ``entry_points.txt`` only; no plugin is imported until a suite names one of
its factories. Nothing else is ever imported by name: not the standard library, not the
current directory.

While :func:`deferred` is active (reading a stored cell, ``verify``), factories are not resolved
at all: a name is kept as text and checked only when a model or dataset is built from it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.metadata
import os
from collections.abc import Iterator

ENV = "ROBUSTBENCH_ODE_ALLOW_IMPORT"
# An installed distribution's entry_points.txt: [robustbench_ode.plugins] NAME = package.module
# (or package.module:factory); that module and its submodules may then be named by import path.
GROUP = "robustbench_ode.plugins"
_DEFERRED = contextvars.ContextVar("robustbench_ode_deferred_imports", default=False)


def allowed() -> tuple[str, ...]:
    """The modules (and packages) the user allowed, in order."""
    return tuple(m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip())


def allow(*modules: str) -> None:
    """Allow importing ``modules`` (and their submodules) by name, in this process and its workers."""
    os.environ[ENV] = ",".join(dict.fromkeys([*allowed(), *(m.strip() for m in modules if m.strip())]))


@functools.cache
def plugins() -> tuple[str, ...]:
    """The modules the installed distributions declare in :data:`GROUP` (metadata only: nothing
    is imported here). Read once per process."""
    return tuple(dict.fromkeys(ep.value.partition(":")[0].strip()
                               for ep in importlib.metadata.entry_points(group=GROUP)))


def is_allowed(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in (*allowed(), *plugins()))


def refusal(path: str) -> str | None:
    """Why ``path`` (``package.module:factory``) may not be imported; None if it may."""
    module = path.partition(":")[0]
    if is_allowed(module):
        return None
    return (f"importing module {module!r} is not allowed (it runs its code); opt in: --allow-import "
            f"{module}, or declare it in the {GROUP!r} entry-point group of an installed package")


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within it, import paths are taken as names and not resolved (nothing is imported)."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


def is_deferred() -> bool:
    return _DEFERRED.get()
