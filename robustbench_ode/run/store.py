"""The cell store: every finished cell under ``DIR/cells/<key>/``, written so a kill leaves either a
complete cell or none.

A cell directory holds ``config.json`` (the cell config, its training outcome and timings, and
the train configuration it ended at), ``model.pt`` (the trained state dict), ``training.csv``
(its training log) and ``rows.csv`` (its test rows), both in the declared schema. It is written
into a temporary sibling and renamed into place: ``rename`` of a directory is atomic on POSIX
file systems, so a directory named by a key is always complete. Mid-training checkpoints live
under ``DIR/checkpoints/<key>.pt`` (write then rename as well).

A stored cell answers the resume questions itself: what it was trained at
(:attr:`StoredCell.trained_at`, typed) and which of today's test points it lacks
(:meth:`StoredCell.missing`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..core.schema import LOG, LOG_NAMES, RESULTS
from ..core.status import Status
from ..harness.cell import CellConfig, CellResult
from ..harness.grid import TestPoint, row_key
from ..models.spec import SolveSpec
from ..outputs.tables import append_rows, read_table, start_table

CELLS, CHECKPOINTS, RUNNING = "cells", "checkpoints", "running"
DIAGNOSIS = "diagnosis.json"


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values (None for missing), so they round-trip through CSV again."""
    return [{k: (None if v is pd.NA or (isinstance(v, float) and v != v) else v) for k, v in r.items()}
            for r in df.astype(object).to_dict("records")]


@dataclass
class StoredCell:
    """A finished cell as read back from disk (the state dict is loaded on demand)."""

    cell: CellConfig
    status: Status
    message: str
    train_seconds: float
    adapted: bool
    trained_at: SolveSpec  # the train configuration the model ended at (final adapted steps / tol)
    rows: list[dict[str, Any]]
    log: list[dict[str, Any]]
    path: Path
    diagnosis: dict[str, Any] | None = None  # harness/analysis.py; None: not diagnosed yet

    def needs_diagnosis(self, wanted: dict[str, Any] | None) -> bool:
        """Whether the diagnosis with these settings (None: none wanted) is missing."""
        return (wanted is not None and self.status is Status.OK
                and (self.diagnosis is None or self.diagnosis.get("settings") != wanted))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)

    def missing(self, points: list[TestPoint]) -> list[TestPoint]:
        """The test points this cell has no row for."""
        have = {row_key(r) for r in self.rows}
        return [p for p in points if p.key not in have]

    def result(self, points: list[TestPoint]) -> CellResult:
        """The stored rows of ``points``, in their order, with today's test-point columns."""
        by_key = {row_key(r): r for r in self.rows}
        rows = [{**by_key[p.key], **p.columns()} for p in points if p.key in by_key]
        return CellResult(self.cell, self.status, self.message, rows=rows, log=self.log,
                          train_seconds=self.train_seconds, adapted=self.adapted,
                          trained_at=self.trained_at, diagnosis=self.diagnosis)


