"""Property-based: hostile suite files (the adversarial review's classes) are one-line errors.

Every example starts from a valid suite (``suites/smoke.yaml`` or a minimal one) and breaks it in
one hostile way, then runs ``validate`` in-process: exit code 2, exactly one line on stderr of at
most 300 characters, no traceback, nothing on stdout, and a few seconds at most. The classes:
type confusion, booleans for numbers, NaN/inf, huge values (numbers, strings, lists, files),
duplicates in value lists and grids, duplicate YAML keys, unicode and control characters, names
with ``.``/``..``/separators, alias bombs and cyclic aliases, deep nesting (flow and block),
hostile unknown keys, binary garbage, empty files, and paths that are not suite files.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustbench_ode import DATASETS, MODELS, cli
from robustbench_ode import config as cfg

ROOT = Path(__file__).resolve().parent.parent
SMOKE = yaml.safe_load((ROOT / "suites" / "smoke.yaml").read_text())
MINIMAL = {
    "name": "minimal",
    "dataset": {"name": "sphere2", "n_train": 16, "n_test": 8},
    "model": {"name": "ott_conv1d", "width": 2},
    "train": {"grid": [{"solver": "euler", "steps": [2]}]},
    "test": [{"solver": "euler", "steps": [2]}],
}
BASES = [SMOKE, MINIMAL]
MAX_LINE, MAX_SECONDS, EXAMPLES = 300, 5.0, 1000

# Keys a hostile unknown key must not hit by chance (fields and the factories' parameters).
KNOWN = {k for m in (cfg.SuiteConfig, cfg.DatasetConfig, cfg.ModelConfig, cfg.TrainingConfig,
                     cfg.TrainGrid, cfg.TrainEntry, cfg.TestEntry, cfg.ReferenceConfig,
                     cfg.DiagnosticsConfig, cfg.AdaptationConfig, cfg.RegularizationConfig)
         for k in m.model_fields}
KNOWN |= {k for reg in (DATASETS, MODELS) for n in reg for k in reg.meta(n).params.model_fields}
KNOWN |= {"<<"}


def _walk(doc, path=()):
    yield path, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield from _walk(v, (*path, k))


def _paths(base, test):
    return [p for p, v in _walk(base) if test(p, v)]


def _numeric(p, v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _ident(p, v):  # identifiers: the suite name, registry names
    return isinstance(v, str) and p[-1] in ("name", "solver")


PATHS = [{
    "numeric": _paths(b, _numeric),
    "ident": _paths(b, _ident),
    "dict": _paths(b, lambda p, v: isinstance(v, dict) and p),
    "list": _paths(b, lambda p, v: isinstance(v, list)),
    "scalar_list": _paths(b, lambda p, v: isinstance(v, list) and v and not isinstance(v[0], dict)),
    "entry_list": _paths(b, lambda p, v: isinstance(v, list) and v and isinstance(v[0], dict)),
} for b in BASES]

# A value the text is given in place of a marker (alias bombs, deep nesting: not data to dump).
MARK = "HOSTILE_VALUE_MARK"
# Where bombs and deep values go: the review's seeds, name and description, and a few others.
PLACES = [("train", "seeds"), ("name",), ("description",), ("dataset", "n_train"), ("model",),
          ("train", "grid", 0, "steps"), ("test",)]
TROUBLE = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\u202e", "\u200b", "\ufeff", "\u0301",
           "\U0001f600", "\u0455", "\uff53", "\n", "\r", "\t", " ", "\\", "'", '"']
RAW_BAD = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x80", "\x9f", "\ufffe"]
SEPARATED = [".", "..", "../x", "./x", "a/b", "/abs", "a\\b", "a.b", "..\\x", "a b", "", "~", "a\tb",
             "x/..", "\u2215x", ":x", "..:x", "9a:b", "a b:c", "x:"]
BAD_BYTES = [b"\x00", b"\xff", b"\x80", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]
EMPTY = [b"", b"\n", b"   \n\t\n", b"# only a comment\n", b"---\n", b"...\n", b"---\n...\n",
         b"\xef\xbb\xbf", b"null\n", b"~\n", b"{}\n", b"[]\n", b"''\n", b"0\n", b"false\n",
         b"--- \n# c\n"]
SPECIAL = ["/proc/self/mem", "/proc/self/status", "/proc/self/environ", "/dev/null", "/dev/zero",
           "/dev/urandom", "/"]


def _set(doc, path, value):
    if not path:
        return value
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _dump(doc) -> str:
    return yaml.dump(doc, Dumper=yaml.CSafeDumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=1 << 30)


def _with_text(doc, path, text: str) -> str:
    """The suite's YAML with ``text`` (YAML source) as the value at ``path``."""
    return _dump(_set(doc, path, MARK)).replace(MARK, text, 1)


