"""The cell store: every finished cell under ``DIR/cells/<key>/``, written so a kill leaves either a
complete cell or none, and checked before it is used.

A cell directory holds ``config.json`` (the cell config, its training outcome and timings, and
the train configuration it ended at), ``model.pt`` (the trained state dict), ``training.csv``
(its training log), ``rows.csv`` (its test rows), both in the declared schema, ``diagnosis.json``
once diagnosed, and, written last, ``manifest.json``: each file's size and SHA-256
(:mod:`.manifest`). It is written into a temporary sibling and renamed into place: ``rename`` of
a directory is atomic on POSIX file systems, so a directory named by a key is always complete.
Mid-training checkpoints live under ``DIR/checkpoints/<key>.pt`` (write then rename as well).

Every read of a cell (:meth:`CellStore.load`) checks it first: a cell whose files are missing or
do not match its manifest is :class:`DamagedCell`, never used; the runner moves it aside to
``DIR/damaged/<key>-<time>/`` (:meth:`CellStore.quarantine`, nothing is deleted) and recomputes
it. A cell without a manifest is damaged too: a cell stored before manifests existed is blessed
once, explicitly, by ``robustbench-ode migrate DIR`` (:meth:`CellStore.bless`). A re-test's rows
and a new diagnosis replace their files and the manifest so that a kill at any point leaves a cell
that checks (:func:`.manifest.commit`).

The store persists a cell's :class:`~robustbench_ode.harness.cell.CellRecord` exactly (config.json
holds its fields, model.pt its weights) and reads it back as one: :meth:`CellStore.load` returns the
:class:`~robustbench_ode.harness.cell.CellResult` it was saved as, the weights a handle on the
stored file (:class:`ModelFile`, loaded on demand). A stored result answers the resume questions
itself: what it was trained at (``record.trained_at``) and which of today's test points it lacks
(:meth:`~robustbench_ode.harness.cell.CellResult.missing`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..core import imports
from ..core.files import MAX_BLOB_BYTES, TMP_MARK, open_regular, read_text, temporary, write_atomic
from ..core.preview import clip
from ..core.schema import LOG, LOG_NAMES, RESULTS
from ..core.status import Status
from ..harness.cell import CellConfig, CellRecord, CellResult, FamilyCell
from ..outputs.tables import RESULTS_FILLED, RESULTS_NEED, append_rows, read_table, start_table
from . import manifest

CELLS, CHECKPOINTS, RUNNING, DAMAGED = "cells", "checkpoints", "running", "damaged"
DIAGNOSIS = "diagnosis.json"
MAX_JSON_BYTES = 16 << 20  # a cell's config.json or diagnosis.json
_OLD = re.compile(r"\.old-([0-9a-f]+)-[0-9a-f]{8}")


class DamagedCell(Exception):
    """A stored cell whose files are missing, do not match their checksums or do not parse."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"cell {key}: {reason}")
        self.key, self.reason = key, reason


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values (None for missing), so they round-trip through CSV again."""
    return [{k: (None if v is pd.NA or (isinstance(v, float) and v != v) else v) for k, v in r.items()}
            for r in df.astype(object).to_dict("records")]


@dataclass(frozen=True)
class ModelFile:
    """A stored cell's weights (``model.pt``), loaded on demand."""

    path: Path

    def load(self) -> dict[str, torch.Tensor]:
        with open_regular(self.path, MAX_BLOB_BYTES, "model.pt") as f:
            return torch.load(f, map_location="cpu", weights_only=True)


