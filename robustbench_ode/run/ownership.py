"""Which suite a run folder belongs to, by content, and who is writing it now.

A run folder records what it holds in ``DIR/owner.json``: the suite's name, the SHA-256 of its
validated dump (every setting, defaults filled in: two files that differ only in comments or key
order are one suite) with the dump itself, and the cell keys of its cells. A run claims a folder
(:func:`claim`) only if

- the folder is new or empty, or
- its record names the same content, or one that differs only in :data:`RETEST_KEYS` (a grown or
  shrunk test grid, another reference or other diagnostics settings: the stored models are
  re-tested or re-diagnosed, as a rerun always did) and speed-only training settings (they are
  not in the cell key), or
- ``update`` is set (``run --update``): the folder moves to the new suite, every stored cell is
  kept, and the previous tables, figures, report, suite and meta files move under
  ``DIR/previous/<UTC time>/`` (:func:`take`).

Anything else is refused in one line naming the keys that differ, before anything is written.
Folders written before the record existed are read by their ``suite.yaml`` (validated again) and
``meta.json``; a folder that is neither empty nor a run folder is never claimed.

:class:`RunLock` holds an advisory lock (``fcntl.flock`` on ``DIR/.lock``) for a whole run: a
second run on the same folder waits for the first to finish (saying so on stderr), then finds
its cells stored and loads them, so each cell is computed once. The lock also tells a run that
its folder was renamed or moved under it (:meth:`RunLock.still_here`): the run stops in one line
rather than write a partial folder at the old path.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SPEED_ONLY, SuiteConfig, parse_suite
from ..config.loader import parse_yaml
from ..core.errors import SuiteError
from ..core.files import TMP_MARK, check_writable_dir, os_error, read_bytes, read_text, show_path
from ..core.preview import clip, preview
from ..harness.cell import cells
from .meta import strict_json, write_json

log = logging.getLogger(__name__)

RECORD, LOCK, PREVIOUS = "owner.json", ".lock", "previous"
WRITER = "benchmark"  # meta.json's "writer" in a folder benchmark(report=) wrote
# top-level suite keys whose change keeps the folder's suite: they change what is tested or
# diagnosed, never what is trained
RETEST_KEYS = ("test", "reference", "diagnostics", "description")
# what a run keeps in its folder besides its tables: never moved by --update
KEPT = ("cells", "checkpoints", "running", "damaged", PREVIOUS, LOCK, RECORD)


def suite_dump(suite: SuiteConfig) -> dict[str, Any]:
    return json.loads(strict_json(suite.model_dump(mode="json"), indent=None))


def content_hash(dump: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()


@dataclass
class Record:
    """What a run folder says it holds; ``dump`` None: a folder whose suite cannot be read back."""

    suite: str
    content: str | None
    dump: dict[str, Any] | None
    cells: list[str]
    legacy: bool = False  # read from suite.yaml and meta.json (written before owner.json existed)


@dataclass
class Claim:
    """What a run does with its folder: ``new``, ``same``, ``retest`` (only RETEST_KEYS differ) or
    ``update`` (``--update`` moves the folder to the new suite)."""

    kind: str
    record: Record | None = None
    differs: tuple[str, ...] = ()


def _json_object(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(read_text(path, 16 << 20, path.name))
    except (SuiteError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def read_record(out_dir: Path) -> Record | None:
    """The folder's record (None: no run has written it). A folder that holds other things is a
    SuiteError: it is never claimed."""
    shown = show_path(out_dir)
    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        raise SuiteError(f"--out {shown}: exists and is not a directory")
    if (out_dir / RECORD).exists():
        data = _json_object(out_dir / RECORD)
        if data is None or not isinstance(data.get("suite"), str) or not isinstance(data.get("dump"), dict) \
                or data.get("content") != content_hash(data["dump"]):
            return Record(str((data or {}).get("suite", "?"))[:100], None, None, [])
        return Record(data["suite"], data.get("content"), data["dump"], list(data.get("cells") or []))
    if (out_dir / "meta.json").exists():
        meta = _json_object(out_dir / "meta.json") or {}
        try:
            text = read_text(out_dir / "suite.yaml", 1 << 20, "suite file")
            dump = suite_dump(parse_suite(parse_yaml(text, "suite.yaml"), "suite.yaml"))
        except SuiteError:
            dump = None
        name = meta.get("suite") if isinstance(meta.get("suite"), str) else "?"
        return Record(name, content_hash(dump) if dump else None, dump, [], legacy=True)
    if any(p.name != LOCK or not _lock_only(p) for p in out_dir.iterdir()):
        raise SuiteError(f"--out {shown}: not empty and not a robustbench-ode run; choose another --out")
    return None


def differences(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    """The top-level keys whose values differ, in the new suite's order."""
    keys = list(new) + [k for k in old if k not in new]
    return tuple(k for k in keys if old.get(k) != new.get(k))


