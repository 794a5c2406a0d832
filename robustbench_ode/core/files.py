"""Reading and writing the files a user names or a run writes, with every file-system problem a
one-line :class:`~robustbench_ode.core.errors.SuiteError` naming the path.

Reading (:func:`read_text`, :func:`read_bytes`): a regular file (not a directory, device, pipe or
``/proc`` / ``/sys`` pseudo-file, whose sizes lie and whose reads can block) of at most a given
size; text is UTF-8 without NUL bytes. A ``.gz`` file is read decompressed, held to the same size
(committed runs keep their large training logs compressed).

Writing (:func:`write_atomic`, :func:`write_text`): into a temporary sibling that is renamed over
the target when complete, and removed on any error (a full disk, a kill leaves the old file or the
new one, never half of one and never a temporary file once the error has been handled).
:func:`os_error` turns an ``OSError`` into the one-line message the command line prints.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

from .errors import SuiteError
from .preview import clip

_PSEUDO = ("/proc/", "/sys/")
TMP_MARK = ".tmp-"  # every temporary file or folder the package writes has this in its name


def show_path(path: str | os.PathLike) -> str:
    """A path as error messages print it: one line, at most about 120 characters."""
    return clip(os.fspath(path), 120)


def os_error(exc: OSError, path: str | os.PathLike | None = None, doing: str = "") -> str:
    """One line for a file-system error: the path, what was being done, and why."""
    where = path if path is not None else exc.filename
    why = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
           errno.EPERM: "operation not permitted"}.get(exc.errno, exc.strerror or type(exc).__name__)
    head = f"{show_path(where)}: " if where is not None else ""
    if not doing:
        doing = "write it" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "read or write it"
    return f"{head}cannot {doing} ({clip(why, 80)})"


def named(exc: OSError, path: str | os.PathLike) -> OSError:
    """``exc`` with ``path`` as its file name when it has none (a write that fails on a full disk
    at ``close()`` names no file): the one-line message then says which file."""
    if exc.filename is not None:
        return exc
    return type(exc)(exc.errno, exc.strerror, os.fspath(path)) if exc.errno else exc


def check_file(path: str | os.PathLike, what: str = "file", max_bytes: int | None = None) -> None:
    """A regular file of at most ``max_bytes`` bytes; else a one-line SuiteError naming the path."""
    shown = show_path(path)
    try:
        info = os.stat(path)
        real = os.path.realpath(path)
    except (FileNotFoundError, NotADirectoryError):
        raise SuiteError(f"{shown}: no such {what}") from None
    except PermissionError:
        raise SuiteError(f"{shown}: cannot read it (permission denied)") from None
    except (OSError, ValueError) as exc:  # a loop of links, a name too long, a NUL in the name
        why = getattr(exc, "strerror", None) or exc
        raise SuiteError(f"{shown}: cannot read it ({clip(why, 60)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise SuiteError(f"{shown}: is a directory, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise SuiteError(f"{shown}: not a regular file (a device, pipe or socket); give a {what}")
    if real.startswith(_PSEUDO):
        raise SuiteError(f"{shown}: a /proc or /sys pseudo-file, not a {what}")
    if max_bytes is not None and info.st_size > max_bytes:
        raise SuiteError(f"{shown}: {info.st_size} bytes; a {what} has at most {max_bytes}")


MAX_BLOB_BYTES = 8 << 30  # a model or checkpoint file: far above any this benchmark writes


def open_regular(path: str | os.PathLike, max_bytes: int, what: str = "file") -> io.BufferedReader:
    """``path`` opened for reading in binary, once it is known to be a regular file of at most
    ``max_bytes`` bytes (see :func:`check_file`). The check is made again on the open descriptor
    (``fstat``), and the open itself does not block (``O_NONBLOCK``): a FIFO swapped in between
    the two is refused, never waited on. Every file the package reads is opened here or by
    :func:`read_bytes` (tests/test_bounded_reads.py scans the package for reads that are not)."""
    check_file(path, what, max_bytes)
    shown = show_path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise SuiteError(os_error(exc, path, "read it")) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SuiteError(f"{shown}: not a regular file (a device, pipe or socket); give a {what}")
        if info.st_size > max_bytes:
            raise SuiteError(f"{shown}: {info.st_size} bytes; a {what} has at most {max_bytes}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` bytes (see :func:`open_regular`); of a
    ``.gz`` file, its decompressed bytes, at most ``max_bytes`` of them too."""
    compressed = str(path).endswith(".gz")
    raw = open_regular(path, max_bytes, what)
    try:
        with (gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw) as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:  # gzip.BadGzipFile is one
        if compressed and not isinstance(exc, (FileNotFoundError, PermissionError)):
            raise SuiteError(f"{show_path(path)}: not a readable gzip file ({clip(str(exc), 60)})") from None
        raise SuiteError(os_error(exc, path, "read it")) from None
    except (EOFError, zlib.error) as exc:  # cut off, or damaged inside
        raise SuiteError(f"{show_path(path)}: a damaged gzip file ({type(exc).__name__})") from None
    finally:
        raw.close()
    if len(data) > max_bytes:
        raise SuiteError(f"{show_path(path)}: more than {max_bytes} bytes; a {what} has at most {max_bytes}")
    return data


def read_text(path: str | os.PathLike, max_bytes: int = 1 << 20, what: str = "file", *,
              allow_empty: bool = False) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes; anything else (missing, a
    directory, a device or pipe, a /proc file, unreadable, too large, empty, binary, not UTF-8) is
    a one-line SuiteError naming the path."""
    data = read_bytes(path, max_bytes, what)
    shown = show_path(path)
    if not data.strip() and not allow_empty:
        raise SuiteError(f"{shown}: empty {what}")
    nul = data.find(b"\0")
    if nul >= 0:
        raise SuiteError(f"{shown}: a binary file (NUL byte at offset {nul}), not a text {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{shown}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                         f"{exc.start})") from None
    return text.removeprefix("\ufeff")


def temporary(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (same directory: the rename stays atomic)."""
    return path.with_name(f".{path.name}{TMP_MARK}{uuid.uuid4().hex[:8]}")


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` into a temporary sibling of ``path``, then rename it over ``path``. On any
    error the temporary file is removed and the error raised (``path`` keeps its old content)."""
    path = Path(path)
    tmp = temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise named(exc, path) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text, written then renamed (:func:`write_atomic`)."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def check_writable_dir(path: str | os.PathLike, option: str = "--out") -> None:
    """A directory this process can create files in (made if missing); else one line naming it."""
    path = Path(path)
    shown = show_path(path)
    if path.exists() and not path.is_dir():
        raise SuiteError(f"{option} {shown}: exists and is not a directory".lstrip())
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = temporary(path / "probe")
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise SuiteError(f"{option} {os_error(exc, path, 'write there')}".lstrip()) from None
