"""A bounded ``repr`` for echoing bad input in one-line error messages (and :func:`clip` for plain
text: messages, paths).

``preview(value)`` visits at most :data:`MAX_NODES` values and stops as soon as it has ``limit``
characters, so an alias bomb (a list whose full repr has billions of characters), a cyclic list,
a 10 MB string or a 100 000-digit integer costs next to nothing. The result is one line: control
and other non-printable characters are escaped the way ``repr`` escapes them.
"""

from __future__ import annotations

MAX_NODES = 64  # values visited per preview, whatever their nesting
MAX_DEPTH = 8  # nesting shown; deeper containers print as [...] / {...}
ELLIPSIS = "…"


class _Full(Exception):
    """The budget is spent: stop walking."""


class _Writer:
    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.room = limit
        self.nodes = MAX_NODES

    def put(self, text: str) -> None:
        if len(text) > self.room:
            self.parts.append(text[: max(self.room, 0)])
            self.room = 0
            raise _Full
        self.parts.append(text)
        self.room -= len(text)

    def visit(self) -> None:
        self.nodes -= 1
        if self.nodes < 0:
            raise _Full


def _str(s: str, room: int) -> str:
    # repr of a prefix only: never the whole of a long string
    return repr(s[: room + 2]) if len(s) > room + 2 else repr(s)


def _scalar(value: object, room: int) -> str:
    if isinstance(value, str):
        return _str(value, room)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        # repr of an int is quadratic in its digits and refused past 4300 of them
        return repr(value) if value.bit_length() <= 256 else f"<{value.bit_length()}-bit integer>"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return repr(bytes(value[: room + 2]))
    text = repr(value)  # dates, timestamps and the like: short
    return text if text.isprintable() else repr(text)


def _walk(w: _Writer, value: object, depth: int) -> None:
    w.visit()
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        if isinstance(value, dict):
            opening, closing = "{", "}"
        elif isinstance(value, list):
            opening, closing = "[", "]"
        elif isinstance(value, tuple):
            opening, closing = "(", ")"
        else:
            opening, closing = "{", "}"
        if depth >= MAX_DEPTH:
            w.put(f"{opening}...{closing}" if value else f"{opening}{closing}")
            return
        w.put(opening)
        items = value.items() if isinstance(value, dict) else value
        for i, item in enumerate(items):
            if i:
                w.put(", ")
            if isinstance(value, dict):
                key, val = item
                _walk(w, key, depth + 1)
                w.put(": ")
                _walk(w, val, depth + 1)
            else:
                _walk(w, item, depth + 1)
        w.put(closing)
        return
    w.put(_scalar(value, w.room))


def preview(value: object, limit: int = 60) -> str:
    """At most ``limit`` characters (plus a closing ``…`` and, for long strings, their length)
    of ``repr(value)``, computed without building the full repr."""
    w = _Writer(limit)
    try:
        _walk(w, value, 0)
    except _Full:
        text = "".join(w.parts)
        if isinstance(value, str):
            return f"{text}{ELLIPSIS} ({len(value)} chars)"
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            return f"{text}{ELLIPSIS} ({len(value)} items)"
        return text + ELLIPSIS
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps the walk shallow
        return f"<{type(value).__name__}>"
    return "".join(w.parts)


def clip(text: object, limit: int = 120) -> str:
    """Plain text (an error message, a path) on one line and at most ``limit`` + 1 characters:
    non-printable characters escaped as ``repr`` escapes them, then the tail cut (``…``)."""
    text = str(text)
    if len(text) > 4 * limit:
        text = text[: 4 * limit]  # never escape more than can be shown
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > limit:
        text = text[:limit] + ELLIPSIS
    return text