def _bomb(draw) -> str:
    if draw(st.booleans()) and draw(st.booleans()):
        return "&c [0, *c]"  # an alias inside its own anchor: a cyclic list
    anchors, aliases = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    parts = ["&a0 [" + ", ".join(["0"] * aliases) + "]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * aliases) + "]" for i in range(1, anchors)]
    return "[" + ", ".join(parts) + "]"


def _deep(draw) -> str:
    depth = draw(st.one_of(st.integers(2, 60), st.integers(40, 20_000)))
    if draw(st.booleans()):
        return "[" * depth + "0" + "]" * depth
    return "{a: " * depth + "0" + "}" * depth


CLASSES = ["type_confusion", "bool_for_number", "nan_inf", "huge_number", "huge_string", "huge_list",
           "huge_file", "duplicate_value", "duplicate_entry", "duplicate_key", "unicode_value",
           "raw_control", "separator_name", "alias_bomb", "deep_flow", "deep_block", "hostile_key",
           "binary_file", "binary_insert", "empty", "not_a_file"]


@st.composite
def hostile(draw):
    """(class, what, payload): what "text"/"bytes" is a file's content, "path" a path to make."""
    kind = draw(st.sampled_from(CLASSES))
    return (kind, *_mutate(draw, kind))


def _mutate(draw, kind):
    b = draw(st.sampled_from(range(len(BASES))))
    doc, paths = copy.deepcopy(BASES[b]), PATHS[b]
    if kind == "type_confusion":
        if draw(st.booleans()):  # a mapping given a list or a scalar
            path = draw(st.sampled_from(paths["dict"]))
            value = draw(st.one_of(st.lists(st.integers(0, 9), min_size=1, max_size=3),
                                   st.integers(), st.text(max_size=8), st.none()))
        elif draw(st.booleans()):  # a scalar given a mapping or a list
            path = draw(st.sampled_from(paths["numeric"] + paths["ident"]))
            leaf = _get(doc, path)
            value = draw(st.sampled_from([{"k": leaf}, [leaf], [leaf, leaf], {}]))
        else:  # a list given a mapping or a scalar
            path = draw(st.sampled_from(paths["list"]))
            value = draw(st.one_of(st.dictionaries(st.sampled_from("abc"), st.integers(0, 3),
                                                   min_size=1, max_size=2), st.text(max_size=5)))
        return "text", _dump(_set(doc, path, value))
    if kind == "bool_for_number":
        return "text", _dump(_set(doc, draw(st.sampled_from(paths["numeric"])), draw(st.booleans())))
    if kind == "nan_inf":
        value = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        return "text", _dump(_set(doc, draw(st.sampled_from(paths["numeric"])), value))
    if kind == "huge_number":
        path = draw(st.sampled_from(paths["numeric"]))
        if draw(st.booleans()):  # digits as text: beyond Python's 4300-digit int conversion too
            digits = draw(st.integers(13, 6000))
            return "text", _with_text(doc, path, draw(st.sampled_from(["", "-"])) + "9" * digits)
        value = draw(st.one_of(st.integers(10**12, 10**60), st.integers(-10**60, -10**12),
                               st.floats(1e12, 1e308), st.floats(-1e308, -1e12)))
        return "text", _dump(_set(doc, path, value))
    if kind == "huge_string":  # megabytes would only test the size limit: see huge_file
        path = draw(st.sampled_from(paths["ident"]))
        n = draw(st.one_of(st.integers(101, 2000), st.integers(2000, 200_000)))
        return "text", _dump(_set(doc, path, draw(st.sampled_from("xz9_")) * n))
    if kind == "huge_list":
        way = draw(st.sampled_from(["tests"] * 4 + ["cells"] * 3 + ["values"]))
        if way == "tests":  # past MAX_TESTS (1000 test configurations per cell)
            path, n, first = (("test", 0, "steps") if b else ("test", 1, "steps")), 1001, 1
            doc["test"][0].pop("step_factors", None)
        elif way == "cells":  # past MAX_CELLS (10 000 cells): 3 grid values x 3334 seeds
            doc["train"]["grid"][0]["steps"] = [2, 4, 8] if b else [2, 8]
            path, n, first = ("train", "seeds"), 3334, 0
        else:  # past the loader's 20 000 values (the costliest example: about 0.3 s)
            path, n, first = ("train", "seeds"), 20_001, 0
        n += draw(st.integers(0, 30))
        return "text", _with_text(doc, path, "[" + ",".join(map(str, range(first, first + n))) + "]")
    if kind == "huge_file":  # past the 1 MiB limit: refused before it is read
        pad = draw(st.integers(1 << 20, (1 << 20) + 4096))
        return "text", _dump(_set(doc, ("description",), "d" * pad))
    if kind == "duplicate_value":
        path = draw(st.sampled_from(paths["scalar_list"]))
        values = _get(doc, path)
        values.insert(draw(st.integers(0, len(values))), draw(st.sampled_from(values)))
        return "text", _dump(doc)
    if kind == "duplicate_entry":
        if draw(st.booleans()):
            path = draw(st.sampled_from(paths["entry_list"]))
            entries = _get(doc, path)
            entries.insert(draw(st.integers(0, len(entries))), copy.deepcopy(draw(st.sampled_from(entries))))
        else:  # a model or training paired twice with the same dataset
            axis = draw(st.sampled_from(["model", "training"]))
            doc.setdefault(axis, {})["datasets"] = ["sphere2", "sphere2"]
        return "text", _dump(doc)
    if kind == "duplicate_key":
        text = _dump(doc)
        lines = text.splitlines(keepends=True)
        keyed = [i for i, line in enumerate(lines) if line.lstrip()[:1].isalpha() and ":" in line]
        way = draw(st.sampled_from(["copy_line", "append_name", "flow"]))
        if way == "copy_line":  # a key line repeated right below itself: same mapping
            i = draw(st.sampled_from(keyed))
            lines.insert(i + 1, lines[i])
            return "text", "".join(lines)
        if way == "append_name":  # the review's case: name: quick appended to a copy of a suite
            return "text", text + draw(st.sampled_from(["name: quick\n", "train: {grid: []}\n",
                                                         "test: []\n", "name: smoke\n"]))
        key = draw(st.sampled_from(["n_train", "name"]))
        return "text", _with_text(doc, ("dataset",), f"{{name: sphere2, {key}: 16, {key}: 16}}")
    if kind == "unicode_value":
        path = draw(st.sampled_from(paths["ident"]))
        leaf = _get(doc, path)
        chars = "".join(draw(st.lists(st.sampled_from(TROUBLE), min_size=1, max_size=3)))
        at = draw(st.integers(0, len(leaf)))
        return "text", _dump(_set(doc, path, leaf[:at] + chars + leaf[at:]))
    if kind == "raw_control":  # unescaped in the file: anywhere, even in a comment
        text = _dump(doc) + "# a comment\n"
        at = draw(st.integers(0, len(text)))
        return "text", text[:at] + draw(st.sampled_from(RAW_BAD)) + text[at:]
    if kind == "separator_name":
        if draw(st.booleans()):
            name = draw(st.sampled_from(SEPARATED))
        else:
            ok = st.text(st.sampled_from("abz09_-"), max_size=6)
            name = draw(ok) + draw(st.sampled_from(["/", "\\", ".", "..", " ", "\u2215"])) + draw(ok)
        path = ("name",) if draw(st.booleans()) else draw(st.sampled_from(paths["ident"]))
        return "text", _dump(_set(doc, path, name))
    if kind == "alias_bomb":
        return "text", _with_text(doc, draw(st.sampled_from(PLACES)), _bomb(draw))
    if kind == "deep_flow":
        return "text", _with_text(doc, draw(st.sampled_from(PLACES)), _deep(draw))
    if kind == "deep_block":
        depth = draw(st.integers(51, 400))
        block = "".join(" " * (i + 2) + "k:\n" for i in range(depth)) + " " * (depth + 2) + "k: 0\n"
        return "text", _with_text(doc, ("description",), "\n" + block.rstrip("\n"))
    if kind == "hostile_key":
        where = draw(st.sampled_from([()] + paths["dict"]))
        key = draw(st.one_of(
            st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
            st.integers(min_value=-5, max_value=5), st.sampled_from(["a" * 5000, "k\nk", "\x00", "null"]),
        ).filter(lambda k: k not in KNOWN))
        node = _get(doc, where)
        node[key] = draw(st.one_of(st.integers(), st.text(max_size=5), st.none()))
        return "text", _dump(doc)
    if kind == "binary_file":
        data = draw(st.binary(max_size=2000))
        at = draw(st.integers(0, len(data)))
        return "bytes", data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:]
    if kind == "binary_insert":
        data = _dump(doc).encode()
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(max_size=50))
        return "bytes", data[:at] + draw(st.sampled_from(BAD_BYTES)) + junk + data[at:]
    if kind == "empty":
        return "bytes", draw(st.sampled_from(EMPTY))
    return "path", draw(st.sampled_from(["directory", "missing", "dangling_link", "link_loop", "fifo",
                                         "sparse_2mib", "name_too_long", "nul_in_name", "not_dir_parent",
                                         *SPECIAL]))


