"""The command line's handlers that need torch or pandas (``run``, ``xor-fan``, ``report``,
``verify``, ``migrate``, ``leaderboard``, ``regress``, ``compare``, ``critical``). :mod:`.cli` parses the
arguments and loads this module only for these commands, so ``--help``, ``list`` and ``validate``
stay fast. Every input a command reads is read and checked before it writes anything."""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import replace
from pathlib import Path

import pandas as pd

from .config import parse_suite, read_suite
from .core import clock
from .core.context import resolve
from .core.errors import SuiteError
from .core.files import check_file, check_writable_dir, show_path
from .core.preview import clip
from .core.registry import load  # the modules that draw (matplotlib, seaborn): only when they do
from .harness.cell import cells
from .harness.cost import admit
from .outputs.critical import adapted_vs_critical, critical_steps, critical_table
from .outputs.gate import check_comparable, comparison, load_baseline, load_table, regressions
from .outputs.leaderboard import write_leaderboard
from .outputs.tables import read_results, read_table, read_training, training_log
from .outputs.terminal import run_summary
from .run.executors import check_executor, make_executor
from .run.ownership import Claim, RunLock, read_record, take
from .run.runner import claim_out_dir, run_suite
from .run.store import CellStore, DamagedCell

log = logging.getLogger(__name__)


def _suite_and_out(args: argparse.Namespace):
    """The suite as run (``--set`` overrides applied), its YAML text and the output folder."""
    suite, text = read_suite(args.suite, getattr(args, "overrides", ()))
    if args.out is not None and not args.out.strip():
        raise SuiteError("--out '': an empty path; give a folder (or no --out: results/<suite name>)")
    out = Path(args.out) if args.out else Path("results") / suite.name
    return suite, text, out


def _progress(args: argparse.Namespace) -> bool | None:
    """The progress display (core/progress.py): off with --no-progress or -q, else on where stderr
    is a terminal (None)."""
    return False if args.no_progress or getattr(args, "verbosity", 0) < 0 else None


def run(args: argparse.Namespace) -> int:
    if args.data_root:  # below a suite's dataset.root, above the environment (datasets/images.py)
        os.environ["ROBUSTBENCH_ODE_DATA"] = args.data_root
    check_executor(args.executor)  # before anything is written
    suite, text, out = _suite_and_out(args)
    context = resolve(args.device)  # once, for the whole run (core/context.py)
    admit(suite, args.force, show_path(args.suite), gpu=context.cuda)
    claim_out_dir(out, suite, args.update)  # before starting any workers
    executor = make_executor(args.executor, args.workers, args.address, args.gpus_per_cell, args.threads,
                             units=len(cells(suite)))  # no more workers than cells to run
    try:
        report = run_suite(suite, out, replace(context, threads=executor.threads),
                           progress=_progress(args), suite_text=text, fresh=args.fresh,
                           update=args.update, executor=executor, started=clock.STARTED)
    finally:
        executor.close()
    if report.previous is not None:
        log.info("moved the previous tables to %s", report.previous)
    damaged = f", recomputed {len(report.damaged)} damaged" if report.damaged else ""
    log.info(f"wrote {out}/results.csv ({report.rows} rows, {len(report.cells)} cells, "
             f"{len(report.failed)} with failures; trained {len(report.trained)}, "
             f"re-tested {len(report.retested)}, loaded {len(report.loaded)}{damaged})")
    for key, reason, moved in report.damaged:
        log.info("  damaged %s: %s (moved to %s)", key, reason, moved)
    for f in report.failed:  # a failed cell is worth a warning, -q or not
        line = f"{f.label}: training {f.train_status.value} {f.message} {f.failed_rows} failed test rows"
        log.warning(line.replace("  ", " "))
    _show_summary(out)
    return 1 if args.strict and report.failed else 0


def _show_summary(out: Path) -> None:
    """The run's summary table (outputs/terminal.py), at the default verbosity and above; a table
    that cannot be built is a warning: the run's files are written already."""
    if not log.isEnabledFor(logging.INFO):
        return
    try:
        text = run_summary(out)
    except (SuiteError, OSError, ValueError, KeyError) as exc:
        log.warning("summary not shown: %s: %s", type(exc).__name__, exc)
        return
    if text:
        log.info("%s\n(more: %s, %s)", text, out / "summary.csv", out / "report.html")


