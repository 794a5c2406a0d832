"""Running a suite: plan what each cell needs, run the units of work, keep the tables current,
then assemble them in suite order and write the report.

Resumable: finished cells live in the cell store (``DIR/cells/<key>/``) and are loaded, not
recomputed; a stored model missing some test points of today's grid is re-tested without
retraining; a stored cell that fails its checks is moved aside and recomputed (:mod:`.store`);
``fresh=True`` recomputes everything. Units run on an executor (in-process by default, see
:mod:`.executors`). The tables grow by appending each finished unit's rows (the per-cell cost
does not grow with the suite) and are rewritten once, in suite order, at the end; nothing
computed is lost when a run is killed. No table is ever replaced by less: the tables are rebuilt
only from a store that was read (a missing or unreadable ``cells/`` beside a table of stored
rows, or a cell that fails to load while the tables are rebuilt, is a one-line error that leaves
them as they are), and a run whose folder is renamed or moved under it stops in one line
(:meth:`.ownership.RunLock.still_here`). The folder belongs to one suite, by content, and one run
at a time writes it (:mod:`.ownership`).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ..config import SuiteConfig
from ..core.context import ExecutionContext
from ..core.errors import SuiteError
from ..core.files import show_path, temporary, write_text
from ..core.progress import Enabled
from ..core.registry import load
from ..core.schema import CONTRIBUTIONS, DIAGNOSTICS, FAN, LOG_NAMES, RESULTS, TRAINING
from ..core.status import Status
from ..harness.analysis import settings
from ..harness.build import load_data
from ..harness.cell import CellConfig, CellResult, cells
from ..outputs.tables import append_rows, read_table, start_table
from .executors import Executor, LocalExecutor
from .jobs import RetestJob, Unit, plan_training
from .meta import THREADS_USED, WALL_TIME, Throughput, environment, now, wall_time, write_json
from .ownership import Claim, RunLock, claim, take
from .progress import CellsProgress, with_bars
from .store import CellStore, DamagedCell

RESULTS_CSV, TRAINING_CSV = "results.csv", "training.csv"

log = logging.getLogger(__name__)


@dataclass
class Failure:
    label: str
    train_status: Status
    message: str
    failed_rows: int


@dataclass
class RunReport:
    out_dir: Path
    cells: list[CellConfig] = field(default_factory=list)
    rows: int = 0
    # cell keys by what this run did with them
    trained: list[str] = field(default_factory=list)
    retested: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    damaged: list[tuple[str, str, Path]] = field(default_factory=list)  # (key, reason, moved to)
    previous: Path | None = None  # where --update moved the previous tables


def check_data(suite: SuiteConfig) -> None:
    """Missing data files are bad input (one line, exit 2), not a failure of every cell."""
    for cell in {c.dataset.model_dump_json(): c for c in cells(suite)}.values():
        try:
            load_data(cell)
        except SuiteError:
            raise
        except Exception:  # noqa: BLE001 - any other problem becomes each cell's status
            pass


def claim_out_dir(out_dir: Path, suite: SuiteConfig, update: bool = False) -> Claim:
    """Refuse a folder that holds another suite's results (by content, run/ownership.py) or
    anything else, before anything is written: never overwrite."""
    return claim(Path(out_dir), suite, update)


@dataclass
class Plan:
    """What each cell of the suite needs this run, in suite order."""

    cells: list[CellConfig]
    units: list[Unit]
    loaded: list[str]


def _warn(text: str) -> None:
    log.warning(text)  # one line on stderr (core/console.py)


def plan_run(suite: SuiteConfig, store: CellStore, context: ExecutionContext, fresh: bool,
             damaged: list[tuple[str, str, Path]] | None = None) -> Plan:
    """Stored cells answer what they were trained at and which of today's points they lack; a
    damaged one is moved aside (appended to ``damaged``) and recomputed."""
    todo = cells(suite)
    wanted = settings(suite.diagnostics, suite.reference) if suite.diagnostics.enabled else None
    train: list[int] = []
    retests: dict[int, Unit] = {}
    loaded = []
    for i, cell in enumerate(todo):
        stored = _stored(store, cell, fresh, damaged)
        if stored is None:
            if fresh:
                store.checkpoint(cell.key).clear()
            train.append(i)
            continue
        missing = stored.missing(stored.record.grid(suite.test, suite.reference))
        diagnose = stored.needs_diagnosis(wanted)
        if not missing and not diagnose:
            loaded.append(cell.key)
            continue
        record = stored.record
        record = record.in_memory() if record.status is Status.OK else replace(record, weights=None)
        retests[i] = RetestJob(record, tuple(missing), context, suite.diagnostics if diagnose else None,
                               suite.reference)
    jobs = plan_training([todo[i] for i in train], suite.test, suite.reference, context, store,
                         suite.diagnostics if suite.diagnostics.enabled else None)
    units: list[tuple[int, Unit]] = [(train[members[0]], job) for members, job in jobs]
    units += list(retests.items())
    log.debug("plan: %d cells: %d to train (in %d units), %d to re-test, %d loaded from the store",
              len(todo), len(train), len(jobs), len(retests), len(loaded))
    return Plan(todo, [u for _, u in sorted(units, key=lambda t: t[0])], loaded)


def _stored(store: CellStore, cell: CellConfig, fresh: bool,
            damaged: list[tuple[str, str, Path]] | None) -> CellResult | None:
    """The stored result of ``cell`` (None: none, ``fresh``, or damaged: moved aside)."""
    if fresh or not store.has(cell.key):
        return None
    try:
        return store.load(cell.key)
    except DamagedCell as exc:
        moved = store.quarantine(cell.key, exc.reason)
        _warn(f"cell {cell.key} ({cell.label()}) is damaged: {exc.reason}; moved to "
              f"{show_path(moved)}, recomputing it")
        if damaged is not None:
            damaged.append((cell.key, exc.reason, moved))
        return None


def _split_oom(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(rows to store, out-of-memory rows): a test point that ran out of memory is retried by the
    next run (a bigger machine), so it is shown in this run's tables but not stored."""
    kept = [r for r in rows if Status.parse(r.get("status")).storable]
    return kept, [r for r in rows if not Status.parse(r.get("status")).storable]


