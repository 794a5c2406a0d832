"""Training and testing cells: the one-cell harness (also for a seed-stacked group of cells) and
the re-test of a stored model at test points it lacks.

Which cells train together is decided before, in planning (:mod:`.grouping`, run/jobs.py): the
cells :func:`run_cells` is given train as one stacked model when there are several. Never raises
for a failing model: divergence, solver failures and exceptions become statuses.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Protocol

import torch

from ..config import DiagnosticsConfig, ReferenceConfig, TestEntry
from ..core.context import CPU, ExecutionContext
from ..core.progress import Enabled, test_bar
from ..core.status import Status
from ..models.stacked import can_stack
from ..training.forward import PlainForward, StackedForward
from ..training.loop import Member, TrainOutcome, train
from .analysis import analyse
from .build import build_model, load_data
from .cell import CellConfig, CellRecord, CellResult, InMemory
from .evaluation import Tick, evaluate_points, evaluate_stacked
from .grid import TestPoint

Built = tuple[torch.nn.Module, Any]  # a cell's model (on the device) and its data


class Checkpoints(Protocol):
    """Where a cell's mid-training checkpoints go (the run's store provides one per cell)."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


def trained(record: CellRecord, outcome: TrainOutcome, seconds: float) -> CellRecord:
    """The record after training: its outcome, and the train configuration the model ended at
    (an adapted cell's final steps / tolerance)."""
    at = record.trained_at
    if outcome.adapted:
        at = replace(at, steps=outcome.final_steps, rtol=outcome.final_tol, atol=outcome.final_tol)
    return replace(record, trained_at=at, status=outcome.status, message=outcome.message,
                   seconds=seconds, adapted=outcome.adapted)


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _build(record: CellRecord, device: str) -> tuple[Built | None, CellRecord]:
    try:
        data = load_data(record.cell)
        return (build_model(record.cell, data).to(device), data), record
    except Exception as exc:  # noqa: BLE001 - any crash becomes a status of this cell
        status, message = Status.from_exception(exc)
        return None, replace(record, status=status, message=message)


def _train(group: list[int], records: list[CellRecord], built: list[Built | None],
           checkpoints: list[Checkpoints | None], device: str, progress: Enabled) -> dict[int, list]:
    """Train the cells ``group`` (one, or several as one stacked model); their records are
    updated in place, their logs returned."""
    first = records[group[0]].cell
    members = [Member(built[i][1], records[i].cell.seed,
                      checkpoints[i].load() if checkpoints[i] is not None else None,
                      checkpoints[i].save if checkpoints[i] is not None else None) for i in group]
    t0 = time.perf_counter()
    try:
        if len(group) > 1:
            forward = StackedForward([built[i][0] for i in group], device)
        else:
            forward = PlainForward(built[group[0]][0], first.training, device, first.seed)
        outcomes = train(forward, members, first.train_spec, first.training, progress=progress,
                         desc=_desc(first, len(group)))
    except Exception as exc:  # noqa: BLE001 - a crash in training is each member's status
        status, message = Status.from_exception(exc)
        outcomes = [TrainOutcome(status, message) for _ in group]
    seconds = (time.perf_counter() - t0) / len(group)
    for i, outcome in zip(group, outcomes):
        records[i] = trained(records[i], outcome, seconds)
        if outcome.state_dict is not None and len(group) > 1:
            built[i][0].load_state_dict(outcome.state_dict)
    return {i: outcome.log for i, outcome in zip(group, outcomes)}


def _desc(cell: CellConfig, seeds: int) -> str:
    """A unit's name on its progress bars: the cell, and how many seeds train stacked with it."""
    return cell.label() + (f" +{seeds - 1} stacked" if seeds > 1 else "")


def _tested(record: CellRecord, built: Built | None) -> bool:
    return record.status is Status.OK and built is not None


