"""Units of work an executor runs: train-and-test cells (one, or a seed-stacked group) or re-test a
stored model at test points it lacks.

Units are plain picklable values, so the same unit runs in-process, in a spawned worker process
or as a Ray task. Every unit declares the cells it covers and returns one
:class:`~robustbench_ode.harness.cell.CellResult` per cell; the driver writes them to the store,
so workers need no shared file system for results (mid-training checkpoints do use
``store_root`` when the workers can see it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from ..config import DiagnosticsConfig, ReferenceConfig, TestEntry
from ..core.status import Status
from ..harness.cell import CellConfig, CellResult
from ..harness.cost import cell_cost
from ..harness.execution import retest, run_cells
from ..harness.grid import TestPoint
from ..harness.grouping import stack_key
from ..harness.rows import lost_rows
from ..models.spec import SolveSpec
from .store import CellStore


class Unit(Protocol):
    """What an executor runs: ``cells`` it covers, ``run()`` one result per cell, in order."""

    cells: tuple[CellConfig, ...]

    @property
    def weight(self) -> float:
        """Its estimated cost in seconds (harness/cost.py): pools start the costliest first."""
        ...

    def run(self) -> list[CellResult]: ...

    def lost(self, why: str) -> list[CellResult]: ...


@dataclass(frozen=True)
class TrainJob:
    """Train and test ``cells`` (several: seeds of one configuration, trained stacked)."""

    cells: tuple[CellConfig, ...]
    entries: tuple[TestEntry, ...]
    reference: ReferenceConfig
    device: str = "cpu"
    store_root: str | None = None  # where checkpoints go; None: no checkpoints
    points: tuple[tuple[TestPoint, ...], ...] = ()  # each cell's grid as planned (for lost rows)
    diagnostics: DiagnosticsConfig | None = None

    @property
    def weight(self) -> float:
        points = self.points or tuple(() for _ in self.cells)
        return sum(cell_cost(c, list(p)).seconds for c, p in zip(self.cells, points))

    def run(self) -> list[CellResult]:
        checkpoints = None
        if self.store_root is not None:
            store = CellStore(Path(self.store_root))
            for cell in self.cells:
                store.mark_running(cell.key)
            checkpoints = [store.checkpoint(c.key) for c in self.cells]
        return run_cells(list(self.cells), list(self.entries), self.reference, device=self.device,
                         checkpoints=checkpoints, diagnostics=self.diagnostics)

    def lost(self, why: str) -> list[CellResult]:
        return [_lost(c, list(p), why) for c, p in zip(self.cells, self.points)]


@dataclass(frozen=True)
class RetestJob:
    """Test a stored model (or a stored failed training) at the points it lacks; diagnose it when
    ``diagnostics`` is given (its diagnosis is missing or was computed with other settings)."""

    cell: CellConfig
    points: tuple[TestPoint, ...]
    trained_at: SolveSpec
    status: Status
    message: str
    train_seconds: float
    adapted: bool
    state_dict: dict[str, torch.Tensor] | None = None
    device: str = "cpu"
    diagnostics: DiagnosticsConfig | None = None
    reference: ReferenceConfig | None = None

    @property
    def cells(self) -> tuple[CellConfig, ...]:
        return (self.cell,)

    @property
    def weight(self) -> float:
        return cell_cost(self.cell, list(self.points)).test_seconds

    def run(self) -> list[CellResult]:
        return [retest(self.cell, self.state_dict, list(self.points), status=self.status,
                       message=self.message, train_seconds=self.train_seconds,
                       trained=self.trained_at, adapted=self.adapted, device=self.device,
                       diagnostics=self.diagnostics, reference=self.reference)]

    def lost(self, why: str) -> list[CellResult]:
        return [_lost(self.cell, list(self.points), why)]


def _lost(cell: CellConfig, points: list[TestPoint], why: str) -> CellResult:
    """A cell the infrastructure lost: one failed row per test point, so the table shows it."""
    message = f"executor: {why}"[:300]
    return CellResult(cell, Status.FAILED, message, rows=lost_rows(cell.columns(), points, message),
                      trained_at=cell.train_spec)


def costliest_first(units: list[Unit]) -> list[int]:
    """Indices of ``units``, the costliest first (ties in suite order). A pool that starts the
    longest units first finishes sooner than one that meets them last: the greedy longest-first
    rule is within 4/3 of the best split over the workers."""
    return sorted(range(len(units)), key=lambda i: -units[i].weight)


def run_unit(unit: Unit) -> list[CellResult]:
    """Module-level entry point (what process pools and Ray pickle by reference)."""
    return unit.run()


def plan_training(cells: list[CellConfig], points: list[list[TestPoint]], entries: list[TestEntry],
                  reference: ReferenceConfig, device: str, store_root: str | None,
                  diagnostics: DiagnosticsConfig | None = None) -> list[tuple[list[int], TrainJob]]:
    """Train jobs for ``cells``, each with the indices of the cells it covers: seeds of one
    configuration together (harness/grouping.py), every other cell alone, in the order of their
    first cell. Cells with checkpoints from an earlier run stack only if the checkpoints continue
    from one iteration (the harness checks, and otherwise trains them one by one)."""
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
    return [(members, TrainJob(tuple(cells[i] for i in members), tuple(entries), reference, device,
                               store_root, tuple(tuple(points[i]) for i in members), diagnostics))
            for members in order]