class Checkpoint:
    """The mid-training checkpoint of one cell: ``load()`` for resuming, ``save(state)`` from the
    training loop. A checkpoint that cannot be read (cut off by a kill) is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        try:
            with open_regular(self.path, MAX_BLOB_BYTES, "checkpoint") as f:
                return torch.load(f, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a damaged checkpoint means: start from scratch
            return None

    def iteration(self) -> int:
        """The iteration a resume from this checkpoint continues at (0: none, or unreadable)."""
        state = self.load()
        return int(state["iteration"]) if state is not None else 0

    def save(self, state: dict[str, Any]) -> None:
        """Write then rename. A checkpoint only saves time: one that cannot be written (a full
        disk) is skipped quietly and training goes on (the cell's own files, written when it
        finishes, report a full disk in one line; the previous checkpoint stays usable)."""
        try:
            self.path.parent.mkdir(exist_ok=True)  # never parents: a moved run folder is not recreated
            write_atomic(self.path, lambda tmp: torch.save(state, tmp))
        except OSError:
            pass

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _own_table(path: Path, schema, **checks) -> pd.DataFrame:
    """A table the store wrote: read with its schema's checks (outputs/tables.py), and no column
    the schema does not know (an older version's cell has a subset of today's columns)."""
    df = read_table(path, schema, what=path.name, **checks)
    names = {c.name for c in schema}
    extra = [c for c in df.columns if c not in names]
    if extra:
        raise DamagedCell(path.parent.name, f"{path.name} has a column the store never writes "
                          f"({clip(extra[0], 40)})")
    return df


def _record_json(record: CellRecord) -> dict[str, Any]:
    """config.json: the record's fields (the weights go to model.pt)."""
    at = record.trained_at
    return {"key": record.key, "cell": record.cell.model_dump(mode="json"), "status": record.status.value,
            "message": record.message, "train_seconds": record.seconds, "adapted": record.adapted,
            "trained_at": {"solver": at.solver, "steps": at.steps, "tol": at.rtol}}


def _record(meta: dict[str, Any], cell: CellConfig | FamilyCell, rows: list[dict[str, Any]],
            weights: ModelFile | None) -> CellRecord:
    """The record config.json describes. Cells stored before it recorded the final train
    configuration: an adapted cell's rows carry it (read with the schema's types, so ``adapted``
    is a boolean)."""
    if "trained_at" in meta:
        at = meta["trained_at"]
        adapted, steps, tol = bool(meta.get("adapted")), at["steps"], at["tol"]
    else:
        first = rows[0] if rows else {}
        adapted = first.get("adapted") is True
        steps, tol = (first.get("train_steps"), first.get("train_tol")) if adapted else (cell.steps, cell.tol)
    trained = replace(cell.train_spec, steps=steps, rtol=tol, atol=tol)
    return CellRecord(cell, trained, Status.parse(meta["status"]), meta.get("message") or "",
                      float(meta.get("train_seconds") or 0.0), adapted, weights)


