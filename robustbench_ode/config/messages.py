"""One-line error messages from pydantic's validation errors, with bounded previews of bad values."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError


def preview(value: object, limit: int = 60) -> str:
    """A bounded repr: never walks more than a few nodes of a container, never copies a long
    string, so an alias bomb or a 10 MB value costs nothing to echo."""
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, (bool, int, float)) or value is None:
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        text = f"a list of {len(value)}" if len(value) else "[]"
    elif isinstance(value, dict):
        keys = ", ".join(preview(k, 20) for k in list(value)[:3])
        text = f"a mapping with keys {keys}{', ...' if len(value) > 3 else ''}"
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _loc(err: dict) -> str:
    return ".".join(str(p)[:40] for p in err["loc"] if not str(p).startswith("function-"))


def format_validation_error(exc: ValidationError, prefix: str = "", single: tuple[str, ...] = (),
                            allowed: Callable[[tuple], list[str] | None] | None = None) -> str:
    """One line for (the first three of) ``exc``'s errors. ``single``: axes the file gave as one
    mapping, which the config holds as a one-entry list: their errors say ``model.name``, not
    ``model.0.name``. ``allowed(loc)``: the allowed keys of the mapping at ``loc`` (listed on an
    unknown key)."""
    parts = []
    for err in exc.errors()[:3]:
        shown = err
        if err["loc"][:1] and err["loc"][0] in single and err["loc"][1:2] == (0,):
            shown = {**err, "loc": err["loc"][:1] + err["loc"][2:]}
        msg = err["msg"].removeprefix("Value error, ")
        loc = ".".join(p for p in (prefix, _loc(shown)) if p)
        if err["type"] == "extra_forbidden":
            keys = allowed(tuple(err["loc"][:-1])) if allowed is not None else None
            msg = "unknown key" + (f" (allowed: {', '.join(keys)})" if keys else "")
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif "input" in err and err["type"] not in ("value_error",):
            msg = f"{msg} (got {preview(err['input'])})"
        parts.append(f"{loc}: {msg}"[:240] if loc else msg[:240])
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
