"""The cells bar of a run's progress display (core/progress.py has the display as a whole).

Its total is the cells this run computes (trained or re-tested; cells loaded from the store are
not counted), and it moves as each unit finishes. Its ETA is the cost estimate's
(harness/cost.py, the model ``validate`` prints: each unit's ``weight``) for the units left,
scaled by how the run has kept to the estimate so far (elapsed / estimated seconds of the units
done), so it starts as the estimate and corrects itself as units finish. tqdm's own ETA would
extrapolate from cells per second, which a suite of unequal cells (or stacked groups finishing
several cells at once) makes meaningless.

Units that run in this process (the local executor) also show their own training and test bars
below it; a process pool's or Ray's units run in other processes, whose stderr is not this
display, so there only this bar is shown (docs/cli.md, "Progress").
"""

from __future__ import annotations

import time
from dataclasses import replace

from tqdm.auto import tqdm

from ..core import progress as display
from ..core.progress import Enabled
from .jobs import Unit

FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} cells [{elapsed}{postfix}]"


class CellsProgress:
    """The cells bar over ``units`` (module docstring); ``parallel``: the units that run at once."""

    def __init__(self, units: list[Unit], name: str, enabled: Enabled, parallel: int = 1) -> None:
        self.weights = [u.weight for u in units]
        self.left, self.done = sum(self.weights), 0.0
        self.parallel = max(1, parallel)
        self.start = time.perf_counter()
        self.bar = display.bar(sum(len(u.cells) for u in units), f"suite {name}", "cell", enabled,
                               leave=True, bar_format=FORMAT)
        self.bar.set_postfix_str(self._eta())

    @property
    def total(self) -> int:
        return int(self.bar.total or 0)

    def eta(self) -> float:
        """Estimated seconds left (module docstring)."""
        if self.done <= 0:
            return self.left / self.parallel
        return self.left * (time.perf_counter() - self.start) / self.done

    def _eta(self) -> str:
        return f"eta {tqdm.format_interval(self.eta())} (cost estimate)" if self.left > 0 else ""

    def finished(self, unit: int, cells: int) -> None:
        """Unit ``unit`` (an index of ``units``) came back with ``cells`` results."""
        self.left -= self.weights[unit]
        self.done += self.weights[unit]
        self.bar.set_postfix_str(self._eta(), refresh=False)
        self.bar.update(cells)

    def close(self) -> None:
        self.bar.close()


def with_bars(units: list[Unit], enabled: Enabled, in_process: bool) -> list[Unit]:
    """``units`` showing their own training and test bars where they run in this process."""
    if enabled is False or not in_process:
        return units
    return [replace(u, progress=enabled) for u in units]
