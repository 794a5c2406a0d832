"""Running a suite: every cell in turn, tables rewritten after each, plots at the end.

Resumable: finished cells live in the cell store (``DIR/cells/<key>/``) and are loaded, not
recomputed; a stored model missing some test points of today's grid is re-tested without
retraining; ``fresh=True`` recomputes everything. Cells run on an executor (in-process by
default, see :mod:`robustbench_ode.executors`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from .acceleration import throughput_summary
from .adaptation_plots import write_adaptation_plots
from .cell import CellResult, TestPoint, _test_columns, adapted_points, cells, load_data, test_points
from .config import SuiteConfig, SuiteError
from .critical import write_critical
from .executors import Executor, LocalExecutor
from .job import CellJob
from .meta import environment, now
from .plots import accuracy_vs_test_steps
from .report import write_report_safely
from .seed_group import plan
from .status import Status
from .store import CellStore, StoredCell, row_key, test_point_key
from .tables import read_results, results_frame, training_frame, write_csv


@dataclass
class RunReport:
    out_dir: Path
    results: list[CellResult] = field(default_factory=list)
    # cell keys by what this run did with them
    trained: list[str] = field(default_factory=list)
    retested: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CellResult]:
        return [r for r in self.results if r.status is not Status.OK
                or any(row["status"] != "ok" for row in r.rows)]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SuiteError(f"--device {device}: CUDA is not available here (allowed: auto, cpu)")
    return device


def run_suite(suite: SuiteConfig, out_dir: Path, device: str = "cpu", progress: bool = True,
              suite_text: str | None = None, *, fresh: bool = False,
              executor: Executor | None = None) -> RunReport:
    device = resolve_device(device)
    _check_data(suite)
    claim_out_dir(out_dir, suite)
    executor = executor or LocalExecutor()
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"suite": suite.name, "started": now(), "executor": executor.name, **environment(device)}
    _write_json(out_dir / "meta.json", meta)  # first: it marks the directory as this suite's
    (out_dir / "suite.yaml").write_text(suite_text if suite_text is not None
                                        else yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False))
    store = CellStore(out_dir)
    store.clean()
    report = RunReport(out_dir)
    todo = cells(suite)
    tests = [test_points(suite, cell) for cell in todo]
    done: list[CellResult | None] = [None] * len(todo)
    jobs: list[tuple[int, CellJob]] = []
    for i, cell in enumerate(todo):
        if fresh or not store.has(cell.key):
            if fresh:
                store.checkpoint(cell.key).clear()
            jobs.append((i, CellJob(cell, tests[i], device, store_root=str(out_dir.resolve()))))
            continue
        stored = store.load(cell.key)
        tests[i] = _resolved(tests[i], stored)
        have = {row_key(r) for r in stored.rows}
        missing = [p for p in tests[i] if test_point_key(p) not in have]
        if not missing:
            done[i] = _assemble(stored, tests[i])
            report.loaded.append(cell.key)
            continue
        weights = stored.state_dict() if stored.status is Status.OK else None
        jobs.append((i, CellJob(cell, missing, device, state_dict=weights, train_status=stored.status,
                                train_message=stored.message, train_seconds=stored.train_seconds,
                                columns=_adapted_columns(stored))))
    _write_tables(report, done)
    bar = tqdm(total=len(jobs), desc=f"suite {suite.name}", unit="cell", disable=not progress)
    # Cells that differ only by seed run as one unit (seed_group.py); a unit returns a list
    units = plan([job for _, job in jobs])
    for u, unit_result in executor.run([unit for _, unit in units]):
        members = units[u][0]
        for j, result in zip(members, unit_result if isinstance(unit_result, list) else [unit_result]):
            i, job = jobs[j]
            done[i] = _record(store, job, result, tests[i], report)
            bar.update()
        _write_tables(report, done)  # after every unit: nothing computed is lost
    bar.close()
    report.results = [r for r in done if r is not None]
    plot = accuracy_vs_test_steps(results_frame(r for res in report.results for r in res.rows),
                                  out_dir / "accuracy_vs_steps.png")
    write_critical(read_results(out_dir / "results.csv"), out_dir)  # critical.py, if steps were swept
    write_adaptation_plots(out_dir)  # adaptation_plots.py, if any cell was adapted
    meta.update(finished=now(), cells=len(todo), failed_cells=len(report.failed),
                trained=len(report.trained), retested=len(report.retested), loaded=len(report.loaded),
                plots=[plot.name] if plot else [],
                **throughput_summary([(r.log, r.cell.training.batch_size) for r in report.results]))
    _write_json(out_dir / "meta.json", meta)
    write_report_safely(out_dir)
    return report


def _check_data(suite: SuiteConfig) -> None:
    """Missing data files are bad input (one line, exit 2), not a failure of every cell."""
    first = cells(suite)[0]
    try:
        load_data(first.dataset, first.seed)
    except SuiteError:
        raise
    except Exception:  # noqa: BLE001 - any other problem becomes each cell's status
        pass


def claim_out_dir(out_dir: Path, suite: SuiteConfig) -> None:
    """Refuse a directory that holds another suite's results (or anything else): never overwrite."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SuiteError(f"--out {out_dir}: exists and is not a directory")
    meta = out_dir / "meta.json"
    if meta.is_file():
        try:
            owner = json.loads(meta.read_text()).get("suite")
        except (ValueError, AttributeError):
            owner = None
        if owner != suite.name:
            raise SuiteError(f"--out {out_dir}: holds the results of suite {owner!r}, not {suite.name!r}; "
                             "choose another --out or remove it")
    elif out_dir.is_dir() and any(out_dir.iterdir()):
        raise SuiteError(f"--out {out_dir}: not empty and not a robustbench-ode run; choose another --out")


