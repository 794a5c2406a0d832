"""The one builder of result rows: every row has every column of the declared schema
(:data:`robustbench_ode.core.schema.RESULTS`), whether it comes from a trained model's test, a
skipped test of a model that did not train, a lost job or ``benchmark()``."""

from __future__ import annotations

from typing import Any

from ..core.schema import RESULT_NAMES
from ..core.status import Status
from ..models.spec import SolveSpec
from .grid import TestPoint


def identity(key: str, dataset: str, model: str, training: str, seed: int,
             trained: SolveSpec) -> dict[str, Any]:
    """The columns naming the trained model a row belongs to (schema.CELL_COLUMNS), built here
    only: for a suite's cell (harness/cell.py) and for ``benchmark()``'s model alike."""
    return {"cell": key, "dataset": dataset, "model": model, "training": training, "seed": seed,
            "train_solver": trained.solver, "train_steps": trained.steps,
            "train_tol": trained.rtol}


def result_row(ident: dict[str, Any], point: TestPoint, outcome: dict[str, Any] | Exception | None, *,
               train_status: Status, train_message: str = "", train_seconds: float = 0.0,
               adapted: bool = False, why_skipped: str = "") -> dict[str, Any]:
    """One test point's row. ``ident``: the cell's columns (an adapted cell's final train steps /
    tol in place of the configured ones). ``outcome``: the evaluation's columns, the exception it
    raised, or None when the model was not tested (``why_skipped`` then says why)."""
    row = dict.fromkeys(RESULT_NAMES)
    row.update(ident)
    row.update(point.columns())
    row["adapted"] = bool(adapted)
    if outcome is None:
        row.update(status=Status.SKIPPED.value, message=why_skipped or f"training: {train_status.value}")
    elif isinstance(outcome, Exception):
        status, message = Status.from_exception(outcome)
        row.update(status=status.value, message=message)
    else:
        unknown = set(outcome) - set(RESULT_NAMES)
        if unknown:
            raise KeyError(f"result columns not in the schema: {sorted(unknown)}")
        row.update(outcome)
    row.update(train_status=train_status.value, train_message=train_message,
               train_seconds=round(float(train_seconds), 3))
    return row


def lost_rows(ident: dict[str, Any], points: list[TestPoint], why: str) -> list[dict[str, Any]]:
    """Rows of a job the infrastructure lost (a dead worker): status lost, with the reason."""
    rows = []
    for p in points:
        row = result_row(ident, p, None, train_status=Status.LOST, train_message=why)
        row.update(status=Status.LOST.value, message=why)
        rows.append(row)
    return rows