def claim(out_dir: Path, suite: SuiteConfig, update: bool = False) -> Claim:
    """Whether this suite may run into ``out_dir`` (module docstring); reads only. Refused: a
    one-line SuiteError saying what differs."""
    out_dir = Path(out_dir)
    record = read_record(out_dir)
    if record is None:
        return Claim("new")
    dump = suite_dump(suite)
    if record.dump is None:
        differs: tuple[str, ...] = ()
        why = (f"holds suite {preview(record.suite, 40)}, whose recorded content cannot be read "
               "(a damaged owner.json, or a suite.yaml this version does not accept)")
    else:
        differs = differences(record.dump, dump)
        if not differs:
            return Claim("same", record)
        if all(k in RETEST_KEYS for k in differs) or _speed_only(record, dump, suite):
            return Claim("retest", record, differs)
        why = (f"holds suite {preview(record.suite, 40)} with other content (differs in "
               f"{clip(', '.join(differs), 80)})")
    if update:
        return Claim("update", record, differs)
    raise SuiteError(f"--out {clip(out_dir, 80)}: {why}; give --update to move it to this suite (its "
                     "cells are kept, its tables moved to previous/), or another --out")


def _results_dump(dump: dict[str, Any]) -> dict[str, Any]:
    """The dump without the speed-only training settings (config/training.py SPEED_ONLY)."""
    trainings = dump.get("training")
    if not isinstance(trainings, list):
        return dump
    return {**dump, "training": [{k: v for k, v in t.items() if k not in SPEED_ONLY} if isinstance(t, dict)
                                 else t for t in trainings]}


def _speed_only(record: Record, dump: dict[str, Any], suite: SuiteConfig) -> bool:
    """Whether the new suite differs from the recorded one only in RETEST_KEYS and speed-only
    training settings (``checkpoint_every``, ``compile``, ...), with the same cells (``fast`` is
    speed-only but moves the model's key: harness/cell.py one_fast_switch)."""
    if record.dump is None:
        return False
    if not all(k in RETEST_KEYS for k in differences(_results_dump(record.dump), _results_dump(dump))):
        return False
    return not record.cells or sorted(c.key for c in cells(suite)) == sorted(record.cells)


def _stamp(root: Path) -> Path:
    base = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")
    path, n = root / base, 1
    while path.exists():
        n += 1
        path = root / f"{base}-{n}"
    return path


def take(out_dir: Path, suite: SuiteConfig, decision: Claim, cell_keys: list[str]) -> Path | None:
    """Make the folder this suite's: for an update, move the previous outputs under
    ``previous/<time>/`` first (returned); then write the record (atomically)."""
    out_dir = Path(out_dir)
    check_writable_dir(out_dir)
    moved_to = None
    if decision.kind == "update":
        moved_to = _stamp(out_dir / PREVIOUS)
        moved_to.mkdir(parents=True)
        for path in sorted(out_dir.iterdir()):
            if path.name in KEPT or TMP_MARK in path.name or not path.is_file():
                continue
            os.replace(path, moved_to / path.name)
        if (out_dir / RECORD).is_file():
            (moved_to / RECORD).write_bytes(read_bytes(out_dir / RECORD, 16 << 20, RECORD))
    dump = suite_dump(suite)
    write_json(out_dir / RECORD, {"suite": suite.name, "content": content_hash(dump), "cells": cell_keys,
                                  "dump": dump})
    return moved_to


