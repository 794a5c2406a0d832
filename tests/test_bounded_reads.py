"""Every file the package reads goes through core/files.py's bounded reader (``open_regular``,
``read_bytes``, ``read_text``: a regular file, a size cap, an open that never blocks on a FIFO).

An ast scan of the package flags any read that bypasses it: ``open(...)`` for reading,
``Path.read_text/read_bytes``, ``gzip.open``, and ``torch.load``/``json.load``/``pd.read_csv``/
``np.load``/``pickle.load`` given anything but an in-memory buffer or a file that ``open_regular``
opened. The few deliberate exceptions are listed with their reason.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

import robustbench_ode
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.core.files import open_regular, read_bytes

PACKAGE = Path(robustbench_ode.__file__).parent
READER = PACKAGE / "core" / "files.py"
# (module, line text) -> why it may read directly
ALLOWED = {
    ("run/threads.py", 'with open("/proc/stat") as fh:'):
        "a kernel counter file read line by line; a pseudo-file the bounded reader refuses by design",
}
LOADERS = {"load", "read_csv", "read_json", "read_parquet", "safe_load", "loads_file"}
BUFFERS = {"StringIO", "BytesIO", "open_regular"}


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _read_mode(call: ast.Call) -> bool:
    modes = [k.value for k in call.keywords if k.arg == "mode"]
    mode = call.args[1] if len(call.args) > 1 else modes[0] if modes else None
    if mode is None:
        return True
    return not (isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+"))


def bypasses(source: str) -> list[tuple[int, str]]:
    """(line, why) for each read in ``source`` that does not go through the bounded reader."""
    tree = ast.parse(source)
    opened = {item.optional_vars.id for node in ast.walk(tree) if isinstance(node, ast.With)
              for item in node.items if isinstance(item.context_expr, ast.Call)
              and _name(item.context_expr.func) == "open_regular"
              and isinstance(item.optional_vars, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, name = node.func, _name(node.func)
        owner = _name(func.value) if isinstance(func, ast.Attribute) else ""
        if isinstance(func, ast.Name) and name == "open" and _read_mode(node):
            found.append((node.lineno, "open() for reading"))
        elif isinstance(func, ast.Attribute) and name in ("read_text", "read_bytes"):
            found.append((node.lineno, f".{name}()"))
        elif isinstance(func, ast.Attribute) and name == "open" and (owner in ("gzip", "io", "bz2", "lzma")
                                                                      or _read_mode(node)) and owner != "os":
            found.append((node.lineno, f"{owner}.open()"))
        elif isinstance(func, ast.Attribute) and name in LOADERS and owner in ("torch", "json", "pd", "np",
                                                                                "numpy", "pickle", "yaml"):
            first = node.args[0] if node.args else None
            ok = (isinstance(first, ast.Call) and _name(first.func) in BUFFERS) or (
                isinstance(first, ast.Name) and first.id in opened)
            if not ok:
                found.append((node.lineno, f"{owner}.{name}() of a path"))
    return found


def _package_bypasses() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == READER:
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        for line, why in bypasses(path.read_text(encoding="utf-8")):
            if (rel, lines[line - 1].strip()) not in ALLOWED:
                out.append(f"{rel}:{line}: {why}: {lines[line - 1].strip()}")
    return out


def test_no_read_in_the_package_bypasses_the_bounded_reader():
    assert _package_bypasses() == []


@pytest.mark.parametrize("code", [
    "open(p)", "open(p, 'rb')", "p.read_text()", "Path(p).read_bytes()", "gzip.open(p)",
    "torch.load(p, weights_only=True)", "json.load(open(p))", "pd.read_csv(p)", "np.load(p)",
    "with open(p) as f:\n    json.load(f)",
])
def test_the_scan_catches_each_kind_of_bypass(code):
    assert bypasses(code)


@pytest.mark.parametrize("code", [
    "open(p, 'w')", "pd.read_csv(io.StringIO(text))", "with open_regular(p, 10) as f:\n    torch.load(f)",
    "os.open(p, os.O_WRONLY)",
])
def test_the_scan_passes_bounded_reads_and_writes(code):
    assert not bypasses(code)


@pytest.fixture
def hostile(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2000)
    return {"fifo": fifo, "dev_zero": zero, "too_large": big, "directory": tmp_path}


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "too_large", "directory"])
@pytest.mark.parametrize("reader", [open_regular, read_bytes])
def test_the_reader_refuses_what_is_not_a_small_regular_file_without_blocking(hostile, kind, reader):
    with pytest.raises(SuiteError) as exc:
        reader(hostile[kind], 1000, "manifest")
    assert "\n" not in str(exc.value) and str(hostile[kind]) in str(exc.value)