def run_suite(suite: SuiteConfig, out_dir: Path, context: ExecutionContext | None = None,
              progress: Enabled = None, suite_text: str | None = None, *, fresh: bool = False,
              update: bool = False, executor: Executor | None = None,
              started: float | None = None) -> RunReport:
    """Run ``suite`` into ``out_dir`` (module docstring) in ``context`` (resolved by the caller,
    core/context.py; default: the CPU, the executor's threads). ``update``: move a folder that
    holds another version of the suite to this one (run/ownership.py). ``progress``: the progress
    display (core/progress.py; None: where stderr is a terminal). ``started``: the perf_counter
    time the run's wall-time breakdown counts from (the command line: the package's import,
    core/clock.py; default: now)."""
    started = time.perf_counter() if started is None else started
    check_data(suite)
    out_dir = Path(out_dir)
    claim_out_dir(out_dir, suite, update)  # refuses before anything is written
    executor = executor or LocalExecutor()
    context = context or ExecutionContext(threads=executor.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(out_dir) as lock:
        decision = claim_out_dir(out_dir, suite, update)  # again: the record may have changed meanwhile
        return _run_locked(suite, out_dir, context, progress, suite_text, fresh, executor, decision, lock,
                           started)


def check_store(out_dir: Path) -> None:
    """The store can be read, or there is none to read and no table holds a stored cell's rows:
    else a one-line SuiteError, before anything is written (the tables are rebuilt from the store,
    and a store that is not there would rebuild them empty)."""
    cells_dir, shown = CellStore(out_dir).cells, show_path(out_dir)
    left = "the tables are left as they are"
    try:
        is_dir = os.path.isdir(cells_dir) and os.access(cells_dir, os.R_OK | os.X_OK)
        if is_dir:
            os.listdir(cells_dir)
    except OSError as exc:
        raise SuiteError(f"--out {shown}: cells/ cannot be read ({exc.strerror}); {left}") from None
    if is_dir:
        return
    if os.path.lexists(cells_dir):
        raise SuiteError(f"--out {shown}: cells/ is not a readable directory; {left}")
    held = _stored_rows(out_dir / RESULTS_CSV)
    if held != 0:
        holds = f"holds {held} rows of stored cells" if held else "cannot be read (it may hold stored rows)"
        raise SuiteError(f"--out {shown}: cells/ is missing but {RESULTS_CSV} {holds}; {left} "
                         "(restore cells/, or run into another --out)")


def _stored_rows(path: Path) -> int | None:
    """How many rows of ``path`` (a results table) a store held (out-of-memory rows never are);
    None where the table cannot be read."""
    if not os.path.lexists(path):
        return 0
    try:
        df = read_table(path, RESULTS, what="results table")
        return int(sum(Status.parse(v).storable for v in df["status"])) if "status" in df else len(df)
    except (SuiteError, ValueError):
        return None


def _run_locked(suite: SuiteConfig, out_dir: Path, context: ExecutionContext, progress: Enabled,
                suite_text: str | None, fresh: bool, executor: Executor, decision: Claim,
                lock: RunLock, started: float) -> RunReport:
    check_store(out_dir)
    todo = cells(suite)
    previous = take(out_dir, suite, decision, [c.key for c in todo])
    meta = {"suite": suite.name, "started": now(), "executor": executor.name,
            "threads_per_worker": executor.threads, **environment(context.device)}
    write_json(out_dir / "meta.json", meta)
    write_text(out_dir / "suite.yaml", suite_text if suite_text is not None
               else yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False))
    store = CellStore(out_dir)
    store.clean()
    damaged: list[tuple[str, str, Path]] = []
    plan = plan_run(suite, store, context, fresh, damaged)
    report = RunReport(out_dir, plan.cells, loaded=plan.loaded, damaged=damaged, previous=previous)
    unstored: dict[str, CellResult] = {}  # results kept out of the store (OOM, lost): retried next run
    oom_rows: dict[str, list[dict]] = {}  # test rows kept out of the store (out of memory)
    _assemble(plan.cells, suite, store, unstored, out_dir)  # the tables as the store has them now
    bar = CellsProgress(plan.units, suite.name, progress, getattr(executor, "workers", 1))
    marks = {"start": started, "units": time.perf_counter()}  # meta.json's WALL_TIME (run/meta.py)
    units = with_bars(plan.units, progress, getattr(executor, "in_process", False))
    if not getattr(executor, "in_process", False):
        _warm_report()
    for u, results in executor.run(units):
        retest = isinstance(plan.units[u], RetestJob)
        lock.still_here()  # before anything is written: never a partial folder at the old path
        for result in results:
            key = result.cell.key
            kept, oom = _split_oom(result.rows)
            if not result.record.storable:
                unstored[key] = result
            elif retest:
                if kept:
                    store.add_rows(key, kept)
                if result.diagnosis is not None:
                    store.set_diagnosis(key, result.diagnosis)
                report.retested.append(key)
            else:
                store.save(replace(result, rows=kept))
                report.trained.append(key)
            if oom and result.record.storable:
                oom_rows[key] = oom
            _append(result, out_dir)  # after every unit: nothing computed is lost
            log.debug("cell %s (%s): %s, %s, %d test rows", key, result.cell.label(),
                      "re-tested" if retest else "trained", result.status.value, len(result.rows))
        bar.finished(u, len(results))
    bar.close()
    marks["cells"] = time.perf_counter()
    lock.still_here()
    throughput = _assemble(plan.cells, suite, store, unstored, out_dir, report, oom_rows)
    meta.update(finished=now(), units_seconds=round(marks["cells"] - marks["units"], 3),
                cells=len(plan.cells), failed_cells=len(report.failed), trained=len(report.trained),
                retested=len(report.retested), loaded=len(report.loaded), **throughput.summary(),
                **{THREADS_USED: list(getattr(executor, "threads_used", {}).values())})
    write_json(out_dir / "meta.json", meta)
    _report(out_dir, meta, marks)
    return report


