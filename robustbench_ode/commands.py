"""The command line's handlers that need torch or pandas (``run``, ``xor-fan``, ``report``,
``leaderboard``, ``regress``, ``compare``, ``critical``). :mod:`.cli` parses the arguments and
loads this module only for these commands, so ``--help``, ``list`` and ``validate`` stay fast."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from .config import read_suite
from .core.errors import SuiteError
from .outputs.critical import adapted_vs_critical, critical_steps
from .outputs.figures.adapted import adapted_vs_fixed
from .outputs.figures.training import steps_over_training
from .outputs.gate import comparison, load_table, regressions
from .outputs.leaderboard import write_leaderboard
from .outputs.report import write_report
from .outputs.tables import read_table, read_training
from .run.executors import make_executor
from .run.runner import claim_out_dir, run_suite
from .studies.xor_fan import write_fan


def _suite_and_out(args: argparse.Namespace):
    """The suite as run (``--set`` overrides applied), its YAML text and the output folder."""
    suite, text = read_suite(args.suite, getattr(args, "overrides", ()))
    out = Path(args.out) if args.out else Path("results") / suite.name
    return suite, text, out


def run(args: argparse.Namespace) -> int:
    if args.data_root:  # below a suite's dataset.root, above the environment (datasets/images.py)
        os.environ["ROBUSTBENCH_ODE_DATA"] = args.data_root
    suite, text, out = _suite_and_out(args)
    claim_out_dir(out, suite)  # before starting any workers
    executor = make_executor(args.executor, args.workers, args.address, args.gpus_per_cell, args.threads)
    report = run_suite(suite, out, device=args.device, progress=not args.no_progress,
                       suite_text=text, fresh=args.fresh, executor=executor)
    print(f"wrote {out}/results.csv ({report.rows} rows, {len(report.cells)} cells, "
          f"{len(report.failed)} with failures; trained {len(report.trained)}, "
          f"re-tested {len(report.retested)}, loaded {len(report.loaded)})")
    for f in report.failed:
        print(f"  {f.label}: training {f.train_status.value} {f.message} {f.failed_rows} failed test rows"
              .replace("  ", " ").rstrip())
    return 1 if args.strict and report.failed else 0


def xor_fan(args: argparse.Namespace) -> int:
    suite, text, out = _suite_and_out(args)
    report = run_suite(suite, out, device="cpu", progress=not args.no_progress, suite_text=text)
    written = write_fan(report.cells, read_table(out / "results.csv"), out)
    print(f"wrote {out}/results.csv and {', '.join(p.name for p in written)}")
    return 0


def _need_results(path: str) -> None:
    p = Path(path)
    if not (p / "results.csv").is_file() and not (p.is_file() and p.suffix == ".csv"):
        raise SuiteError(f"{path}: no results.csv there (run a suite into it first)")


def report(args: argparse.Namespace) -> int:
    _need_results(args.dir)
    print(f"wrote {write_report(args.dir)}")
    return 0


def leaderboard(args: argparse.Namespace) -> int:
    for d in args.dirs:
        _need_results(d)
    md_path, csv_path, html_path, md = write_leaderboard(args.dirs, args.out)
    print(md)
    print(f"wrote {md_path}, {csv_path} and {html_path}")
    return 0


def regress(args: argparse.Namespace) -> int:
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


def compare(args: argparse.Namespace) -> int:
    for d in (args.a, args.b):
        _need_results(d)
    with pd.option_context("display.width", 250, "display.max_rows", None,
                           "display.max_colwidth", 120):
        print(comparison(load_table(args.a), load_table(args.b)).to_string(index=False))
    return 0


def critical(args: argparse.Namespace) -> int:
    for path in filter(None, [args.results, args.adapted]):
        if not Path(path).is_file():
            raise SuiteError(f"{path}: no such results file")
    results = read_table(Path(args.results), need=("test_solver", "status"))
    table = critical_steps(results, tol=args.tol)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False) if not table.empty else "no swept train step counts")
        if args.adapted:
            adapted = read_table(Path(args.adapted), need=("test_solver", "status"))
            print(adapted_vs_critical(adapted, table).to_string(index=False))
    if args.adapted:
        # The pictures belong to the adapted run: written beside its results.csv.
        out = Path(args.adapted).parent
        log = out / "training.csv"
        written = [adapted_vs_fixed(adapted, results, out / "adapted_vs_fixed.png")]
        if log.is_file() and log.stat().st_size:
            written.append(steps_over_training(read_training(log), out / "adaptation_steps.png", table))
        for path in filter(None, written):
            print(f"wrote {path}")
    return 0
