"""The cell store: every finished cell under ``DIR/cells/<key>/``, written so a kill leaves either a
complete cell or none.

A cell directory holds ``config.json`` (the cell config, its training status and timings),
``model.pt`` (the trained state dict), ``training.csv`` (the per-iteration log) and ``rows.csv``
(its test rows). It is written into a temporary sibling and renamed into place: ``rename`` of a
directory is atomic on POSIX file systems, so a directory named by a key is always complete.
Mid-training checkpoints live under ``DIR/checkpoints/<key>.pt`` (write then rename as well).
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

from .cell import CellConfig, CellResult, TestPoint
from .status import Status

CELLS, CHECKPOINTS, RUNNING = "cells", "checkpoints", "running"


def point_key(solver: str, steps: Any, tol: Any) -> tuple[str, int | None, float | None]:
    """Identity of a test configuration, the same whether it comes from a TestPoint or a CSV row."""
    steps = None if steps is None or pd.isna(steps) else int(steps)
    tol = None if steps is not None or tol is None or pd.isna(tol) else float(tol)
    return str(solver), steps, tol


def test_point_key(point: TestPoint) -> tuple[str, int | None, float | None]:
    return point_key(point.spec.solver, point.spec.steps, point.spec.rtol)


def row_key(row: dict[str, Any]) -> tuple[str, int | None, float | None]:
    return point_key(row["test_solver"], row.get("test_steps"), row.get("test_tol"))


@dataclass
class StoredCell:
    """A finished cell as read back from disk (the state dict is loaded on demand)."""

    cell: CellConfig
    status: Status
    message: str
    train_seconds: float
    rows: list[dict[str, Any]]
    log: list[dict[str, Any]]
    path: Path

    def state_dict(self) -> dict[str, torch.Tensor]:
        return torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)

    def result(self) -> CellResult:
        return CellResult(self.cell, self.status, self.message, rows=list(self.rows), log=self.log,
                          train_seconds=self.train_seconds)


# pandas 2 parses floats approximately by default; pandas 3 is exact and deprecates the option
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _read_csv(path: Path) -> list[dict[str, Any]]:
    if not path.is_file() or path.stat().st_size == 0:
        return []
    try:
        df = pd.read_csv(path, **_EXACT_FLOATS)
    except pd.errors.EmptyDataError:
        return []
    return df.to_dict("records")


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    pd.DataFrame(rows).to_csv(path, index=False)


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
        torch.save(state, tmp)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


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
        (tmp / "config.json").write_text(json.dumps({
            "key": key, "cell": result.cell.model_dump(mode="json"), "status": result.status.value,
            "message": result.message, "train_seconds": result.train_seconds}, indent=2))
        if result.state_dict is not None:
            torch.save(result.state_dict, tmp / "model.pt")
        _write_csv(result.log, tmp / "training.csv")
        _write_csv(result.rows, tmp / "rows.csv")
        self._publish(tmp, self.path(key))
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
        return StoredCell(CellConfig.model_validate(meta["cell"]), Status(meta["status"]),
                          meta.get("message") or "", float(meta.get("train_seconds") or 0.0),
                          _read_csv(path / "rows.csv"), _read_csv(path / "training.csv"), path)

    def add_rows(self, key: str, rows: list[dict[str, Any]]) -> None:
        """Append re-evaluated test rows to a stored cell (rows.csv is replaced atomically)."""
        path = self.path(key) / "rows.csv"
        tmp = path.with_name(f".rows.{uuid.uuid4().hex[:8]}.tmp")
        _write_csv(_read_csv(path) + rows, tmp)
        os.replace(tmp, path)

    def clean(self) -> None:
        """Remove what killed runs left behind: half-written cell directories."""
        if self.cells.is_dir():
            for leftover in self.cells.glob(".tmp-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            for leftover in self.cells.glob(".old-*"):
                shutil.rmtree(leftover, ignore_errors=True)
