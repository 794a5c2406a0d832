"""Units of work an executor runs: train-and-test cells (one, or a seed-stacked group) or re-test a
stored model at test points it lacks.

Units are plain picklable values, so the same unit runs in-process, in a spawned worker process
or as a Ray task. Every unit carries the records of the cells it covers
(:class:`~robustbench_ode.harness.cell.CellRecord`) and the run's execution context, and returns
one :class:`~robustbench_ode.harness.cell.CellResult` per cell; the driver writes them to the
store, so workers need no shared file system for results (mid-training checkpoints do use
``store_root`` when the workers can see it).

Which cells train together is decided here, once, in planning (:func:`plan_training`): the
seeds of one configuration that :func:`~robustbench_ode.harness.grouping.stack_key` groups, and
whose checkpoints (if any) continue from one iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import DiagnosticsConfig, ReferenceConfig, TestEntry
from ..core.context import CPU, ExecutionContext
from ..core.progress import Enabled
from ..harness.cell import CellConfig, CellRecord, CellResult
from ..harness.cost import cell_cost
from ..harness.execution import retest, run_cells
from ..harness.grid import TestPoint
from ..harness.grouping import stack_key
from . import threads as thread_budget
from .store import CellStore


class Unit(Protocol):
    """What an executor runs: the ``records`` of the cells it covers, ``run()`` one result per
    cell, in order."""

    records: tuple[CellRecord, ...]

    @property
    def cells(self) -> tuple[CellConfig, ...]: ...

    @property
    def weight(self) -> float:
        """Its estimated cost in seconds (harness/cost.py): pools start the costliest first."""
        ...

    def run(self) -> list[CellResult]: ...

    def lost(self, why: str) -> list[CellResult]: ...


def _apply(context: ExecutionContext) -> None:
    if context.threads is not None:  # where the unit runs: this process, a pool worker, a Ray task
        thread_budget.apply(context.threads)


@dataclass(frozen=True)
class TrainJob:
    """Train and test the cells of ``records`` (several: seeds of one configuration, trained as
    one stacked model), each record as planned: at its configured train solve."""

    records: tuple[CellRecord, ...]
    entries: tuple[TestEntry, ...]
    reference: ReferenceConfig
    context: ExecutionContext = CPU
    store_root: str | None = None  # where checkpoints go; None: no checkpoints
    diagnostics: DiagnosticsConfig | None = None
    progress: Enabled = False  # its training and test bars (core/progress.py); the runner sets it

    @property
    def cells(self) -> tuple[CellConfig, ...]:
        return tuple(r.cell for r in self.records)

    @property
    def weight(self) -> float:
        return sum(cell_cost(r.cell, r.grid(self.entries, self.reference)).seconds for r in self.records)

    def run(self) -> list[CellResult]:
        _apply(self.context)
        checkpoints = None
        if self.store_root is not None:
            store = CellStore(Path(self.store_root))
            for cell in self.cells:
                store.mark_running(cell.key)
            checkpoints = [store.checkpoint(c.key) for c in self.cells]
        return run_cells(list(self.cells), list(self.entries), self.reference, context=self.context,
                         checkpoints=checkpoints, diagnostics=self.diagnostics, progress=self.progress)

    def lost(self, why: str) -> list[CellResult]:
        return [r.lost(r.grid(self.entries, self.reference), why) for r in self.records]


@dataclass(frozen=True)
class RetestJob:
    """Test a stored model (or a stored failed training) at the points it lacks; diagnose it when
    ``diagnostics`` is given (its diagnosis is missing or was computed with other settings)."""

    record: CellRecord  # as stored, its weights in memory (a worker may not see the store)
    points: tuple[TestPoint, ...]
    context: ExecutionContext = CPU
    diagnostics: DiagnosticsConfig | None = None
    reference: ReferenceConfig | None = None
    progress: Enabled = False  # its test bar (core/progress.py); the runner sets it

    @property
    def records(self) -> tuple[CellRecord, ...]:
        return (self.record,)

    @property
    def cells(self) -> tuple[CellConfig, ...]:
        return (self.record.cell,)

    @property
    def weight(self) -> float:
        return cell_cost(self.record.cell, list(self.points)).test_seconds

    def run(self) -> list[CellResult]:
        _apply(self.context)
        return [retest(self.record, list(self.points), context=self.context, diagnostics=self.diagnostics,
                       reference=self.reference, progress=self.progress)]

    def lost(self, why: str) -> list[CellResult]:
        return [self.record.lost(list(self.points), why)]


def costliest_first(units: list[Unit]) -> list[int]:
    """Indices of ``units``, the costliest first (ties in suite order). A pool that starts the
    longest units first finishes sooner than one that meets them last: the greedy longest-first
    rule is within 4/3 of the best split over the workers."""
    return sorted(range(len(units)), key=lambda i: -units[i].weight)


def run_unit(unit: Unit) -> list[CellResult]:
    """Module-level entry point (what process pools and Ray pickle by reference)."""
    return unit.run()


def stacked_groups(cells: list[CellConfig],
                   resumes_at: Callable[[CellConfig], int] | None = None) -> list[list[int]]:
    """The indices of ``cells`` in training groups, in the order of their first cell: seeds of one
    configuration together (harness/grouping.py), every other cell alone. ``resumes_at``: the
    iteration a cell's checkpoint continues at; a group whose cells would resume at different
    iterations trains one cell at a time (a stack resumes from one iteration)."""
    groups: dict[str, list[int]] = {}
    order: list[list[int]] = []
    for i, cell in enumerate(cells):
        key = stack_key(cell)
        if key is None:
            order.append([i])
        elif key in groups:
            groups[key].append(i)
        else:
            groups[key] = [i]
            order.append(groups[key])
    out = []
    for members in order:
        starts = {resumes_at(cells[i]) for i in members} if resumes_at and len(members) > 1 else {0}
        out += [members] if len(starts) == 1 else [[i] for i in members]
    return out


def plan_training(cells: list[CellConfig], entries: list[TestEntry], reference: ReferenceConfig,
                  context: ExecutionContext, store: CellStore | None = None,
                  diagnostics: DiagnosticsConfig | None = None) -> list[tuple[list[int], TrainJob]]:
    """Train jobs for ``cells``, each with the indices of the cells it covers
    (:func:`stacked_groups`; ``store``: where checkpoints are, None: none)."""
    resumes_at = (lambda cell: store.checkpoint(cell.key).iteration()) if store is not None else None
    root = str(store.root.resolve()) if store is not None else None
    return [(members, TrainJob(tuple(CellRecord.planned(cells[i]) for i in members), tuple(entries),
                               reference, context, root, diagnostics))
            for members in stacked_groups(cells, resumes_at)]
