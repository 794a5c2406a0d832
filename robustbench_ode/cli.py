"""Command line of robustbench_ode: ``python -m robustbench_ode COMMAND`` (alias ``robustbench-ode``).

Bad input (a bad suite file, an unknown name, a bad option) prints one line naming the problem
and exits with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
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
    from .executors import make_executor
    from .runner import claim_out_dir, run_suite

    if args.data_root:  # below a suite's dataset.root, above the environment (datasets/images.py)
        os.environ["ROBUSTBENCH_ODE_DATA"] = args.data_root
    suite = load_suite(args.suite)
    out = Path(args.out) if args.out else Path("results") / suite.name
    claim_out_dir(out, suite)  # before starting any workers
    executor = make_executor(args.executor, args.workers, args.address, args.gpus_per_cell)
    report = run_suite(suite, out, device=args.device, progress=not args.no_progress,
                       suite_text=Path(args.suite).read_text(), fresh=args.fresh, executor=executor)
    failed = report.failed
    print(f"wrote {out}/results.csv ({sum(len(r.rows) for r in report.results)} rows, "
          f"{len(report.results)} cells, {len(failed)} with failures; trained {len(report.trained)}, "
          f"re-tested {len(report.retested)}, loaded {len(report.loaded)})")
    for res in failed:
        bad = [r for r in res.rows if r["status"] != "ok"]
        print(f"  {res.cell.label()}: training {res.status.value} {res.message} "
              f"{len(bad)} failed test rows".rstrip())
    return 1 if args.strict and failed else 0


def _xor_fan(args: argparse.Namespace) -> int:
    from .fan_plots import write_fan
    from .runner import run_suite
    from .tables import read_results

    suite = load_suite(args.suite)
    out = Path(args.out) if args.out else Path("results") / suite.name
    report = run_suite(suite, out, device="cpu", progress=not args.no_progress,
                       suite_text=Path(args.suite).read_text())
    written = write_fan(report.results, read_results(out / "results.csv"), out)
    print(f"wrote {out}/results.csv and {', '.join(p.name for p in written)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    _need_results(args.dir)
    print(f"wrote {write_report(args.dir)}")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import write_leaderboard

    for d in args.dirs:
        _need_results(d)
    md_path, csv_path, md = write_leaderboard(args.dirs, args.out)
    print(md)
    print(f"wrote {md_path} and {csv_path}")
    return 0


def _regress(args: argparse.Namespace) -> int:
    from .regression import load_table, regressions

    _need_results(args.dir)
    if not Path(args.baseline).is_file():
        raise SuiteError(f"--baseline {args.baseline}: no such file")
    found = regressions(load_table(args.dir), load_table(args.baseline), args.acc_tol, args.nfe_tol,
                        args.mse_tol)
    for r in found:
        print(f"REGRESSION {r}")
    print(f"{len(found)} regressions against {args.baseline}" if found
          else f"no regressions against {args.baseline}")
    return 1 if found else 0


def _compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from .regression import comparison, load_table

    for d in (args.a, args.b):
        _need_results(d)
    with pd.option_context("display.width", 250, "display.max_rows", None,
                           "display.max_colwidth", 120):
        print(comparison(load_table(args.a), load_table(args.b)).to_string(index=False))
    return 0


def _need_results(path: str) -> None:
    p = Path(path)
    if not (p / "results.csv").is_file() and not (p.is_file() and p.suffix == ".csv"):
        raise SuiteError(f"{path}: no results.csv there (run a suite into it first)")


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
            adapted = read_results(Path(args.adapted))
            print(adapted_vs_critical(adapted, table).to_string(index=False))
    if args.adapted:
        from .adaptation_plots import adapted_vs_fixed, steps_over_training

        # The pictures belong to the adapted run: written beside its results.csv.
        out = Path(args.adapted).parent
        log = out / "training.csv"
        written = [adapted_vs_fixed(adapted, read_results(Path(args.results)),
                                    out / "adapted_vs_fixed.png")]
        if log.is_file() and log.stat().st_size:
            written.append(steps_over_training(pd.read_csv(log), out / "adaptation_steps.png", table))
        for path in filter(None, written):
            print(f"wrote {path}")
    return 0


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number >= 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


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
    p.add_argument("--data-root", help="image data folder (default $ROBUSTBENCH_ODE_DATA or ./data)")
    p.add_argument("--fresh", action="store_true", help="recompute every cell, ignoring stored ones")
    p.add_argument("--strict", action="store_true", help="exit 1 if any cell or test row failed")
    p.add_argument("--executor", default="local", choices=["local", "process", "ray"],
                   help="where cells run (default: in this process)")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="parallel cells: a local process pool, or the CPUs of a local Ray instance")
    p.add_argument("--address", help="Ray cluster to join: 'auto' or HOST:PORT (--executor ray)")
    p.add_argument("--gpus-per-cell", type=_non_negative, default=0.0, help="GPUs each Ray task declares")
    p.set_defaults(func=_run)
    p = sub.add_parser("xor-fan", help="run a suite, then write trajectories and the fan pictures")
    p.add_argument("suite", nargs="?", default="suites/xor_fan.yaml")
    p.add_argument("--out", help="output directory (default results/<suite name>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_xor_fan)
    p = sub.add_parser("report", help="write DIR/report.html (and summary.csv) from a run")
    p.add_argument("dir")
    p.set_defaults(func=_report)
    p = sub.add_parser("leaderboard", help="rank trained configurations of runs, per dataset")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--out", default=".", help="where leaderboard.md and .csv go (default .)")
    p.set_defaults(func=_leaderboard)
    p = sub.add_parser("regress", help="exit 1 listing regressions of a run against a baseline")
    p.add_argument("dir")
    p.add_argument("--baseline", required=True, help="a results.csv to compare with")
    p.add_argument("--acc-tol", type=_non_negative, default=0.02, help="allowed accuracy drop (absolute)")
    p.add_argument("--nfe-tol", type=_non_negative, default=0.10, help="allowed NFE rise (relative)")
    p.add_argument("--mse-tol", type=_non_negative, default=0.10,
                   help="allowed trajectory-MSE rise (relative; time-series suites)")
    p.set_defaults(func=_regress)
    p = sub.add_parser("compare", help="print two runs' results side by side")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(func=_compare)
    p = sub.add_parser("critical", help="critical step count from a sweep's results.csv")
    p.add_argument("results", help="results.csv of a suite that sweeps train step counts")
    p.add_argument("--adapted", help="results.csv of an adapted run to compare with it")
    p.add_argument("--tol", type=_non_negative, default=0.02, help="allowed accuracy drop (default 0.02)")
    p.set_defaults(func=_critical)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a bad option (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        return args.func(args)
    except SuiteError as exc:
        print(f"robustbench-ode: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("robustbench-ode: interrupted", file=sys.stderr)
        return 130
