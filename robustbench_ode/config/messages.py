"""One-line error messages from pydantic's validation errors: key paths kept short, bad values
echoed through the bounded :func:`~robustbench_ode.core.preview.preview`, unknown keys answered
with a near match and the keys allowed there."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from ..core.preview import clip, preview

MESSAGE_ROOM = 200  # characters for the errors of one ValidationError; the first is always shown


def loc_text(loc: Iterable[Any]) -> str:
    """A key path for a message: each part on one line and short (keys come from the file)."""
    return ".".join(clip(p, 40) for p in map(str, loc) if not p.startswith("function-"))


def unknown_key(key: Any, allowed: list[str] | None, room: int = 150) -> str:
    """``unknown key`` with a near match and as many of the allowed keys as fit in ``room``."""
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(key, allowed, n=1) if isinstance(key, str) and len(key) < 60 \
        else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown: list[str] = []
    for i, name in enumerate(allowed):
        rest = len(allowed) - i
        if len(", ".join([*shown, name])) + len(hint) + 24 > room and rest > 1:
            return f"unknown key{hint} (allowed: {', '.join(shown)}, … {rest} more)"
        shown.append(name)
    return f"unknown key{hint} (allowed: {', '.join(shown)})"


def format_validation_error(exc: ValidationError, prefix: str = "", single: tuple[str, ...] = (),
                            allowed: Callable[[tuple], list[str] | None] | None = None) -> str:
    """One line for ``exc``'s errors (as many as fit in :data:`MESSAGE_ROOM`). ``single``: axes
    the file gave as one mapping, which the config holds as a one-entry list: their errors say
    ``model.name``, not ``model.0.name``. ``allowed(loc)``: the allowed keys of the mapping at
    ``loc`` (listed on an unknown key)."""
    parts = []
    for err in exc.errors():
        shown = err
        if err["loc"][:1] and err["loc"][0] in single and err["loc"][1:2] == (0,):
            shown = {**err, "loc": err["loc"][:1] + err["loc"][2:]}
        msg = clip(err["msg"].removeprefix("Value error, "), 200)
        if err["type"] == "extra_forbidden":
            keys = allowed(tuple(err["loc"][:-1])) if allowed is not None else None
            msg = unknown_key(err["loc"][-1], keys)
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif "input" in err and err["type"] not in ("value_error",):
            msg = f"{msg} (got {preview(err['input'])})"
        loc = clip(".".join(p for p in (prefix, loc_text(shown["loc"])) if p), 100)
        parts.append(f"{loc}: {msg}" if loc else msg)
    shown_parts = parts[:1]
    for part in parts[1:]:
        if len("; ".join([*shown_parts, part])) > MESSAGE_ROOM:
            break
        shown_parts.append(part)
    more = len(parts) - len(shown_parts)
    return "; ".join(shown_parts) + (f" (and {more} more error{'s' * (more > 1)})" if more else "")
