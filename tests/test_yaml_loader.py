"""The bounded YAML loader (config/loader.py) and the bounded preview (core/preview.py),
directly (both loader builds: libyaml's events and the all-Python fallback)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import yaml

from robustbench_ode.config import loader as yaml_loader
from robustbench_ode.config.loader import MAX_DEPTH, MAX_NODES, load_yaml, parse_yaml
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.core.preview import clip, preview

LOADERS = [pytest.param(yaml_loader._PyLoader, id="python")]
if yaml_loader.CParser is not None:
    LOADERS.append(pytest.param(yaml_loader._CLoader, id="libyaml"))


@pytest.fixture(params=LOADERS)
def loader(request, monkeypatch):
    monkeypatch.setattr(yaml_loader, "_Loader", request.param)
    return request.param


def _bomb(anchors=10, aliases=9):
    parts = ["&a0 [" + ", ".join(["0"] * aliases) + "]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * aliases) + "]" for i in range(1, anchors)]
    return "[" + ", ".join(parts) + "]"


@pytest.mark.parametrize("text, expected", [
    ("name: a\nseeds: [0]\nname: b\n", "line 3: key 'name' given twice in one mapping (first on line 1)"),
    ("a: {x: 1, y: 2, x: 3}\n", "key 'x' given twice"),
    ("- {solver: euler}\n- {solver: rk4, solver: euler}\n", "line 2: key 'solver' given twice"),
    (f"seeds: {_bomb()}\n", f"more than {MAX_NODES} values (aliases expanded)"),
    (f"description: {_bomb(12, 12)}\n", f"more than {MAX_NODES} values"),
    ("a: &x [0, *x]\n", "alias *x is inside its own anchor"),
    ("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH, f"nested more than {MAX_DEPTH} levels"),  # + the root
    ("a: " + "[" * 20_000 + "]" * 20_000, f"nested more than {MAX_DEPTH} levels"),
    ("a: " + "{b: " * 3000 + "0" + "}" * 3000, f"nested more than {MAX_DEPTH} levels"),
    ("".join(" " * i + "k:\n" for i in range(MAX_DEPTH + 2)), f"nested more than {MAX_DEPTH} levels"),
    ("a: [1, 2\n", "not valid YAML (line"),
    ("a: *nowhere\n", "undefined alias"),
    ("a: 2024-13-45\n", "cannot read this timestamp value"),
    ("a: " + "9" * 5000 + "\n", "cannot read this int value"),
    ("a: !!python/object:os.system x\n", "not valid YAML"),
    ("a: b\x07\n", "character U+0007 is not allowed"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
])
def test_hostile_yaml_is_one_line(loader, text, expected):
    start = time.perf_counter()
    with pytest.raises(SuiteError) as err:
        parse_yaml(text, "s.yaml")
    message = str(err.value)
    assert time.perf_counter() - start < 2
    assert message.startswith("s.yaml: ") and expected in message, message
    assert "\n" not in message and len(message) < 200


@pytest.mark.parametrize("text", [
    "a: 1\nb: [x, y, {c: d}]\n",
    "base: &b {solver: euler, steps: [2]}\ngrid: [*b, {<<: *b, steps: [4]}]\n",  # merge may override
    "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n",  # the root mapping is a level
    "seeds: [" + ", ".join(map(str, range(1000))) + "]\n",
    "\ufeffa: 1\n",
])
def test_good_yaml_reads_as_safe_load_reads_it(loader, text):
    assert parse_yaml(text) == yaml.safe_load(text.removeprefix("\ufeff"))


def test_the_value_limit_is_exact():
    # the root mapping, its key and the list are 3 values: MAX_NODES - 3 items fit, one more does not
    fits = "s: [" + ", ".join(["0"] * (MAX_NODES - 3)) + "]\n"
    assert len(parse_yaml(fits)["s"]) == MAX_NODES - 3
    with pytest.raises(SuiteError, match=f"more than {MAX_NODES} values"):
        parse_yaml(fits.replace("[", "[0, ", 1))


def test_shipped_suites_read_as_safe_load_reads_them(loader):
    for path in sorted((Path(__file__).parent.parent / "suites").glob("*.yaml")):
        assert load_yaml(path) == yaml.safe_load(path.read_text()), path


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: None, "no such suite file"),
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: p.symlink_to(p), "cannot read it"),
    (lambda p: p.write_bytes(b""), "empty suite file"),
    (lambda p: p.write_bytes(b"# nothing\n\n"), "no YAML document"),
    (lambda p: p.write_bytes(b"name: a\x00b\n"), "NUL byte at offset 7"),
    (lambda p: p.write_bytes(b"name: caf\xe9\n"), "not UTF-8 text (byte 0xe9 at offset 9)"),
    (lambda p: os.truncate(p.write_bytes(b"") or p, (1 << 20) + 1), "bytes; a suite file has at most"),
])
def test_files_that_are_not_suites(tmp_path, make, expected):
    path = tmp_path / "s.yaml"
    make(path)
    with pytest.raises(SuiteError, match=re.escape(expected)):
        load_yaml(path)


@pytest.mark.parametrize("path, expected", [("/proc/self/mem", "pseudo-file"), ("/dev/zero", "regular file"),
                                            ("/", "is a directory")])
def test_special_paths(path, expected):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(SuiteError, match=expected):
        load_yaml(path)


def test_preview_is_bounded_whatever_the_value():
    level = [0] * 9
    for _ in range(12):  # 9**12 leaves: the full repr would never finish
        level = [level] * 9
    cyclic: list = [1]
    cyclic.append(cyclic)
    start = time.perf_counter()
    for value in (level, cyclic, "x" * 10_000_000, 10 ** 100_000, {"k" * 1000: level}, b"\x00" * 10**7,
                  "a\nb\x07\u2028c" * 50):
        text = preview(value)
        assert len(text) <= 90 and text.isprintable(), text
    assert time.perf_counter() - start < 1
    assert preview([1, "a", None]) == "[1, 'a', None]"
    assert preview("x" * 100, limit=10).endswith("… (100 chars)")


def test_clip_is_one_short_line_whatever_the_text():
    for text in ("a\nb" * 1000, "\x00" * 5000, "\u2028\u202e" * 300, "x" * 10_000):
        out = clip(text, 100)
        assert len(out) <= 101 and out.isprintable(), out