SEEN: list[str] = []
_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def workdir():
    # short (the message names the path) and module-scoped (hypothesis reuses it across examples)
    with tempfile.TemporaryDirectory(prefix="rbh") as tmp:
        yield Path(tmp)


def _make(workdir: Path, kind: str, payload) -> str:
    path = workdir / f"s{next(_COUNTER)}.yaml"
    if kind == "text":
        path.write_text(payload, encoding="utf-8")
    elif kind == "bytes":
        path.write_bytes(payload)
    elif payload == "directory":
        path.mkdir()
    elif payload == "missing":
        pass
    elif payload == "dangling_link":
        path.symlink_to(workdir / "nowhere")
    elif payload == "link_loop":
        path.symlink_to(path)
    elif payload == "fifo":
        os.mkfifo(path)  # opening it to read would wait for a writer: never opened
    elif payload == "sparse_2mib":
        with open(path, "wb") as f:
            f.truncate(2 << 20)
    elif payload == "name_too_long":
        return str(workdir / ("n" * 5000))
    elif payload == "nul_in_name":
        return str(path) + "\x00.yaml"
    elif payload == "not_dir_parent":
        path.write_text("name: x\n")
        return str(path / "suite.yaml")
    else:
        return payload  # a special file: /proc, /dev, /
    return str(path)


@settings(max_examples=EXAMPLES, deadline=MAX_SECONDS * 1000,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(case=hostile())
def test_hostile_suite_is_one_line_exit_2(case, workdir, capsys):
    cls, kind, payload = case
    path = _make(workdir, kind, payload)
    capsys.readouterr()
    start = time.perf_counter()
    code = cli.main(["validate", path])
    seconds = time.perf_counter() - start
    out, err = capsys.readouterr()
    shown = payload if kind == "path" else repr(payload[:300])
    assert code == 2, f"accepted ({cls}): {shown}\nstdout: {out}"
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("robustbench-ode: error: "), err
    assert len(err) - 1 <= MAX_LINE, f"{len(err) - 1} characters: {err}"
    assert out == ""
    assert seconds < MAX_SECONDS, f"{seconds:.1f} s for {cls}: {shown}"
    SEEN.append(cls)


def test_hostile_ran_enough_examples():
    # runs after the property test in file order: at least EXAMPLES hostile suites per run
    assert len(SEEN) >= EXAMPLES, len(SEEN)
    assert set(SEEN) == set(CLASSES), set(CLASSES) - set(SEEN)
