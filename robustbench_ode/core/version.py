"""The package version: part of every cell key (a new version may change what a cell computes).

One source: the ``version`` of pyproject.toml, the only place it is written. An installed package
reads it from its metadata (``importlib.metadata``, which pip wrote from pyproject.toml); a source
tree that is imported without being installed (``PYTHONPATH=checkout``) reads the pyproject.toml
beside the package, so both give the same string and the same cell keys. ``tests/test_discoverability.py``
checks that the three agree.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from .errors import SuiteError
from .files import read_text

DISTRIBUTION = "robustbench_ode"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def pyproject_version(path: Path = PYPROJECT) -> str | None:
    """The ``version`` of the ``[project]`` table of a pyproject.toml (None: no such file or key).
    A regular expression, not tomllib: Python 3.10 (which the package supports) has no tomllib,
    and the line is one the project writes itself."""
    try:
        text = read_text(path, 1 << 20, "pyproject.toml")  # bounded (tests/test_bounded_reads.py)
    except SuiteError:
        return None
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.M) if project else None
    return found.group(1) if found else None


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return pyproject_version() or "0+unknown"


__version__ = _version()
