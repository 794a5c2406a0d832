"""The critical step count of a plain model family: the researcher's own factory and training
loop, trained at each train step count, tested as the suites test, resumable as a suite is.

::

    result = rb.sweep(make_model, train_fn, data, steps=[2, 8, 32], seeds=[0, 1], out="runs/mine")
    result.critical      # critical.csv: both definitions (strict, adaptation), as a suite's

``make_model(seed) -> nn.Module`` builds a plain torchdiffeq model (its ``forward(x)`` calls
``torchdiffeq.odeint`` however it holds it, docs/substitution.md); ``train_fn(model, data)``
trains it in place with a plain PyTorch loop. For each (seed, steps) cell ``sweep``

1. seeds torch's global generator with the seed, calls ``make_model(seed)`` (moved to
   ``device``), seeds the generator again and calls ``train_fn(model, data)`` inside
   :func:`~robustbench_ode.harness.substitution.substituted` with the train configuration
   (``solver`` at ``steps`` steps over the model's time span): every solve the loop's forward
   passes start is solved that way, whatever the model's own ``method`` / ``step_size`` say;
2. tests the trained model on ``grid`` (default :data:`SWEEP_GRID`) with the evaluation
   :func:`robustbench_ode.benchmark` uses for plain models, rows in the results schema;
3. stores the cell in ``out/cells/<key>/`` (the suite's :class:`~.run.store.CellStore`: written
   then renamed, checksummed, a damaged cell moved aside and trained again). The key
   (:class:`~.harness.cell.FamilyCell`, harness/fingerprint.py) covers the step count, the seed,
   the solver, ``max_steps``, a fingerprint of ``make_model`` and ``train_fn`` (qualified names,
   source hash, defaults and closed-over values), the data's content and ``key=``; a re-run
   (after a kill, or with more steps or seeds) trains only the cells the store lacks, and tests a
   stored model only at grid points it lacks.

Then ``out/results.csv`` holds every cell's rows (in steps, seed order) and ``out/critical.csv``
the critical step count, from :func:`~.outputs.critical.critical_table` (the suites' one rule:
``strict``, tol 0.02, and ``adaptation``, tol 0.1, each with fixed and fixed+adaptive checks).

``data``: what ``train_fn`` receives, or a function ``seed -> data`` (per-seed data, as a suite's
generated datasets are). The test data: ``test_data`` (a pair ``(x, y)``, a DataSplits, a
DataLoader, or a function of the seed returning one), else ``data`` itself when it is a
DataSplits (its test split). ``threads``: the command line's thread budget, as in benchmark().
Seeds of one step count still to train are trained stacked where they can be
(:mod:`~.harness.lockstep`; ``stack=False`` turns it off; the key is the same either way), else
one by one; ``SweepResult.stacking`` / ``sweep.json`` say which, and why, per step count.
A failure in ``make_model`` or ``train_fn`` is the cell's status (``failed`` rows), not a crash; a
``train_fn`` that solves nothing under substitution is ``failed`` too (it trained no ODE).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from .benchmarking import as_data
from .config import ReferenceConfig, TestEntry, TrainEntry
from .core.context import resolve
from .core.errors import SuiteError
from .core.files import check_writable_dir, write_text
from .core.status import Status
from .datasets.base import DataSplits
from .harness.cell import CellRecord, CellResult, FamilyCell, InMemory
from .harness.evaluation import evaluate_points
from .harness.fingerprint import code_fingerprint, data_fingerprint, key_text
from .harness.grid import TestPoint
from .harness.inference import is_plain, validated
from .harness.lockstep import Lockstep, Unstackable, why_not
from .harness.substitution import substituted
from .outputs.critical import critical_table
from .outputs.tables import results_frame, write_csv
from .run.meta import environment, now, write_json
from .run.ownership import RunLock
from .run.store import CellStore, DamagedCell
from .run.threads import apply as apply_threads
from .run.threads import budget

log = logging.getLogger(__name__)

# The default test grid: the critical rule's checks (the train solver at 2x and 4x its steps, a
# higher-order solver at 1x ... 4x) and the adaptive reference points.
SWEEP_GRID: list[dict[str, Any]] = [
    {"solver": "euler", "step_factors": [1, 2, 4]},
    {"solver": "rk4", "step_factors": [1, 2, 4]},
    {"solver": "dopri5", "tol": [1e-3, 1e-5]},
]


@dataclass
class SweepResult:
    table: pd.DataFrame  # results.csv: one row per (cell, test point)
    critical: pd.DataFrame  # critical.csv: outputs/critical.py critical_table of the table
    out: Path  # the run folder
    trained: list[str] = field(default_factory=list)  # keys of the cells trained by this call
    loaded: list[str] = field(default_factory=list)  # keys of the cells read from the store
    # per step count trained by this call: "stacked" or "seed by seed: <why>" (also in sweep.json)
    stacking: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Job:
    cell: FamilyCell
    train_data: Any
    test: DataSplits


def _per_seed(value: Any, seed: int) -> Any:
    return value(seed) if callable(value) and not isinstance(value, nn.Module) else value


def _jobs(make_model, train_fn, data, test_data, steps, seeds, solver, max_steps, name, label,
          key) -> list[_Job]:
    """The cells, in (solver, steps, seed) order, with their data (validated: one line each)."""
    entry = validated("steps", lambda: TrainEntry(solver=solver, steps=steps))
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(set(seeds)) != len(seeds):
        raise SuiteError(f"seeds: a non-empty list of distinct integers, got {seeds!r:.60}")
    for what, fn in (("make_model", make_model), ("train_fn", train_fn)):
        if not callable(fn):
            raise SuiteError(f"{what}: must be callable, got {type(fn).__name__}")
    factory, trainer, extra = code_fingerprint(make_model), code_fingerprint(train_fn), key_text(key)
    splits = {}
    for seed in seeds:
        train_data = _per_seed(data, seed)
        given = _per_seed(test_data, seed)
        if given is None and not isinstance(train_data, DataSplits):
            raise SuiteError("test_data: required unless data is a DataSplits (its test split is used)")
        test = as_data(train_data if given is None else given)
        splits[seed] = (train_data, test, data_fingerprint(train_data, given))
    return [_Job(FamilyCell(dataset=name, model=label, factory=factory, train_fn=trainer, data=splits[s][2],
                            solver=entry.solver, steps=n, seed=s, max_steps=max_steps, key_extra=extra),
                 splits[s][0], splits[s][1])
            for n in entry.steps for s in seeds]


def _built(make_model: Callable[[int], nn.Module], seed: int, device: str) -> nn.Module:
    torch.manual_seed(seed)
    model = make_model(seed)
    if not isinstance(model, nn.Module) or not is_plain(model):
        raise SuiteError(f"make_model: must return a plain torchdiffeq nn.Module (forward calls "
                         f"odeint), got {type(model).__name__}")
    return model.to(device)


def _train(job: _Job, make_model, train_fn, device: str) -> tuple[CellRecord, nn.Module | None]:
    """Build and train one cell's model under substitution; its record (status, seconds)."""
    record = CellRecord.planned(job.cell)
    t0 = time.perf_counter()
    model = None
    try:
        model = _built(make_model, job.cell.seed, device)
        torch.manual_seed(job.cell.seed)
        with substituted(job.cell.train_spec, keep=False) as probe:
            model.train()
            train_fn(model, job.train_data)
        status, message = Status.OK, ""
        if probe.solves == 0:
            status, message = Status.FAILED, "train_fn made no torchdiffeq odeint call: no ODE was trained"
    except SuiteError:
        raise
    except Exception as exc:  # noqa: BLE001 - the researcher's code failing is this cell's status
        status, message = Status.from_exception(exc)
    seconds = time.perf_counter() - t0
    weights = (InMemory({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
               if model is not None and status is Status.OK else None)
    return replace(record, status=status, message=message, seconds=seconds, weights=weights), model


def _train_stacked(jobs: list[_Job], make_model, train_fn, device: str) -> tuple[dict[str, tuple], str]:
    """One step count's seeds trained stacked (harness/lockstep.py): each cell's (record, model) by
    key and "stacked", or nothing and why not (the cells then train seed by seed)."""
    t0 = time.perf_counter()
    try:
        models = [_built(make_model, j.cell.seed, device) for j in jobs]
    except SuiteError:
        raise
    except Exception as exc:  # noqa: BLE001 - seed by seed reports the failure as the cell's status
        return {}, f"make_model raised {type(exc).__name__}"
    why = why_not(models, jobs[0].cell.solver)
    if why is not None:
        return {}, why
    try:
        with substituted(jobs[0].cell.train_spec, keep=False) as probe:
            for model in models:
                model.train()
            Lockstep(models).train(train_fn, [j.train_data for j in jobs], [j.cell.seed for j in jobs])
    except Unstackable as exc:
        return {}, str(exc)
    status, message = Status.OK, ""
    if probe.solves == 0:
        status, message = Status.FAILED, "train_fn made no torchdiffeq odeint call: no ODE was trained"
    seconds = (time.perf_counter() - t0) / len(jobs)  # each cell's share of the stacked training
    out = {}
    for job, model in zip(jobs, models):
        weights = (InMemory({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
                   if status is Status.OK else None)
        out[job.cell.key] = (replace(CellRecord.planned(job.cell), status=status, message=message,
                                     seconds=seconds, weights=weights), model)
    return out, "stacked"


def _stacking(store: CellStore, jobs: list[_Job], make_model, train_fn, device: str,
              stack: bool) -> tuple[dict[str, tuple], dict[str, str]]:
    """The cells trained stacked (by key) and, per step count with seeds to train, how they
    trained: "stacked" or why seed by seed."""
    trained, how = {}, {}
    for n in dict.fromkeys(j.cell.steps for j in jobs):
        pending = [j for j in jobs if j.cell.steps == n and not store.has(j.cell.key)]
        if not pending:
            continue
        if not stack or len(pending) < 2:
            how[str(n)] = "seed by seed: " + ("stack=False" if not stack else "one seed to train")
            continue
        done, why = _train_stacked(pending, make_model, train_fn, device)
        trained.update(done)
        how[str(n)] = why if done else f"seed by seed: {why}"
        if not done:
            log.info("steps=%d: seeds trained one by one (%s)", n, why)
    return trained, how


def _rows(record: CellRecord, model: nn.Module | None, test: DataSplits, points: list[TestPoint],
          batch_size: int, device: str) -> list[dict[str, Any]]:
    ok = record.status is Status.OK and model is not None
    outcomes = (evaluate_points(model, test, points, batch_size, device, plain=True) if ok
                else [None] * len(points))
    return [record.row(p, o) for p, o in zip(points, outcomes)]


def _stored(store: CellStore, job: _Job, make_model, points, batch_size, device) -> CellResult | None:
    """The stored cell on today's grid (tested at the points it lacks), or None: train it."""
    key = job.cell.key
    if not store.has(key):
        return None
    try:
        stored = store.load(key)
    except DamagedCell as exc:
        log.warning("cell %s (%s) is damaged: %s; moved aside, trained again", key, job.cell.label(),
                    exc.reason)
        store.quarantine(key, exc.reason)
        return None
    missing = stored.missing(points)
    if missing and stored.status is Status.OK and stored.record.weights is not None:
        model = _built(make_model, job.cell.seed, device)
        model.load_state_dict(stored.record.weights.load())
        store.add_rows(key, _rows(stored.record, model, job.test, missing, batch_size, device))
        stored = store.load(key)
    return stored.on(points)


def _run_cell(store: CellStore, job: _Job, make_model, train_fn, entries, ref, batch_size,
              device, stacked: dict[str, tuple]) -> tuple[CellResult, bool]:
    """One cell's result and whether it was trained now (``stacked``: the cells trained so)."""
    points = CellRecord.planned(job.cell).grid(entries, ref)
    stored = _stored(store, job, make_model, points, batch_size, device)
    if stored is not None:
        return stored, False
    record, model = stacked.get(job.cell.key) or _train(job, make_model, train_fn, device)
    result = CellResult(record, _rows(record, model, job.test, points, batch_size, device))
    if record.storable:
        store.save(result)
    log.info("cell %s (%s): trained, %s", job.cell.key, job.cell.label(), record.status.value)
    return result, True


def sweep(make_model: Callable[[int], nn.Module], train_fn: Callable[[nn.Module, Any], None], data: Any, *,
          steps: list[int], seeds: list[int] = (0,), out: str | Path, solver: str = "euler",
          test_data: Any = None, grid: list[dict[str, Any]] | None = None,
          reference: dict[str, Any] | None = None, batch_size: int = 1000, max_steps: int = 10_000,
          device: str = "cpu", name: str = "custom", model_label: str | None = None, key: Any = None,
          threads: int | None = None, stack: bool = True) -> SweepResult:
    """Train ``make_model``'s family with ``train_fn`` at each of ``steps`` (with ``solver``) and
    seed, test each model on ``grid``, and report the critical step count (module docstring).
    ``name`` / ``model_label``: the ``dataset`` / ``model`` columns (default ``custom`` and the
    factory's name); ``key``: any JSON value added to every cell's key (what the fingerprints do
    not see: code the factory calls, a version). Bad arguments are one-line SuiteErrors."""
    apply_threads(budget(1, threads))  # the CLI's thread budget (run/threads.py), as benchmark() applies it
    device = resolve(device).device
    label = model_label or getattr(make_model, "__name__", type(make_model).__name__)
    jobs = _jobs(make_model, train_fn, data, test_data, list(steps) if isinstance(steps, (list, tuple))
                 else steps, seeds, solver, max_steps, name, label, key)
    entries = [validated(f"grid.{i}", lambda e=e: TestEntry(**e))
               for i, e in enumerate(SWEEP_GRID if grid is None else grid)]
    ref = validated("reference", lambda: ReferenceConfig(**(reference or {})))
    out = Path(out)
    check_writable_dir(out, "out")
    with RunLock(out):
        store = CellStore(out, FamilyCell)
        store.clean()
        results, trained = [], []
        stacked, stacking = _stacking(store, jobs, make_model, train_fn, device, stack)
        for job in jobs:
            result, now_trained = _run_cell(store, job, make_model, train_fn, entries, ref, batch_size,
                                            device, stacked)
            results.append(result)
            if now_trained:
                trained.append(job.cell.key)
        table = results_frame(row for r in results for row in r.rows)
        critical = critical_table(table)
        write_csv(table, out / "results.csv")
        write_csv(critical, out / "critical.csv")
        asked = {"name": name, "model": label, "solver": solver, "steps": list(steps), "seeds": list(seeds),
                 "factory": jobs[0].cell.factory, "train_fn": jobs[0].cell.train_fn, "key": key_text(key),
                 "test": [e.model_dump(exclude_none=True) for e in entries],
                 "cells": [j.cell.key for j in jobs], "stacking": stacking}
        write_text(out / "sweep.json", json.dumps(asked, indent=2))
        write_json(out / "meta.json", {"suite": name, "finished": now(), **environment(device)})
    loaded = [j.cell.key for j in jobs if j.cell.key not in trained]
    return SweepResult(table, critical, out, trained, loaded, stacking)
