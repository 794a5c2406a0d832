"""Stopping a command by signal: SIGTERM and SIGHUP end it the way Ctrl-C does.

``kill PID``, a batch scheduler's time limit and a container stop send SIGTERM; a closed terminal
sends SIGHUP. Left at their default, either ends Python at once: no ``finally`` runs, so a
process pool's workers are left training cells nobody will collect. Inside :func:`stopping`
they raise :class:`Stopped`, a ``KeyboardInterrupt``, so every path that cleans up after Ctrl-C
cleans up after them too. A signal someone chose to ignore (``nohup`` ignores SIGHUP) stays
ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CAUGHT = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """The command was stopped by ``signum`` (a plain ``KeyboardInterrupt`` is SIGINT)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(exc: KeyboardInterrupt) -> signal.Signals:
    return signal.Signals(exc.signum if isinstance(exc, Stopped) else signal.SIGINT)


def exit_code(exc: KeyboardInterrupt) -> int:
    """What a shell reports for a program the signal ended: 128 + its number (130 for Ctrl-C)."""
    return 128 + int(signal_of(exc))


def _raise(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a second one must not cut the clean-up short
    raise Stopped(signum)


@contextmanager
def stopping() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Stopped` in the main thread while the block runs (left
    alone when it runs in another thread, where Python cannot install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken = [s for s in CAUGHT if signal.getsignal(s) is signal.SIG_DFL]
    for s in taken:
        signal.signal(s, _raise)
    try:
        yield
    finally:
        for s in taken:
            signal.signal(s, signal.SIG_DFL)
