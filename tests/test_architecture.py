"""The package's shape, read from its own source with ``ast``: no import cycle, no private name
imported across modules, folders that import only downward in the pipeline's order, function-level
imports of the package's own modules only where a comment says which cycle or optional dependency
they avoid, few top-level modules, none too long; and the command line's light commands never
import torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "robustbench_ode"
# The pipeline, bottom to top: a module may import from its own layer and the ones before it.
LAYERS = ["core", "solvers", "datasets", "models", "config", "training", "diagnostics", "harness",
          "outputs", "run", "studies", "<top>"]
MAX_TOP_MODULES, MAX_LINES, MAX_LAZY = 8, 400, 5


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


MODULES = _modules()


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and MODULES[module].name != "__init__.py"
                           and parts[1] not in LAYERS):
        return LAYERS.index("<top>")
    return LAYERS.index(parts[1])


def _target(module: str, node: ast.ImportFrom | ast.Import) -> list[tuple[str, str | None]]:
    """(imported module, imported name) pairs, for imports of the package's own modules."""
    out = []
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names if a.name.split(".")[0] == "robustbench_ode"]
    if node.level:
        base = module.split(".")
        if MODULES[module].name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "robustbench_ode":
        return []
    for alias in node.names:
        full = f"{target}.{alias.name}"
        out.append((full, None) if full in MODULES else (target, alias.name))
    return out


def _imports():
    """Every package-internal import: (module, target, name, function-level?, line, comment)."""
    found = []
    for module, path in MODULES.items():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            q, inside, typing_only = node, False, False
            while q in parents:
                q = parents[q]
                if isinstance(q, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    inside = True
                if isinstance(q, ast.If) and "TYPE_CHECKING" in ast.unparse(q.test):
                    typing_only = True
            comment = lines[node.lineno - 1].partition("#")[2]
            for target, name in _target(module, node):
                found.append((module, target, name, inside, typing_only, node.lineno, comment))
    return found


IMPORTS = _imports()


def test_no_import_cycle():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, target, _, inside, typing_only, *_ in IMPORTS:
        if not inside and not typing_only and target in MODULES and target != module:
            graph[module].add(target)
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt):] + [node, nxt] if nxt in stack else [node, nxt])
                return True
            if nxt not in state and visit(nxt, stack + [node]):
                return True
        state[node] = 2
        return False

    sys.setrecursionlimit(10_000)
    assert not any(visit(m, []) for m in sorted(graph) if m not in state), " -> ".join(cycle)


def test_no_private_name_imported_from_another_module():
    private = [f"{m}:{line} imports {t}.{n}" for m, t, n, _, _, line, _ in IMPORTS
               if n and n.startswith("_") and not n.startswith("__") and t != m]
    assert not private, private


def test_folders_import_only_downward():
    upward = [f"{m}:{line} ({LAYERS[_layer(m)]}) imports {t} ({LAYERS[_layer(t)]})"
              for m, t, _, _, _, line, _ in IMPORTS
              if t in MODULES and _layer(t) > _layer(m)]
    assert not upward, upward


def test_function_level_imports_name_what_they_avoid():
    lazy = [(m, t, line, comment) for m, t, _, inside, _, line, comment in IMPORTS if inside]
    unexplained = [f"{m}:{line} -> {t}" for m, t, line, comment in lazy if not comment.strip()]
    assert not unexplained, unexplained
    assert len({(m, line) for m, _, line, _ in lazy}) <= MAX_LAZY, lazy


def test_few_top_level_modules_and_none_too_long():
    top = [m for m, p in MODULES.items() if m.count(".") == 1 and p.name != "__init__.py"]
    assert len(top) <= MAX_TOP_MODULES, top
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_every_layer_is_a_folder_of_the_package():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(LAYERS) - {"<top>"}, folders


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["validate", "suites/smoke.yaml"],
                                  ["validate", "suites/smoke.yaml", "--set", "training.iterations=5"]])
def test_light_commands_never_import_torch_or_pandas(argv):
    code = ("import sys, runpy; sys.argv = ['robustbench-ode', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('robustbench_ode', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "heavy = [m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=PACKAGE.parent, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


MAX_FUNCTION_LINES = 80
LONG_FUNCTION_EXCEPTIONS: set[str] = set()  # none: name one here only with an issue that removes it


def _functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{path.relative_to(PACKAGE).as_posix()}::{node.name}", node


def test_no_function_is_longer_than_80_lines():
    long = {name: node.end_lineno - node.lineno + 1 for name, node in _functions()
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES}
    assert set(long) <= LONG_FUNCTION_EXCEPTIONS, long


def _calls(name: str) -> list[str]:
    """The package's modules::functions that call ``name`` (a function or a method)."""
    out = []
    for where, node in _functions():
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                f = sub.func
                called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                if called == name:
                    out.append(where)
    return sorted(set(out))


def test_identity_columns_and_the_test_grid_are_built_in_one_place_each():
    # identity(): the columns schema.CELL_COLUMNS names; grid_points(): a trained model's test grid
    assert set(_calls("identity")) <= {"harness/cell.py::columns", "benchmarking.py::_benchmark_one"}, \
        _calls("identity")
    assert set(_calls("grid_points")) <= {"harness/cell.py::grid", "benchmarking.py::_benchmark_one",
                                          "harness/cost.py::cell_points"}, _calls("grid_points")
    literal = [where for where, node in _functions() for sub in ast.walk(node)
               if isinstance(sub, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "train_tol"
                                                    for k in sub.keys)]
    assert set(literal) <= {"harness/rows.py::identity"}, literal


def test_the_device_is_resolved_in_one_function():
    auto = [where for where, node in _functions() for sub in ast.walk(node)
            if isinstance(sub, ast.Compare) and "device" in ast.unparse(sub.left)
            and any(isinstance(c, ast.Constant) and c.value == "auto" for c in sub.comparators)]
    assert set(auto) <= {"core/context.py::resolve_device"}, auto  # (name == "auto" there)


def test_the_pipeline_and_the_studies_write_through_logging_not_print():
    """The package's output goes through ``logging`` (core/console.py: -q / -v); ``print`` stays
    where a command writes its own result or the one-line error (cli.py, commands.py, the cost
    warning of ``validate``, core/console.py itself)."""
    layers = ("training/", "harness/execution", "outputs/", "run/", "studies/")
    printing = [where for where in _calls("print") if where.startswith(layers)]
    assert not printing, printing