class Checkpoint:
    """The mid-training checkpoint of one cell: ``load()`` for resuming, ``save(state)`` from the
    training loop. A checkpoint that cannot be read (cut off by a kill) is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        try:
            return torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a damaged checkpoint means: start from scratch
            return None

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _spec_json(spec: SolveSpec) -> dict[str, Any]:
    return {"solver": spec.solver, "steps": spec.steps, "tol": spec.rtol}


def _legacy_trained_at(cell: CellConfig, rows: list[dict[str, Any]]) -> tuple[bool, SolveSpec]:
    """Cells stored before config.json recorded the final train configuration: an adapted cell's
    rows carry it (read with the schema's types, so ``adapted`` is a boolean)."""
    first = rows[0] if rows else {}
    if first.get("adapted") is not True:
        return False, cell.train_spec
    tol = first.get("train_tol")
    return True, SolveSpec(cell.solver, steps=first.get("train_steps"), rtol=tol, atol=tol,
                           max_steps=cell.training.max_steps, adjoint=cell.training.gradient == "adjoint")


class CellStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.cells = self.root / CELLS

    def path(self, key: str) -> Path:
        return self.cells / key

    def has(self, key: str) -> bool:
        # only a finished rename creates this directory, so its config.json means complete
        return (self.path(key) / "config.json").is_file()

    def checkpoint(self, key: str) -> Checkpoint:
        return Checkpoint(self.root / CHECKPOINTS / f"{key}.pt")

    def mark_running(self, key: str) -> None:
        """Best effort: which process works on a cell (for humans, and for fault-injection tests)."""
        try:
            path = self.root / RUNNING / f"{key}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        except OSError:
            pass

    def save(self, result: CellResult) -> Path:
        """Write a finished cell (its checkpoint is no longer needed)."""
        key = result.cell.key
        self.cells.mkdir(parents=True, exist_ok=True)
        tmp = self.cells / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            trained = result.trained_at or result.cell.train_spec
            (tmp / "config.json").write_text(json.dumps({
                "key": key, "cell": result.cell.model_dump(mode="json"), "status": result.status.value,
                "message": result.message, "train_seconds": result.train_seconds,
                "adapted": result.adapted, "trained_at": _spec_json(trained)}, indent=2))
            if result.state_dict is not None:
                torch.save(result.state_dict, tmp / "model.pt")
            if result.diagnosis is not None:
                (tmp / DIAGNOSIS).write_text(json.dumps(result.diagnosis, allow_nan=False))
            start_table(tmp / "training.csv", LOG)
            append_rows([{k: r.get(k) for k in LOG_NAMES} for r in result.log], tmp / "training.csv", LOG)
            start_table(tmp / "rows.csv", RESULTS)
            append_rows(result.rows, tmp / "rows.csv", RESULTS)
            self._publish(tmp, self.path(key))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.checkpoint(key).clear()
        (self.root / RUNNING / f"{key}.json").unlink(missing_ok=True)
        return self.path(key)

    def _publish(self, tmp: Path, final: Path) -> None:
        if final.exists():  # --fresh: move the old cell aside first, then swap in the new one
            old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)

    def load(self, key: str) -> StoredCell:
        path = self.path(key)
        meta = json.loads((path / "config.json").read_text())
        cell = CellConfig.model_validate(meta["cell"])
        rows = _records(read_table(path / "rows.csv", RESULTS))
        log = [{k: r[k] for k in LOG_NAMES}
               for r in _records(read_table(path / "training.csv", LOG))]
        if "trained_at" in meta:
            at = meta["trained_at"]
            adapted = bool(meta.get("adapted"))
            trained = SolveSpec(cell.solver, steps=at["steps"], rtol=at["tol"], atol=at["tol"],
                                max_steps=cell.training.max_steps,
                                adjoint=cell.training.gradient == "adjoint")
        else:
            adapted, trained = _legacy_trained_at(cell, rows)
        diagnosis = json.loads((path / DIAGNOSIS).read_text()) if (path / DIAGNOSIS).is_file() else None
        return StoredCell(cell, Status.parse(meta["status"]), meta.get("message") or "",
                          float(meta.get("train_seconds") or 0.0), adapted, trained, rows, log, path,
                          diagnosis)

    def set_diagnosis(self, key: str, diagnosis: dict[str, Any]) -> None:
        """Store (or replace) a cell's diagnosis, atomically."""
        path = self.path(key) / DIAGNOSIS
        tmp = path.with_name(f".{DIAGNOSIS}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_text(json.dumps(diagnosis, allow_nan=False))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def add_rows(self, key: str, rows: list[dict[str, Any]]) -> None:
        """Append re-evaluated test rows to a stored cell (rows.csv is replaced atomically)."""
        path = self.path(key) / "rows.csv"
        tmp = path.with_name(f".rows.{uuid.uuid4().hex[:8]}.tmp")
        try:
            start_table(tmp, RESULTS)
            append_rows(_records(read_table(path, RESULTS)) + rows, tmp, RESULTS)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def clean(self) -> None:
        """Remove what killed runs left behind: half-written cell directories."""
        if self.cells.is_dir():
            for leftover in self.cells.glob(".tmp-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            for leftover in self.cells.glob(".old-*"):
                shutil.rmtree(leftover, ignore_errors=True)
