"""The strict rules a suite follows beyond its values' types (:mod:`robustbench_ode.core.types`
already refuses booleans and strings for numbers, and repeated values in one list):

- **No configuration twice.** Two entries of ``train.grid`` or ``test`` that give the same solver
  the same value of the same kind (``steps: [4]`` in both) would train or test one configuration
  twice: :func:`repeated_point` names both entries.
- **No booleans or text for numbers, anywhere.** The parameters of a factory named by import path
  are validated against its signature's annotations, which may be lax (``int`` reads ``true`` as 1
  and ``"4"`` as 4): :func:`coerced` finds, after validation, a boolean (or a string) in the file
  whose validated value is not one, in one walk over the file's data and the suite's dump.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.preview import preview


def repeated_point(entries: Iterable[Any], kinds: tuple[str, ...], where: str) -> str | None:
    """Why two entries of one grid list (train.grid, test) repeat a point: the same solver with the
    same value of the same kind (``steps``, ``tol``, ...) and the same step-size control (a test
    entry's ``control``: batch and per-sample control at one tolerance are two points); None if
    none does. A gridless entry (no values at all) is its own point."""
    seen: dict[tuple, int] = {}
    for i, entry in enumerate(entries):
        solver = (entry.solver, getattr(entry, "control", None) or "batch")  # train entries have none
        points = [(solver, k, v) for k in kinds for v in getattr(entry, k, None) or []]
        for point in points or [(solver, None, None)]:
            if point in seen and seen[point] != i:
                what = f" at {point[1]} {preview(point[2], 20)}" if point[1] else ""
                control = f" ({point[0][1]} control)" if point[0][1] != "batch" else ""
                return (f"{where}.{i}: solver {preview(point[0][0], 30)}{what}{control} is also in "
                        f"{where}.{seen[point]}; give each configuration once")
            seen.setdefault(point, i)
    return None


def coerced(raw: Any, validated: Any, kind: type, path: tuple = ()) -> tuple | None:
    """The key path of the first ``kind`` value in ``raw`` (the file's data) whose counterpart in
    ``validated`` (the config's dump) is not one: a ``true`` read as 1 (``kind=bool``, the Python
    dump), a ``"4"`` read as 4 (``kind=str``, the JSON dump, where enums and paths are text)."""
    stack = [(raw, validated, path)]
    while stack:
        r, v, p = stack.pop()
        if isinstance(r, kind):
            if not isinstance(v, kind):
                return p
        elif isinstance(r, dict) and isinstance(v, list) and len(v) == 1:
            stack.append((r, v[0], p))  # an axis given as one mapping, held as a one-entry list
        elif isinstance(r, dict) and isinstance(v, dict):
            stack.extend((r[k], v[k], (*p, k)) for k in reversed(list(r)) if k in v)
        elif isinstance(r, list) and isinstance(v, (list, tuple)) and len(r) == len(v):
            stack.extend((a, b, (*p, i)) for i, (a, b) in reversed(list(enumerate(zip(r, v)))))
    return None
