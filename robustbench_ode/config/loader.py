"""Reading a suite file: PyYAML's safe loader with the limits a hostile file needs.

:func:`load_yaml` reads a path, :func:`parse_yaml` a text; both return the plain Python data
(dicts, lists, scalars) or raise :class:`~robustbench_ode.core.errors.SuiteError` with one line that
names the file, the line and the rule broken. On top of :class:`yaml.SafeLoader`:

- a key given twice in one mapping is an error (YAML's "last one wins" would silently drop the
  first: ``name: quick`` appended to a copy of a suite renamed it). Keys merged in with ``<<``
  may be overridden, as YAML's merge key intends;
- at most :data:`MAX_NODES` values, counted with aliases expanded (an alias counts as everything
  its anchor holds), and at most :data:`MAX_ALIASES` aliases: ten anchors of nine aliases each
  (a "billion laughs") stop after a few thousand nodes instead of expanding to 9**10 values
  downstream. An alias inside its own anchor (a cyclic structure) is refused;
- at most :data:`MAX_DEPTH` levels of nesting, checked while composing, before the recursion
  of the composer and of every consumer can overflow the stack;
- the file must be a regular file of at most :data:`MAX_BYTES` bytes, UTF-8 text without NUL
  bytes, and not a ``/proc`` or ``/sys`` pseudo-file (their sizes lie and reads can block).

The limits are far above any real suite: the largest in ``suites/`` has 1.8 kB, a few hundred
values and 5 levels; a suite at the cell limit (10 000 seeds) has about 10 100 values.
"""

from __future__ import annotations

import os

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode
from yaml.resolver import Resolver

from ..core.errors import SuiteError
from ..core.files import read_text, show_path
from ..core.preview import clip, preview

MAX_BYTES = 1 << 20  # 1 MiB
MAX_NODES = 20_000  # values, aliases expanded
MAX_ALIASES = 1_000  # per document
MAX_DEPTH = 50  # nesting levels
_MERGE = "tag:yaml.org,2002:merge"


class _LimitError(ComposerError):
    """A broken loader rule (a limit, a duplicate key): reported as "line N: problem"."""


class _DuplicateKeyError(ConstructorError):
    """A key given twice in one mapping."""


class _Rules:
    """The loader's rules, over PyYAML's Composer and SafeConstructor: counts what it composes
    and refuses duplicate keys."""

    def _start_counting(self) -> None:
        self._nodes = 0  # values composed so far, aliases expanded
        self._aliases = 0
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(anchored node) -> its expanded size

    def fetch_flow_collection_start(self, TokenClass):  # noqa: N803 - PyYAML's name
        # Python scanner only: [[[[... is refused by the scanner already; the composer would see
        # it only after the look-ahead for simple keys (quadratic in the nesting) ran over it
        if self.flow_level >= MAX_DEPTH:
            raise _LimitError(None, None, f"nested more than {MAX_DEPTH} levels deep; at most "
                              f"{MAX_DEPTH}", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def _count(self, n: int, mark) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise _LimitError(None, None, f"more than {MAX_NODES} values (aliases expanded); "
                              f"a suite holds at most {MAX_NODES}", mark)

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _LimitError(None, None, f"more than {MAX_ALIASES} aliases; at most "
                                  f"{MAX_ALIASES} per file", event.start_mark)
            node = super().compose_node(parent, index)  # the anchored node (or undefined alias)
            size = self._sizes.get(id(node))
            if size is None:  # its anchor is still open: the alias is inside it
                raise _LimitError(None, None, f"alias *{clip(event.anchor, 40)} is inside its own "
                                  "anchor (a cyclic structure); not allowed", event.start_mark)
            self._count(size, event.start_mark)
            return node
        event = self.peek_event()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _LimitError(None, None, f"nested more than {MAX_DEPTH} levels deep; at most "
                              f"{MAX_DEPTH}", event.start_mark)
        before = self._nodes
        self._count(1, event.start_mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if event.anchor is not None:
            self._sizes[id(node)] = self._nodes - before
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen: dict[object, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                    continue  # unhashable keys: SafeConstructor's own error; << : merged keys
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKeyError(
                        None, None, f"key {preview(key, 40)} given twice in one mapping (first on "
                        f"line {seen[key]}); give each key once", key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            # e.g. 2024-13-45 (a bad date), !!int x, an integer of more than 4300 digits
            raise ConstructorError(None, None, f"cannot read this {node.tag.rsplit(':', 1)[-1]} "
                                   f"value: {clip(exc, 80)}", node.start_mark) from None


class _PyLoader(_Rules, yaml.SafeLoader):
    """All in Python: PyYAML's SafeLoader with the rules."""

    def __init__(self, text: str) -> None:
        yaml.SafeLoader.__init__(self, text)
        self._start_counting()


try:  # libyaml's parser, when PyYAML was built with it: the events in C, 5x faster
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    CParser = None

if CParser is not None:
    class _CLoader(_Rules, Composer, CParser, SafeConstructor, Resolver):
        """libyaml's events; PyYAML's Python composer (so that the rules see every node) and
        safe constructor. libyaml also caps flow nesting itself."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)
            self._start_counting()

_Loader = _CLoader if CParser is not None else _PyLoader


def _line(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    if isinstance(exc, (_LimitError, _DuplicateKeyError)):
        return f"line {exc.problem_mark.line + 1}: {exc.problem}"
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else 0
        return (f"not valid YAML (line {line}): character U+{char:04X} is not allowed in YAML "
                "(control characters other than tab and newline)")
    if isinstance(exc, yaml.MarkedYAMLError) and "maximum nesting depth" in str(exc.problem):
        # libyaml's own cap (1000 levels) can trip while it looks ahead, before the composer's
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        return f"{where}nested more than {MAX_DEPTH} levels deep; at most {MAX_DEPTH}"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" ({_line(mark)})" if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        return f"not valid YAML{where}: {clip(problem, 100)}"
    return f"not valid YAML: {clip(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 100)}"


def _parse(text: str, source: str) -> tuple[bool, object]:
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here already
        node = loader.get_single_node()
        return (False, None) if node is None else (True, loader.construct_document(node))
    except yaml.YAMLError as exc:
        raise SuiteError(f"{source}: {_yaml_problem(exc, text)}") from None
    except RecursionError:  # the depth limit should make this unreachable
        raise SuiteError(f"{source}: nested too deeply; at most {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_yaml(text: str, source: str = "suite") -> object:
    """The data of one YAML document (None for a text with no document: blank or comments only).
    Any problem is a :class:`SuiteError` starting with ``source``."""
    return _parse(text, source)[1]


def load_yaml_text(path: str | os.PathLike) -> tuple[object, str]:
    """The data of the YAML file at ``path`` (see the module docstring for the rules) and the
    text it was read from (read once: what a run copies into its folder is what it validated).
    A file with no YAML document in it (only comments or blank lines) is an error too."""
    source = show_path(path)
    text = read_text(path, MAX_BYTES, "suite file")
    found, data = _parse(text, source)
    if not found:
        raise SuiteError(f"{source}: no YAML document in it (only comments or blank lines)")
    return data, text


def load_yaml(path: str | os.PathLike) -> object:
    """The data of the YAML file at ``path`` (:func:`load_yaml_text` without the text)."""
    return load_yaml_text(path)[0]
