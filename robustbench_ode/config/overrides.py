"""``--set KEY.PATH=VALUE``: changes to a suite's YAML mapping, applied before validation.

``KEY.PATH`` is a dotted path into the mapping: mapping keys by name, list entries by index
(``test.1.steps``, ``model.0.width``). ``VALUE`` is read as YAML by the suite file's own loader
(config/loader.py, with its limits on size, values, aliases and depth): ``500`` is a number,
``[0, 1]`` a list, ``euler`` a string, ``{name: mlp}`` a mapping. The overridden mapping is then
validated exactly as a file would be, so a bad value is the file's one-line error naming its key.

The path itself must exist up to its last step, with two allowances: a key missing from a mapping
is added (a new setting, or a mapping created on the way: ``training.regularization.kinetic=1``),
and validation decides whether it is allowed; and ``dataset``, ``model`` and ``training``, which a
suite may give as one mapping instead of a list, take index 0 for that mapping (``model.0.width``
works whichever form the file uses). An index out of range, a non-number indexing a list, or any
key under a scalar is a one-line error naming the key (exit 2 on the command line).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import yaml

from ..core.errors import SuiteError
from .loader import MAX_BYTES, parse_yaml
from .messages import preview

ONE_OR_LIST = ("dataset", "model", "training")  # the axes a suite gives as one mapping or a list


def parse_override(text: str) -> tuple[str, list[str], Any]:
    """``KEY.PATH=VALUE`` as (key, path segments, YAML value)."""
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise SuiteError(f"--set {preview(text, 80)}: expected KEY.PATH=VALUE, e.g. training.iterations=500")
    path = key.split(".")
    if any(not part.strip() for part in path):
        raise SuiteError(f"--set {preview(key, 80)}: empty step in the key path")
    if len(raw) > MAX_BYTES:
        raise SuiteError(f"--set {key}: the value has {len(raw)} characters; "
                         f"at most {MAX_BYTES}")
    # the suite file's loader and its limits (an alias bomb stops after MAX_NODES values)
    value = parse_yaml(raw, f"--set {key}: the value {preview(raw, 60)}")
    return key, [p.strip() for p in path], value


def _index(segment: str) -> int | None:
    return int(segment) if segment.isdigit() else None


def _lookup(mapping: dict, segment: str) -> Any:
    """The mapping's key for ``segment``: the string itself, or the number a YAML file wrote."""
    if segment not in mapping and _index(segment) is not None and _index(segment) in mapping:
        return _index(segment)
    return segment


def set_path(data: dict, key: str, path: list[str], value: Any) -> None:
    """Set ``value`` at ``path`` in ``data`` (in place); see the module docstring for the rules."""
    node: Any = data
    for depth, segment in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[:depth]) or "the suite"
        if isinstance(node, dict) and depth == 1 and path[0] in ONE_OR_LIST and _index(segment) is not None:
            # an axis given as one mapping: that mapping is entry 0 of the axis's list
            if _index(segment) != 0:
                raise SuiteError(f"--set {key}: {where} has 1 entry (given as one mapping), so index "
                                 f"{segment} is out of range")
            if last:
                data[path[0]] = value
            continue
        if isinstance(node, dict):
            k = _lookup(node, segment)
            if last:
                node[k] = value
                return
            if k not in node:
                node[k] = {}  # a new mapping on the way; validation decides whether it is allowed
            node = node[k]
        elif isinstance(node, list):
            i = _index(segment)
            if i is None:
                raise SuiteError(f"--set {key}: {where} is a list of {len(node)}; index it with a "
                                 f"number, not {preview(segment, 40)}")
            if i >= len(node):
                raise SuiteError(f"--set {key}: {where} has {len(node)} "
                                 f"entr{'y' if len(node) == 1 else 'ies'}, so index {i} is out of range")
            if last:
                node[i] = value
                return
            node = node[i]
        else:
            raise SuiteError(f"--set {key}: {where} is {preview(node, 40)}, not a mapping or a list, so "
                             f"it has no {preview(segment, 40)}")


def apply_overrides(data: Any, overrides: Sequence[str], source: str = "suite") -> Any:
    """A copy of the loaded YAML ``data`` with each ``KEY.PATH=VALUE`` applied in order."""
    if not overrides:
        return data
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: the suite must be a YAML mapping, got {type(data).__name__}")
    out = copy.deepcopy(data)
    for text in overrides:
        key, path, value = parse_override(text)
        set_path(out, key, path, value)
    return out


def overridden_text(data: Any, source: str, overrides: Sequence[str]) -> str:
    """The suite as run, as YAML: what ``suite.yaml`` in the run folder records."""
    head = f"# {source} with --set {' --set '.join(overrides)}".replace("\n", " ")[:2000]
    return head + "\n" + yaml.safe_dump(data, sort_keys=False)