def _report(out_dir: Path, meta: dict, marks: dict[str, float]) -> None:
    """The report, then meta.json again with the run's wall-time breakdown (run/meta.py), which
    the debug log shows (``--verbose``)."""
    marks["tables"] = time.perf_counter()
    REPORT_TIMINGS.clear()
    write_report_safely(out_dir)
    marks["report"] = time.perf_counter()
    marks["figures"] = marks["tables"] + REPORT_TIMINGS.get("figures", 0.0)
    meta.update(wall_time(marks))
    write_json(out_dir / "meta.json", meta)
    log.debug("wall time %.1f s: " + ", ".join(f"{k.removesuffix('_seconds')} %.1f s" for k in WALL_TIME
                                               if k != "wall_seconds"),
              meta["wall_seconds"], *(meta[k] for k in WALL_TIME if k != "wall_seconds"))


REPORT_MODULE = "robustbench_ode.outputs.report"
REPORT_TIMINGS: dict[str, float] = {}  # the last report's parts (its figures' seconds), for meta.json


def write_report_safely(run_dir: Path) -> Path | None:
    """outputs/report.py's, imported only now (matplotlib, seaborn: not at the run's start,
    :func:`_warm_report`); the seconds its figures took go to :data:`REPORT_TIMINGS`."""
    return load(f"{REPORT_MODULE}:write_report_safely")(run_dir, REPORT_TIMINGS)