def report_folder(report: str | Path | None) -> Path | None:
    """``report=``: a new or empty folder, or one an earlier ``benchmark(report=)`` wrote (its
    meta.json says so); never a file, another folder, or a run folder (its record, read only).
    Checked before anything is computed."""
    if report is None:
        return None
    out = Path(report)
    shown = show_path(out)
    if str(report) == "":
        raise SuiteError("report='': an empty path; name a folder")
    if out.exists() and not out.is_dir():
        raise SuiteError(f"report={shown}: exists and is not a directory; name a new or empty folder")
    try:
        record = read_record(out)
    except SuiteError:
        raise SuiteError(f"report={shown}: not empty and not a folder benchmark() wrote; name a new or "
                         "empty folder") from None
    if record is not None and (not record.legacy or _writer(out) != WRITER):
        raise SuiteError(f"report={shown}: holds a run of suite {record.suite[:40]!r}, which benchmark() "
                         "does not overwrite; name a new or empty folder")
    return out


def _writer(out: Path) -> str | None:
    try:
        meta = json.loads(read_text(out / "meta.json", 16 << 20, "meta.json"))
    except (SuiteError, OSError, ValueError, RecursionError):
        return None
    return meta.get("writer") if isinstance(meta, dict) else None


def _lock_only(path: Path) -> bool:
    """Whether ``path`` is a lock file as a run that stopped before writing its record leaves it:
    a regular file (not a link), one name only, empty or ``pid N``. Anything else there means the
    folder is not empty."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size > 64:
            return False
        return re.fullmatch(r"(pid \d+\n)?", read_text(path, 64, "lock file", allow_empty=True)) is not None
    except (OSError, SuiteError):
        return False


class RunLock:
    """An exclusive advisory lock on a run folder for the life of a run (``fcntl.flock`` on
    ``DIR/.lock``, released by the kernel when the process ends, even by SIGKILL). A second run
    waits for it, saying so once on stderr."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / LOCK
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            # never through a link: O_NOFOLLOW refuses a symbolic link, the fstat below a hard link
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SuiteError(f"--out {show_path(self.path)}: a symbolic link, not a lock file; "
                                 "remove it") from None
            raise SuiteError(f"--out {os_error(exc, self.path.parent, 'lock it for this run')}") from None
        info = os.fstat(self.fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(self.fd)
            self.fd = None
            raise SuiteError(f"--out {show_path(self.path)}: not a plain lock file (a hard link or a "
                             "special file); remove it")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip() or "another process"
            log.warning(f"{show_path(self.path.parent)} is in use by a run ({clip(holder, 60)}); "
                        "waiting for it to finish")
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:  # who holds it, for the message of a run that waits (best effort: a full disk)
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"pid {os.getpid()}\n".encode(), 0)
        except OSError:
            pass
        return self

    def still_here(self) -> None:
        """A one-line SuiteError if the folder was renamed or moved since the lock was taken: the
        lock file at the folder's path is no longer the one this run holds."""
        try:
            at = os.stat(self.path, follow_symlinks=False)
        except OSError:
            at = None
        held = os.fstat(self.fd) if self.fd is not None else None
        if at is None or held is None or (at.st_dev, at.st_ino) != (held.st_dev, held.st_ino):
            raise SuiteError(f"--out {show_path(self.path.parent)}: the run folder was renamed or moved "
                             "during the run; stopped (its finished cells went with it: run the suite "
                             "into the folder where it is now to resume)")

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