def xor_fan(args: argparse.Namespace) -> int:
    suite, text, out = _suite_and_out(args)
    admit(suite, args.force, show_path(args.suite))  # the same gates as run: cost, then the folder
    claim_out_dir(out, suite, args.update)
    report = run_suite(suite, out, progress=_progress(args), suite_text=text, update=args.update)
    write_fan = load("robustbench_ode.studies.xor_fan:write_fan")  # matplotlib: only here
    written = write_fan(report.cells, read_table(out / "results.csv"), out)
    log.info(f"wrote {out}/results.csv and {', '.join(p.name for p in written)}")
    _show_summary(out)
    return 0


def _run_folder(path: str) -> Path:
    """A run folder given on the command line (one that holds results.csv)."""
    p = Path(path)
    if p.is_file():
        raise SuiteError(f"{show_path(path)}: a file, not a run folder (give the folder that holds "
                         "results.csv)")
    if not p.is_dir():
        raise SuiteError(f"{show_path(path)}: no such run folder")
    if not (p / "results.csv").exists():
        raise SuiteError(f"{show_path(path)}: no results.csv there (run a suite into it first)")
    return p


def _need_results(path: str) -> None:
    p = Path(path)
    if not (p.is_file() or (p / "results.csv").exists()):
        raise SuiteError(f"{show_path(path)}: no results.csv there (run a suite into it first)")


def report(args: argparse.Namespace) -> int:
    run_dir = _run_folder(args.dir)
    out = Path(args.out) if args.out else run_dir

    def writable() -> None:  # after the inputs are read: a bad input leaves no empty --out behind
        try:
            check_writable_dir(out, "--out" if args.out else "")
        except SuiteError as exc:
            hint = "" if args.out else "; give --out OTHER to report it elsewhere"
            raise SuiteError(f"{exc}{hint}") from None

    write_report = load("robustbench_ode.outputs.report:write_report")  # matplotlib: only here
    log.info("wrote %s", write_report(run_dir, out, before_writing=writable))
    return 0


def _store_folder(path: str) -> CellStore:
    """The store of a run folder given on the command line (``verify``, ``migrate``)."""
    p = Path(path)
    if not p.is_dir():
        raise SuiteError(f"{show_path(path)}: {'a file, not' if p.exists() else 'no such'} run folder")
    store = CellStore(p)
    if not store.cells.is_dir() and not (p / "meta.json").exists():
        raise SuiteError(f"{show_path(path)}: not a run folder (no cells/, no meta.json)")
    return store


def _listed(store: CellStore) -> list[str]:
    """The cell keys the folder's owner record lists (none without a readable record)."""
    try:
        record = read_record(store.root)
    except SuiteError:
        return []
    return [k for k in (record.cells if record is not None else []) if isinstance(k, str)]


def _why_missing(store: CellStore, key: str) -> str:
    try:
        moved = any(p.name.startswith(f".old-{key}-") for p in store.cells.iterdir())
    except OSError:
        moved = False
    return ("a --fresh run stopped between its renames: a run of the suite puts it back" if moved
            else "deleted, or not computed yet: a run of the suite computes it")


def verify(args: argparse.Namespace) -> int:
    """Check every stored cell of a run folder (read only) and compare them with the cells its
    owner record lists; exit 1 listing the damaged and the missing ones."""
    store = _store_folder(args.dir)
    keys = store.keys()
    damaged = [(k, why) for k in keys if (why := store.check(k, repair=False)) is not None]
    for key, why in damaged:
        print(f"damaged {key}: {why}")
    listed = _listed(store)
    missing = [k for k in listed if k not in set(keys)]
    for key in missing:
        print(f"missing {clip(key, 40)}: listed in owner.json, not in cells/ ({_why_missing(store, key)})")
    advice = "; a run of its suite moves them to damaged/ and recomputes them" if damaged else ""
    lacking = f", {len(missing)} of the {len(listed)} its owner record lists missing" if missing else ""
    print(f"{store.root}: {len(keys)} stored cells, {len(damaged)} damaged{lacking}{advice}")
    return 1 if damaged or missing else 0


def _adopt(store: CellStore) -> str:
    """A folder written before owner.json gets its record from its suite.yaml (the cells ``verify``
    compares the store with); what was done, for migrate's line."""
    try:
        record = read_record(store.root)
        if record is None or not record.legacy:
            return ""
        if record.dump is None:
            return "; no owner.json written (its suite.yaml cannot be read)"
        suite = parse_suite(record.dump)
    except SuiteError:
        return "; no owner.json written (its suite.yaml cannot be read)"
    take(store.root, suite, Claim("same", record), [c.key for c in cells(suite)])
    return "; owner.json written from its suite.yaml"