def _warm_report() -> None:
    """Import the report's modules (matplotlib, seaborn: about a second) in a thread while other
    processes run the cells and this one waits for them, instead of at the start or the end (issue
    31: the fixed part of a run). An import that fails here fails again, and is reported, at the
    report."""
    def load() -> None:
        try:
            importlib.import_module(REPORT_MODULE)
        except Exception:  # noqa: BLE001 - the report says what went wrong
            pass
    threading.Thread(target=load, name="robustbench-ode-report-import", daemon=True).start()


def _append(result: CellResult, out_dir: Path) -> None:
    append_rows(result.rows, out_dir / RESULTS_CSV, RESULTS)
    append_rows(_log_rows(result), out_dir / TRAINING_CSV, TRAINING)


def _log_rows(result: CellResult) -> list[dict]:
    """The training log's rows: the cell's columns as configured (an adapted cell's log shows
    where it started), then the log's."""
    ident = result.cell.columns()
    return [{**ident, **{k: row.get(k) for k in LOG_NAMES}} for row in result.log]


# The run's tables: file, schema, and the rows one cell contributes (identified by its columns).
def _diagnosed(part: str):
    """Rows of one part of a cell's diagnosis record (harness/analysis.py), with its record's columns."""
    def rows(r: CellResult) -> list[dict]:
        if not r.diagnosis:
            return []
        found, ident = r.diagnosis[part], r.record.columns()
        return [{**ident, **row} for row in (found if isinstance(found, list) else [found])]
    return rows


TABLES = (
    (RESULTS_CSV, RESULTS, lambda r: r.rows),
    (TRAINING_CSV, TRAINING, _log_rows),
    ("diagnostics.csv", DIAGNOSTICS, _diagnosed("scalars")),
    ("contributions.csv", CONTRIBUTIONS, _diagnosed("contributions")),
    ("fan.csv", FAN, _diagnosed("fan")),
)


def _assemble(todo: list[CellConfig], suite: SuiteConfig, store: CellStore,
              unstored: dict[str, CellResult], out_dir: Path,
              report: RunReport | None = None, oom_rows: dict[str, list[dict]] | None = None) -> Throughput:
    """Rewrite every table in suite order from the store (one cell in memory at a time): what the
    table shows is what the store holds, so a rerun rebuilds the very same table."""
    tmps = [temporary(out_dir / name) for name, _, _ in TABLES]
    throughput = Throughput()
    try:
        for tmp, (_, schema, _) in zip(tmps, TABLES):
            start_table(tmp, schema)
        for cell in todo:
            if cell.key in unstored:
                result = unstored[cell.key]
            elif store.has(cell.key):
                try:
                    stored = store.load(cell.key)
                except DamagedCell as exc:  # damaged since it was planned: the next run recomputes it
                    raise SuiteError(f"cell {cell.key} ({cell.label()}) was damaged during the run: "
                                     f"{exc.reason}; the tables are left as they are (a run of the "
                                     "suite recomputes it)") from None
                grid = stored.record.grid(suite.test, suite.reference)
                result = stored.on(grid, (oom_rows or {}).get(cell.key, []))
            else:
                continue
            for tmp, (_, schema, rows_of) in zip(tmps, TABLES):
                append_rows(rows_of(result), tmp, schema)
            throughput.add(result.log, cell.training.batch_size)
            if report is not None:
                report.rows += len(result.rows)
                if result.failed:
                    bad = sum(Status.parse(r["status"]) is not Status.OK for r in result.rows)
                    report.failed.append(Failure(cell.label(), result.status, result.record.message, bad))
        for tmp, (name, _, _) in zip(tmps, TABLES):
            tmp.replace(out_dir / name)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
    return throughput