def _persistent(result: CellResult) -> bool:
    # A lost worker or an out-of-memory error says nothing about the cell: try it again next run.
    return result.status is not Status.OOM and not result.message.startswith("executor:")


def _record(store: CellStore, job: CellJob, result: CellResult, tests: list[TestPoint],
            report: RunReport) -> CellResult:
    key = job.cell.key
    if not _persistent(result):
        return result
    if job.retest:
        store.add_rows(key, result.rows)
        report.retested.append(key)
    else:
        store.save(result)
        report.trained.append(key)
    # what the table shows is what the store holds: a rerun rebuilds the very same table
    stored = store.load(key)
    return _assemble(stored, _resolved(tests, stored))


def _adapted_columns(stored: StoredCell) -> dict | None:
    """An adapted cell's final train steps / tol as stored; None for a cell that was not adapted."""
    row = stored.rows[0] if stored.rows else {}
    if str(row.get("adapted")).lower() not in ("true", "1", "1.0"):
        return None

    def number(key, cast):
        value = row.get(key)
        return None if value is None or value != value or value == "" else cast(float(value))

    return {"train_steps": number("train_steps", int), "train_tol": number("train_tol", float),
            "adapted": True}


def _resolved(tests: list[TestPoint], stored: StoredCell) -> list[TestPoint]:
    """An adapted cell's factor points follow its final step count / tolerance (cell.py)."""
    final = _adapted_columns(stored)
    if final is None:
        return tests
    train = next(p.spec for p in tests if p.is_train)
    return adapted_points(tests, replace(train, steps=final["train_steps"], rtol=final["train_tol"],
                                         atol=final["train_tol"]))


def _assemble(stored: StoredCell, tests: list[TestPoint]) -> CellResult:
    """The stored rows of today's test points, in grid order."""
    by_key = {row_key(r): r for r in stored.rows}
    result = stored.result()
    result.rows = [{**by_key[test_point_key(p)], **_test_columns(p)} for p in tests
                   if test_point_key(p) in by_key]
    return result


def _write_tables(report: RunReport, done: list[CellResult | None] | None = None) -> None:
    results = [r for r in (done if done is not None else report.results) if r is not None]
    rows = [row for res in results for row in res.rows]
    write_csv(results_frame(rows), report.out_dir / "results.csv")
    training = training_frame((res.cell.columns(), res.log) for res in results)
    write_csv(training, report.out_dir / "training.csv")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)
