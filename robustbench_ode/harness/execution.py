"""Training and testing cells: the one-cell harness (also for a seed-stacked group of cells) and
the re-test of a stored model at test points it lacks.

Never raises for a failing model: divergence, solver failures and exceptions become statuses.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Protocol

import torch

from ..config import DiagnosticsConfig, ReferenceConfig, TestEntry
from ..core.status import Status
from ..models.spec import SolveSpec
from ..models.stacked import can_stack
from ..training.forward import PlainForward, StackedForward
from ..training.loop import Member, TrainOutcome, train
from .analysis import analyse
from .build import build_model, load_data
from .cell import CellConfig, CellResult
from .evaluation import evaluate_points, evaluate_stacked
from .grid import TestPoint, grid_points
from .rows import result_row


class Checkpoints(Protocol):
    """Where a cell's mid-training checkpoints go (the run's store provides one per cell)."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


def trained_at(cell: CellConfig, outcome: TrainOutcome) -> SolveSpec:
    """The train configuration the model ended at: an adapted cell's final steps / tolerance."""
    if not outcome.adapted:
        return cell.train_spec
    return replace(cell.train_spec, steps=outcome.final_steps, rtol=outcome.final_tol,
                   atol=outcome.final_tol)


def _cpu(state: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    return None if state is None else {k: v.detach().cpu().clone() for k, v in state.items()}


def _test(cell: CellConfig, model, data, points: list[TestPoint], result: CellResult,
          device: str, outcomes: list | None = None) -> list[dict[str, Any]]:
    """The cell's rows; ``outcomes``: its evaluations when already made (with its seed group's)."""
    ident = {**cell.columns(), "train_steps": result.trained_at.steps, "train_tol": result.trained_at.rtol}
    trained = result.status is Status.OK and model is not None
    if outcomes is None:
        outcomes = (evaluate_points(model, data, points, cell.training.eval_batch_size, device)
                    if trained else [None] * len(points))
    return [result_row(ident, p, o, train_status=result.status, train_message=result.message,
                       train_seconds=result.train_seconds, adapted=result.adapted)
            for p, o in zip(points, outcomes)]


def run_cells(cells: list[CellConfig], entries: list[TestEntry], reference: ReferenceConfig, *,
              device: str = "cpu", checkpoints: list[Checkpoints | None] | None = None,
              progress: bool = False, diagnostics: DiagnosticsConfig | None = None) -> list[CellResult]:
    """Train the cells' models, test each on the grid of ``entries`` and diagnose it (when
    ``diagnostics`` is given and enabled). Several cells (seeds of one configuration, see
    :mod:`.grouping`) train as one stacked model; one cell alone."""
    checkpoints = checkpoints or [None] * len(cells)
    results = [CellResult(c, Status.OK, trained_at=c.train_spec) for c in cells]
    built: list[tuple[Any, Any] | None] = []
    for cell, result in zip(cells, results):
        try:
            data = load_data(cell)
            built.append((build_model(cell, data).to(device), data))
        except Exception as exc:  # noqa: BLE001 - any crash becomes a status of this cell
            result.status, result.message = Status.from_exception(exc)
            built.append(None)
    todo = [i for i, b in enumerate(built) if b is not None and not cells[i].model.checkpoint]
    resumes = {i: checkpoints[i].load() if checkpoints[i] is not None else None for i in todo}
    # a stack resumes only from checkpoints all at one iteration; otherwise each cell alone
    starts = {int(r["iteration"]) if r is not None else 0 for r in resumes.values()}
    stacked = len(todo) > 1 and len(starts) == 1 and all(can_stack(built[i][0]) for i in todo)
    groups = [todo] if stacked else [[i] for i in todo]
    for group in groups:
        first = cells[group[0]]
        members = [Member(built[i][1], cells[i].seed, resumes[i],
                          checkpoints[i].save if checkpoints[i] is not None else None) for i in group]
        t0 = time.perf_counter()
        try:
            if len(group) > 1:
                forward = StackedForward([built[i][0] for i in group], device)
            else:
                forward = PlainForward(built[group[0]][0], first.training, device, first.seed)
            outcomes = train(forward, members, first.train_spec, first.training, device=device,
                             progress=progress, desc=first.label())
        except Exception as exc:  # noqa: BLE001 - a crash in training is each member's status
            status, message = Status.from_exception(exc)
            outcomes = [TrainOutcome(status, message) for _ in group]
        seconds = (time.perf_counter() - t0) / len(group)
        for i, outcome in zip(group, outcomes):
            result = results[i]
            result.status, result.message, result.log = outcome.status, outcome.message, outcome.log
            result.train_seconds, result.adapted = seconds, outcome.adapted
            result.trained_at = trained_at(cells[i], outcome)
            if outcome.state_dict is not None and len(group) > 1:
                built[i][0].load_state_dict(outcome.state_dict)
    evaluated: dict[int, list] = {}
    for group in groups:  # a stacked group's seeds are also tested as one stacked model
        ok = [i for i in group if results[i].status is Status.OK]
        if len(group) > 1 and len(ok) > 1:
            cell = cells[ok[0]]
            points = grid_points(entries, reference, results[ok[0]].trained_at, cell.training.max_steps)
            rows = evaluate_stacked([built[i][0] for i in ok], [built[i][1] for i in ok], points,
                                    cell.training.eval_batch_size, device)
            evaluated.update(zip(ok, rows))
    for i, (cell, result, b) in enumerate(zip(cells, results, built)):
        model, data = b if b is not None else (None, None)
        if model is not None:
            result.state_dict = _cpu(model.state_dict())
        points = grid_points(entries, reference, result.trained_at, cell.training.max_steps)
        result.rows = _test(cell, model, data, points, result, device, evaluated.get(i))
        result.diagnosis = _diagnose(model, data, result, diagnostics, reference, device)
    return results


def _diagnose(model, data, result: CellResult, cfg: DiagnosticsConfig | None, reference: ReferenceConfig,
              device: str) -> dict[str, Any] | None:
    if cfg is None or not cfg.enabled or model is None or result.status is not Status.OK:
        return None
    return analyse(model, data, result.trained_at, cfg, reference, device)


def retest(cell: CellConfig, state_dict: dict[str, torch.Tensor] | None, points: list[TestPoint], *,
           status: Status, message: str, train_seconds: float, trained: SolveSpec, adapted: bool,
           device: str = "cpu", diagnostics: DiagnosticsConfig | None = None,
           reference: ReferenceConfig | None = None) -> CellResult:
    """Rows for the test points a stored model lacks, without retraining it; its diagnosis too
    when ``diagnostics`` is given."""
    result = CellResult(cell, status, message, train_seconds=train_seconds, adapted=adapted,
                        trained_at=trained)
    model = data = None
    if status is Status.OK and state_dict is not None:
        try:
            data = load_data(cell)
            model = build_model(cell, data)
            model.load_state_dict(state_dict)
            model.to(device)
        except Exception as exc:  # noqa: BLE001 - a model that cannot be rebuilt is a failure
            result.status, result.message = Status.from_exception(exc)
            model = None
    result.rows = _test(cell, model, data, points, result, device)
    if reference is not None:
        result.diagnosis = _diagnose(model, data, result, diagnostics, reference, device)
    return result
