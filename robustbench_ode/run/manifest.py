"""Checksums of a stored cell's files: ``cells/<key>/manifest.json``, written last.

The manifest lists each file of the cell (``config.json``, ``model.pt``, ``training.csv``,
``rows.csv``, ``diagnosis.json``, those the cell has) with its size and SHA-256. A cell whose
listed files are all present and match is intact; anything else (a file missing, truncated,
overwritten) is damage, named by :func:`check`. Files the manifest does not list are not part of
the cell and are never read.

A stored cell changes after it is written in two ways (a re-test appends rows, a new diagnosis
replaces the old one): :func:`commit` writes the new files beside the old ones, then a complete
``manifest.pending.json`` naming them, then renames the new files into place and the pending
manifest over the manifest. A kill at any point leaves a cell that :func:`check` accepts: the old
manifest matches (the update had not started replacing files: the pending one is stale), or the
pending one does (the update had: it is adopted).

A cell without a manifest is damaged (:data:`MISSING`): nothing vouches for its files (an edited
``rows.csv`` or a swapped ``model.pt`` would parse). Cells stored before manifests existed are
blessed explicitly, once, by ``robustbench-ode migrate DIR`` (:meth:`..store.CellStore.bless`:
every file parses and ``model.pt`` loads, then its manifest is written); a run recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..core.errors import SuiteError
from ..core.files import MAX_BLOB_BYTES, open_regular, read_text, write_text

MANIFEST, PENDING = "manifest.json", "manifest.pending.json"
FILES = ("config.json", "model.pt", "training.csv", "rows.csv", "diagnosis.json")
FORMAT = 1
MAX_MANIFEST_BYTES = 1 << 20  # five files listed: a few hundred bytes
# check()'s answer for a cell without a manifest (a cell stored before checksums, or one whose
# manifest was deleted): damaged, unless migrate blesses it
MISSING = "manifest.json is missing (a cell stored before checksums: `migrate DIR` checks and blesses it)"


def digest(path: Path) -> str:
    h = hashlib.sha256()
    try:
        f = open_regular(path, MAX_BLOB_BYTES, path.name)
    except SuiteError as exc:  # a FIFO, a device, a folder: what check() reports
        raise OSError(0, str(exc).rsplit(": ", 1)[-1]) from None
    with f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(cell_dir: Path, names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A manifest of the files ``names`` of ``cell_dir`` as they are now."""
    return {"format": FORMAT, "files": {n: {"bytes": (cell_dir / n).stat().st_size,
                                            "sha256": digest(cell_dir / n)} for n in names}}


def write(cell_dir: Path, names: list[str] | tuple[str, ...], file: str = MANIFEST) -> dict[str, Any]:
    manifest = describe(cell_dir, names)
    write_text(cell_dir / file, json.dumps(manifest, indent=1))
    return manifest


def read(path: Path) -> dict[str, Any] | None:
    """A manifest file's content; None if it is not a readable manifest."""
    try:
        data = json.loads(read_text(path, MAX_MANIFEST_BYTES, "manifest"))
    except (SuiteError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    files = data.get("files")
    if not isinstance(files, dict) or "config.json" not in files or any(
            n not in FILES or not isinstance(v, dict) or not isinstance(v.get("sha256"), str)
            or not isinstance(v.get("bytes"), int) for n, v in files.items()):
        return None
    return data


def mismatch(cell_dir: Path, manifest: dict[str, Any]) -> str | None:
    """The first listed file that is missing or does not match, as a reason; None if all match."""
    for name, want in manifest["files"].items():
        path = cell_dir / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return f"{name} is missing"
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror})"
        if size != want["bytes"]:
            return f"{name} has {size} bytes ({want['bytes']} when stored)"
        try:
            if digest(path) != want["sha256"]:
                return f"{name} does not match its checksum"
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror})"
    return None


def check(cell_dir: Path, repair: bool = True) -> str | None:
    """None if the cell's files match its manifest (or a complete pending one: adopted when
    ``repair``); :data:`MISSING` if it has none; else the reason it is damaged."""
    pending = cell_dir / PENDING
    if (cell_dir / MANIFEST).exists():
        manifest = read(cell_dir / MANIFEST)
        why = "manifest.json is not a readable manifest" if manifest is None else mismatch(cell_dir, manifest)
        if why is None:
            if repair and pending.exists():
                pending.unlink()  # an update that stopped before replacing anything
            return None
    else:
        why = MISSING
    staged = read(pending) if pending.exists() else None
    if staged is not None and mismatch(cell_dir, staged) is None:
        if repair:
            os.replace(pending, cell_dir / MANIFEST)  # an update that stopped after replacing files
        return None
    return why


def listed(cell_dir: Path) -> dict[str, Any] | None:
    """The manifest :func:`check` accepted: the pending one where it matches and the main one does
    not (a kill after an update replaced files, read without repair)."""
    main = read(cell_dir / MANIFEST)
    if (cell_dir / PENDING).exists() and (main is None or mismatch(cell_dir, main) is not None):
        return read(cell_dir / PENDING)
    return main


def commit(cell_dir: Path, new: dict[str, Path]) -> None:
    """Replace files of a stored cell (``name -> a complete temporary file in cell_dir``) and its
    manifest, so that a kill at any point leaves a cell :func:`check` accepts (module docstring)."""
    current = read(cell_dir / MANIFEST)
    names = list(current["files"]) if current is not None else [n for n in FILES if (cell_dir / n).exists()]
    files = {n: v for n, v in (current or describe(cell_dir, names))["files"].items() if n not in new}
    for name, tmp in new.items():
        files[name] = {"bytes": tmp.stat().st_size, "sha256": digest(tmp)}
    write_text(cell_dir / PENDING, json.dumps({"format": FORMAT, "files": files}, indent=1))
    for name, tmp in new.items():
        os.replace(tmp, cell_dir / name)
    os.replace(cell_dir / PENDING, cell_dir / MANIFEST)
