"""Outcomes of a solve, a training run or a test cell, stored as a column of the results.

:class:`Status` owns the outcome algebra: how two outcomes combine (the worse one wins) and how
an exception maps to a status. Nothing else compares status strings or matches messages.
"""

from __future__ import annotations

import traceback
from enum import Enum


class StepLimitReached(RuntimeError):
    """An adaptive solve reached its ``max_steps`` (raised by the solver's own step counter)."""


class NonFiniteSolve(RuntimeError):
    """An adaptive solve broke down: a non-finite state or a step size that underflowed."""


class Status(str, Enum):
    """A failure is a value in the results table, never a crash of the suite.

    Ordered from best to worst by :attr:`severity`.
    """

    OK = "ok"
    NON_FINITE = "non_finite"  # the solve produced NaN or inf
    MAX_STEPS = "max_steps"  # an adaptive solve hit its step limit
    TIME_LIMIT = "time_limit"  # a test point ran past benchmark(time_limit=) seconds
    DIVERGED = "diverged"  # training loss became NaN or inf
    OOM = "oom"  # out of memory (not stored: a rerun on a bigger machine retries it)
    LOST = "lost"  # the infrastructure lost the unit (a dead worker): not stored, the next run retries it
    FAILED = "failed"  # any other exception; its message goes into the table
    SKIPPED = "skipped"  # not evaluated because training did not finish
    NOT_COMPUTED = "not_computed"  # a diagnostic that does not apply (e.g. a state too large)

    @property
    def severity(self) -> int:
        return _ORDER.index(self)

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def ok(self) -> bool:
        return self is Status.OK

    @property
    def storable(self) -> bool:
        """Whether an outcome says something about the cell, so the store keeps it. Running out of
        memory, losing a worker or a time limit says something about the machine: the next run tries
        again."""
        return self not in (Status.OOM, Status.LOST, Status.TIME_LIMIT)

    def combine(self, other: Status) -> Status:
        """The worse of two outcomes (a batch of solves is as bad as its worst)."""
        return other if other.severity > self.severity else self

    @classmethod
    def parse(cls, value: object) -> Status:
        """A status as read back from a table; anything unknown counts as ``failed``."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.FAILED

    @classmethod
    def from_exception(cls, exc: BaseException) -> tuple[Status, str]:
        """The status an exception stands for and a one-line message (at most 300 characters),
        told apart by the exception's type only."""
        if isinstance(exc, StepLimitReached):
            status = cls.MAX_STEPS
        elif isinstance(exc, NonFiniteSolve):
            status = cls.NON_FINITE
        elif isinstance(exc, MemoryError) or any(
                c.__name__ == "OutOfMemoryError" for c in type(exc).__mro__) or _cpu_allocation(exc):
            status = cls.OOM  # torch.OutOfMemoryError (CUDA), MemoryError, the CPU allocator
        else:
            status = cls.FAILED
        text = str(exc).splitlines()[0] if str(exc) else ""
        if status is cls.FAILED:
            last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
            where = f" at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno}" if last else ""
            text = f"{type(exc).__name__}: {text}{where}"
        return status, text[:300]

    def __str__(self) -> str:
        return self.value


def _cpu_allocation(exc: BaseException) -> bool:
    """A failed CPU allocation in torch. torch 2.14 raises a plain RuntimeError for it ("[enforce
    fail at alloc_cpu.cpp:...] DefaultCPUAllocator: can't allocate memory: you tried to allocate
    N bytes"; checked: ``torch.empty(10**14)``), not its OutOfMemoryError, so only the message
    can tell. The one place a message is matched (here, nowhere else)."""
    return type(exc) is RuntimeError and "DefaultCPUAllocator: can't allocate memory" in str(exc)


_ORDER = [Status.OK, Status.NOT_COMPUTED, Status.NON_FINITE, Status.MAX_STEPS, Status.TIME_LIMIT,
          Status.DIVERGED, Status.OOM, Status.LOST, Status.FAILED, Status.SKIPPED]

_MESSAGES = {
    Status.OK: "finished",
    Status.NON_FINITE: "the solution contains NaN or inf",
    Status.MAX_STEPS: "the adaptive solver reached its step limit",
    Status.TIME_LIMIT: "stopped: over the time limit per test point",
    Status.DIVERGED: "the training loss became NaN or inf",
    Status.OOM: "out of memory",
    Status.LOST: "lost by the executor (a dead worker); retried by the next run",
    Status.FAILED: "an exception was raised",
    Status.SKIPPED: "not evaluated: training did not finish",
    Status.NOT_COMPUTED: "not computed: does not apply to this model",
}