def migrate(args: argparse.Namespace) -> int:
    """Bless a store written before manifests, once: each cell without a manifest is checked
    (every file parses, model.pt loads, config.json names its key) and given one; a cell that
    fails is left as it is, listed, exit 1 (a run of its suite recomputes it)."""
    store = _store_folder(args.dir)
    blessed, damaged = [], []
    with RunLock(store.root):  # it writes manifests: not while a run writes the store
        keys = store.keys()
        for key in keys:
            try:
                if store.bless(key):
                    blessed.append(key)
            except DamagedCell as exc:
                damaged.append((key, exc.reason))
        owner = _adopt(store)
    for key, why in damaged:
        print(f"damaged {key}: {why}")
    advice = "; left as they are: a run of its suite moves them to damaged/ and recomputes them" \
        if damaged else ""
    print(f"{store.root}: {len(keys)} stored cells, {len(blessed)} given a manifest, "
          f"{len(keys) - len(blessed) - len(damaged)} had one, {len(damaged)} damaged{advice}{owner}")
    return 1 if damaged else 0


def leaderboard(args: argparse.Namespace) -> int:
    for d in args.dirs:
        _need_results(d)
    md_path, csv_path, html_path, md = write_leaderboard(args.dirs, args.out)
    print(md)
    log.info(f"wrote {md_path}, {csv_path} and {html_path}")
    return 0


def regress(args: argparse.Namespace) -> int:
    _need_results(args.dir)
    baseline = Path(args.baseline)
    try:  # what the path is, precisely: missing, a directory, a pipe (/dev/stdin), unreadable
        check_file(baseline, "results CSV file")
    except SuiteError as exc:
        raise SuiteError(f"--baseline {exc}") from None
    run_table, base_table = load_table(args.dir), load_baseline(baseline)
    note = check_comparable(args.dir, baseline, "regress a run of the baseline's suite, or refresh it "
                            "(make baseline)")
    found = regressions(run_table, base_table, args.acc_tol, args.nfe_tol, args.mse_tol)
    for r in found:
        print(f"REGRESSION {r}")
    print(f"{len(found)} regressions against {args.baseline}" if found
          else f"no regressions against {args.baseline}")
    if note:
        print(note)
    return 1 if found else 0


def compare(args: argparse.Namespace) -> int:
    for d in (args.a, args.b):
        _need_results(d)
    a, b = load_table(args.a), load_table(args.b)
    note = check_comparable(args.a, args.b, "compare runs of one suite")
    with pd.option_context("display.width", 250, "display.max_rows", None,
                           "display.max_colwidth", 120):
        print(comparison(a, b).to_string(index=False))
    if note:
        print(note)
    return 0


def critical(args: argparse.Namespace) -> int:
    for path in filter(None, [args.results, args.adapted]):
        if not Path(path).is_file():
            what = "a directory; give a results CSV file" if Path(path).is_dir() else "no such results file"
            raise SuiteError(f"{show_path(path)}: {what}")
    # every input read and checked before anything is printed or written
    results = read_results(Path(args.results))
    adapted = read_results(Path(args.adapted)) if args.adapted else None
    log_path = training_log(Path(args.adapted).parent) if args.adapted else None
    training = read_training(log_path) if log_path is not None else pd.DataFrame()
    table = critical_steps(results, tol=args.tol)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False) if not table.empty else "no swept train step counts")
        if adapted is not None:
            # against both definitions (strict 0.02 and the adaptation's own 0.1; docs/adaptation.md)
            print(adapted_vs_critical(adapted, critical_table(results)).to_string(index=False))
    if adapted is not None:
        # The pictures belong to the adapted run: written beside its results.csv.
        out = Path(args.adapted).parent
        adapted_vs_fixed = load("robustbench_ode.outputs.figures.adapted:adapted_vs_fixed")  # matplotlib
        steps_over_training = load("robustbench_ode.outputs.figures.training:steps_over_training")
        written = [adapted_vs_fixed(adapted, results, out / "adapted_vs_fixed.png")]
        if not training.empty:
            written.append(steps_over_training(training, out / "adaptation_steps.png", table))
        for path in filter(None, written):
            log.info("wrote %s", path)
    return 0
