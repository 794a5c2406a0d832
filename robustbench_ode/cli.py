"""Command line: ``python -m robustbench_ode {list,validate,run}`` (alias ``robustbench-ode``).

Bad input (a bad suite file, an unknown name, a bad option) prints one line naming the problem
and exits with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import SuiteError, load_suite

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _list(args: argparse.Namespace) -> int:
    from . import DATASETS, MODELS, SOLVERS

    registries = {"solvers": SOLVERS, "models": MODELS, "datasets": DATASETS}
    for axis in [args.axis] if args.axis else list(registries):
        reg = registries[axis]
        entries = reg.entries(args.pattern)
        print(f"{axis}:")
        width = max((len(e.name) for e in entries), default=0)
        for e in entries:
            print(f"  {e.name:<{width}}  {e.description}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .cell import cells, test_points

    suite = load_suite(args.suite)
    todo = cells(suite)
    n_tests = sum(len(test_points(suite, c)) for c in todo)
    print(f"{args.suite}: ok: suite {suite.name!r}, {len(todo)} cells, {n_tests} test rows")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .runner import run_suite

    suite = load_suite(args.suite)
    out = Path(args.out) if args.out else Path("results") / suite.name
    report = run_suite(suite, out, device=args.device, progress=not args.no_progress,
                       suite_text=Path(args.suite).read_text())
    failed = report.failed
    print(f"wrote {out}/results.csv ({sum(len(r.rows) for r in report.results)} rows, "
          f"{len(report.results)} cells, {len(failed)} with failures)")
    for res in failed:
        bad = [r for r in res.rows if r["status"] != "ok"]
        print(f"  {res.cell.label()}: training {res.status.value} {res.message} "
              f"{len(bad)} failed test rows".rstrip())
    return 0


def _critical(args: argparse.Namespace) -> int:
    import pandas as pd

    from .critical import adapted_vs_critical, critical_steps
    from .tables import read_results

    for path in filter(None, [args.results, args.adapted]):
        if not Path(path).is_file():
            raise SuiteError(f"{path}: no such results file")
    table = critical_steps(read_results(Path(args.results)), tol=args.tol)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False) if not table.empty else "no swept train step counts")
        if args.adapted:
            print(adapted_vs_critical(read_results(Path(args.adapted)), table).to_string(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="robustbench-ode", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("list", help="list registered solvers, models or datasets")
    p.add_argument("axis", nargs="?", choices=["solvers", "models", "datasets"])
    p.add_argument("--pattern", default="*", help="glob filter on names, e.g. 'rk*'")
    p.set_defaults(func=_list)
    p = sub.add_parser("validate", help="check a suite file without running it")
    p.add_argument("suite")
    p.set_defaults(func=_validate)
    p = sub.add_parser("run", help="train and test every cell of a suite")
    p.add_argument("suite")
    p.add_argument("--out", help="output directory (default results/<suite name>)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
    p = sub.add_parser("critical", help="critical step count from a sweep's results.csv")
    p.add_argument("results", help="results.csv of a suite that sweeps train step counts")
    p.add_argument("--adapted", help="results.csv of an adapted run to compare with it")
    p.add_argument("--tol", type=float, default=0.02, help="allowed accuracy drop (default 0.02)")
    p.set_defaults(func=_critical)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SuiteError as exc:
        print(f"robustbench-ode: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("robustbench-ode: interrupted", file=sys.stderr)
        return 130