class CellStore:
    """``cell_type``: the config its cells are (a suite's :class:`CellConfig`, or a plain model
    family's :class:`~robustbench_ode.harness.cell.FamilyCell`, robustbench_ode/sweeping.py)."""

    def __init__(self, root: Path, cell_type: type = CellConfig) -> None:
        self.root = Path(root)
        self.cells = self.root / CELLS
        self.cell_type = cell_type

    def path(self, key: str) -> Path:
        return self.cells / key

    def has(self, key: str) -> bool:
        # only a finished rename creates this directory: it holds a complete cell, or a damaged
        # one (load() tells)
        return self.path(key).is_dir()

    def checkpoint(self, key: str) -> Checkpoint:
        return Checkpoint(self.root / CHECKPOINTS / f"{key}.pt")

    def mark_running(self, key: str) -> None:
        """Best effort: which process works on a cell (for humans, and for fault-injection tests),
        in ``running/<key>.<random>.json``: a fresh name (not predictable), created exclusively and
        never through a link (``O_EXCL | O_NOFOLLOW``), so nothing planted there is written to."""
        try:
            path = self.root / RUNNING / f"{key}.{uuid.uuid4().hex}.json"
            path.parent.mkdir(exist_ok=True)  # never parents: a moved run folder is not recreated
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        except OSError:
            pass

    def running_files(self, key: str) -> list[Path]:
        """The ``running/`` markers of cell ``key``."""
        folder = self.root / RUNNING
        try:
            return [p for p in folder.iterdir() if p.name.startswith(f"{key}.") and p.name.endswith(".json")]
        except OSError:
            return []

    def save(self, result: CellResult) -> Path:
        """Write a finished cell, its manifest last (its checkpoint is no longer needed)."""
        record = result.record
        key = record.key
        self.cells.mkdir(exist_ok=True)  # never parents: a moved run folder is not recreated
        tmp = self.cells / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            (tmp / "config.json").write_text(json.dumps(_record_json(record), indent=2))
            names = ["config.json"]
            if record.weights is not None:
                torch.save(record.weights.load(), tmp / "model.pt")
                names.append("model.pt")
            if result.diagnosis is not None:
                (tmp / DIAGNOSIS).write_text(json.dumps(result.diagnosis, allow_nan=False))
                names.append(DIAGNOSIS)
            start_table(tmp / "training.csv", LOG)
            append_rows([{k: r.get(k) for k in LOG_NAMES} for r in result.log], tmp / "training.csv", LOG)
            start_table(tmp / "rows.csv", RESULTS)
            append_rows(result.rows, tmp / "rows.csv", RESULTS)
            manifest.write(tmp, [*names, "training.csv", "rows.csv"])
            self._publish(tmp, self.path(key))
        except OSError as exc:  # a full disk: the message names the cell's folder, not the temporary
            raise OSError(exc.errno, exc.strerror, str(self.path(key))) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.checkpoint(key).clear()
        for marker in self.running_files(key):  # unlink removes a link itself, never its target
            marker.unlink(missing_ok=True)
        return self.path(key)

    def _publish(self, tmp: Path, final: Path) -> None:
        if final.exists():  # --fresh: move the old cell aside first, then swap in the new one
            old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)

    def check(self, key: str, repair: bool = True) -> str | None:
        """Why the stored cell ``key`` cannot be used (None: it can). ``repair``: finish a kill's
        half-done update (needs a writable store)."""
        try:
            self.load(key, repair=repair)
        except DamagedCell as exc:
            return exc.reason
        return None

    def load(self, key: str, repair: bool = True) -> CellResult:
        """The stored cell, checked (module docstring); :class:`DamagedCell` if it cannot be used,
        a cell without a manifest included (:data:`.manifest.MISSING`)."""
        path = self.path(key)
        why = manifest.check(path, repair)
        if why is not None:
            raise DamagedCell(key, why)
        listed = manifest.listed(path)
        return self._parsed(key, set(listed["files"]) if listed is not None else set())

    def bless(self, key: str) -> bool:
        """``migrate``: give a cell stored before manifests its manifest, once every file parses,
        ``model.pt`` loads and ``config.json`` names this key (nothing vouches for it otherwise).
        True: blessed; False: it had a manifest that checks; :class:`DamagedCell` otherwise."""
        path = self.path(key)
        why = manifest.check(path)
        if why is None:
            return False
        if why != manifest.MISSING:
            raise DamagedCell(key, why)
        names = [n for n in manifest.FILES if (path / n).is_file()]
        self._parsed(key, set(names), weights=True)
        manifest.write(path, names)
        return True

    def _parsed(self, key: str, names: set[str], weights: bool = False) -> CellResult:
        """The cell's files ``names`` read (``weights``: model.pt loaded too); any failure is
        :class:`DamagedCell`."""
        try:
            stored = self._read(self.path(key), names)
            if weights and stored.record.weights is not None:
                stored.record.weights.load()
        except DamagedCell as exc:
            raise DamagedCell(key, exc.reason) from None
        except Exception as exc:  # noqa: BLE001 - any file that does not parse: damage, not a crash
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise DamagedCell(key, clip(f"a file does not parse ({type(exc).__name__}: {text})", 120)) \
                from None
        if stored.cell.key != key:
            raise DamagedCell(key, f"config.json describes another cell ({clip(stored.cell.key, 20)})")
        return stored

    def _read(self, path: Path, names: set[str]) -> CellResult:
        for name in ("config.json", "rows.csv", "training.csv"):
            if name not in names:
                raise DamagedCell(path.name, f"{name} is missing")
        meta = json.loads(read_text(path / "config.json", MAX_JSON_BYTES, "config.json"))
        if not isinstance(meta, dict) or meta.get("key", path.name) != path.name:
            raise DamagedCell(path.name, "config.json names another cell")
        with imports.deferred():  # identify the cell before anything it names is resolved
            cell = self.cell_type.model_validate(meta["cell"])
        if Status.parse(meta["status"]) is Status.OK and "model.pt" not in names:
            raise DamagedCell(path.name, "model.pt is missing")
        rows = _records(_own_table(path / "rows.csv", RESULTS, need=RESULTS_NEED, filled=RESULTS_FILLED,
                                   rows=True))
        log = [{k: r[k] for k in LOG_NAMES}
               for r in _records(_own_table(path / "training.csv", LOG, need=("iteration", "loss")))]
        record = _record(meta, cell, rows, ModelFile(path / "model.pt") if "model.pt" in names else None)
        diagnosis = (json.loads(read_text(path / DIAGNOSIS, MAX_JSON_BYTES, DIAGNOSIS))
                     if DIAGNOSIS in names else None)
        if diagnosis is not None and not isinstance(diagnosis, dict):
            raise DamagedCell(path.name, f"{DIAGNOSIS} is not a JSON object")
        return CellResult(record, rows, log, diagnosis)

    def quarantine(self, key: str, reason: str) -> Path:
        """Move a damaged cell aside to ``DIR/damaged/<key>-<UTC time>/`` (kept, never deleted),
        with the reason in ``damage.txt``."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")
        dest = self.root / DAMAGED / f"{key}-{stamp}"
        n = 1
        while dest.exists():
            n += 1
            dest = self.root / DAMAGED / f"{key}-{stamp}-{n}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(key), dest)
        try:
            (dest / "damage.txt").write_text(reason + "\n")
        except OSError:
            pass
        return dest

    def keys(self) -> list[str]:
        """The keys of the stored cells (finished or damaged), sorted."""
        if not self.cells.is_dir():
            return []
        return sorted(p.name for p in self.cells.iterdir() if p.is_dir() and not p.name.startswith("."))

    def set_diagnosis(self, key: str, diagnosis: dict[str, Any]) -> None:
        """Store (or replace) a cell's diagnosis and its checksum, atomically."""
        path = self.path(key)
        tmp = temporary(path / DIAGNOSIS)
        try:
            tmp.write_text(json.dumps(diagnosis, allow_nan=False))
            manifest.commit(path, {DIAGNOSIS: tmp})
        finally:
            tmp.unlink(missing_ok=True)

    def add_rows(self, key: str, rows: list[dict[str, Any]]) -> None:
        """Append re-evaluated test rows to a stored cell (rows.csv and its checksum are replaced
        atomically)."""
        path = self.path(key) / "rows.csv"
        tmp = temporary(path)
        try:
            start_table(tmp, RESULTS)
            append_rows(_records(read_table(path, RESULTS)) + rows, tmp, RESULTS)
            manifest.commit(path.parent, {"rows.csv": tmp})
        finally:
            tmp.unlink(missing_ok=True)

    def clean(self) -> None:
        """Remove what killed runs left behind: half-written cell directories and temporary files;
        a cell a kill left moved aside (``--fresh`` between its two renames) is put back."""
        if self.cells.is_dir():
            for leftover in self.cells.glob(".tmp-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            for leftover in self.cells.glob(".old-*"):
                found = _OLD.fullmatch(leftover.name)
                if found and not self.path(found.group(1)).exists():
                    leftover.rename(self.path(found.group(1)))
                else:
                    shutil.rmtree(leftover, ignore_errors=True)
            for stray in self.cells.glob(f"*/.*{TMP_MARK}*"):
                stray.unlink(missing_ok=True)
        # the run folder's own files (tables, meta.json, owner.json, the report) too: the store is
        # cleaned under the run's lock, so no other run is writing them
        for folder in (self.root / CHECKPOINTS, self.root):
            for stray in folder.glob(f".*{TMP_MARK}*"):
                if stray.is_file():
                    stray.unlink(missing_ok=True)
