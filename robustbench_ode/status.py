"""Outcomes of a solve, a training run or a test cell, stored as a column of the results."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """A failure is a value in the results table, never a crash of the suite.

    Ordered from best to worst by :attr:`severity` (used by the regression gate).
    """

    OK = "ok"
    NON_FINITE = "non_finite"  # the solve produced NaN or inf
    MAX_STEPS = "max_steps"  # an adaptive solve hit its step limit
    DIVERGED = "diverged"  # training loss became NaN or inf
    OOM = "oom"  # out of memory
    FAILED = "failed"  # any other exception; its message goes into the table
    SKIPPED = "skipped"  # not evaluated because training did not finish

    @property
    def severity(self) -> int:
        return list(Status).index(self)

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    def __str__(self) -> str:
        return self.value


_MESSAGES = {
    Status.OK: "finished",
    Status.NON_FINITE: "the solution contains NaN or inf",
    Status.MAX_STEPS: "the adaptive solver reached its step limit",
    Status.DIVERGED: "the training loss became NaN or inf",
    Status.OOM: "out of memory",
    Status.FAILED: "an exception was raised",
    Status.SKIPPED: "not evaluated: training did not finish",
}