def _test(record: CellRecord, built: Built | None, points: list[TestPoint], device: str,
          outcomes: list | None = None, tick: Tick | None = None) -> list[dict[str, Any]]:
    """The record's rows; ``outcomes``: its evaluations when already made (with its seed group's)."""
    if outcomes is None:
        outcomes = (evaluate_points(built[0], built[1], points, record.cell.training.eval_batch_size,
                                    device, tick=tick) if _tested(record, built) else [None] * len(points))
    return [record.row(p, o) for p, o in zip(points, outcomes)]


def _diagnose(record: CellRecord, built: Built | None, cfg: DiagnosticsConfig | None,
              reference: ReferenceConfig, device: str) -> dict[str, Any] | None:
    if cfg is None or not cfg.enabled or built is None or record.status is not Status.OK:
        return None
    return analyse(built[0], built[1], record.trained_at, cfg, reference, device)


def run_cells(cells: list[CellConfig], entries: list[TestEntry], reference: ReferenceConfig, *,
              context: ExecutionContext = CPU,
              checkpoints: list[Checkpoints | None] | None = None, progress: Enabled = False,
              diagnostics: DiagnosticsConfig | None = None) -> list[CellResult]:
    """Train the cells' models (several: as one stacked model, the seeds of one configuration
    that planning grouped), test each on the grid of ``entries`` at the configuration it ended
    at, and diagnose it (when ``diagnostics`` is given and enabled). ``progress``: the unit's
    training and test bars (core/progress.py)."""
    device = context.device
    checkpoints = checkpoints or [None] * len(cells)
    records, built = [], []
    for cell in cells:
        model, record = _build(CellRecord.planned(cell), device)
        records.append(record)
        built.append(model)
    group = [i for i, b in enumerate(built) if b is not None and not cells[i].model.checkpoint]
    logs = _train(group, records, built, checkpoints, device, progress) if group else {}
    evaluated: dict[int, list] = {}
    ok = [i for i in group if records[i].status is Status.OK]
    rows_due = sum(len(r.grid(entries, reference)) for r, b in zip(records, built) if _tested(r, b))
    with test_bar(rows_due, _desc(cells[0], len(ok) or 1), progress) as bar:
        # a stacked group's seeds with a hand-written stacked form are also tested as one stacked model
        if len(ok) > 1 and all(can_stack(built[i][0]) for i in ok):
            points = records[ok[0]].grid(entries, reference)
            rows = evaluate_stacked([built[i][0] for i in ok], [built[i][1] for i in ok], points,
                                    cells[ok[0]].training.eval_batch_size, device, tick=bar.update)
            evaluated.update(zip(ok, rows))
        results = []
        for i, (record, b) in enumerate(zip(records, built)):
            if b is not None:
                record = replace(record, weights=InMemory(_cpu(b[0].state_dict())))
            rows = _test(record, b, record.grid(entries, reference), device, evaluated.get(i), bar.update)
            results.append(CellResult(record, rows, logs.get(i, []),
                                      _diagnose(record, b, diagnostics, reference, device)))
    return results


def retest(record: CellRecord, points: list[TestPoint], *, context: ExecutionContext = CPU,
           diagnostics: DiagnosticsConfig | None = None,
           reference: ReferenceConfig | None = None, progress: Enabled = False) -> CellResult:
    """Rows for the test points a stored model lacks, without retraining it; its diagnosis too
    when ``diagnostics`` (and the suite's ``reference``) are given."""
    device = context.device
    built = None
    if record.status is Status.OK and record.weights is not None:
        try:
            data = load_data(record.cell)
            model = build_model(record.cell, data)
            model.load_state_dict(record.weights.load())
            built = (model.to(device), data)
        except Exception as exc:  # noqa: BLE001 - a model that cannot be rebuilt is a failure
            status, message = Status.from_exception(exc)
            record = replace(record, status=status, message=message)
    with test_bar(len(points) if _tested(record, built) else 0, _desc(record.cell, 1), progress) as bar:
        rows = _test(record, built, points, device, tick=bar.update)
    diagnosis = _diagnose(record, built, diagnostics, reference, device) if reference is not None else None
    return CellResult(record, rows, [], diagnosis)
