"""Reading a suite file: YAML into plain Python values, every file problem a one-line error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..core.errors import SuiteError


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SuiteError(f"{source}: not valid YAML{where}: {problem}") from None


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not a text file") from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    return parse_yaml(text, str(path))
