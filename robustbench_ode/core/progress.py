"""The progress display of a run: one tqdm display, on stderr, of (at most) two lines.

- the **cells** bar (run/progress.py): cells finished of the cells this run computes, with an
  ETA from the cost estimate (harness/cost.py, what ``validate`` prints);
- below it, the **current unit**: its training iterations, counted per seed-iteration (a unit
  that trains 5 stacked seeds for N iterations counts to 5N, 5 per iteration, so the bar moves
  inside a group), then its test grid (test rows evaluated, a row advanced by each test batch).

The inner bars close (``leave=False``) when their phase ends, so the line below the cells bar
always shows the phase running now; tqdm places each new bar on the first free line by itself.

``enabled``: True shows the bars, False hides them, None (the default) shows them only where
stderr is a terminal (tqdm's own rule for ``disable=None``), so a redirected or captured stderr
gets no bar. tqdm reads ``TQDM_*`` environment variables for its defaults (e.g.
``TQDM_MININTERVAL=0``: redraw on every update; the pty test uses it).
"""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

Enabled = bool | None  # True: on, False: off, None: where stderr is a terminal

# A test bar advances by fractions of a row (one per test batch): show whole rows.
TEST_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total_fmt} test rows [{elapsed}<{remaining}]"


def bar(total: float, desc: str, unit: str, enabled: Enabled, *, leave: bool = False, **kw: Any) -> tqdm:
    """One bar of the display (module docstring)."""
    # None: tqdm hides it off a terminal; nothing to count: no bar (an empty bar is noise)
    disable = True if not total else None if enabled is None else not enabled
    return tqdm(total=total, desc=desc, unit=unit, leave=leave, disable=disable, dynamic_ncols=True, **kw)


def training_bar(total: int, desc: str, enabled: Enabled) -> tqdm:
    """A unit's training iterations, ``total`` seed-iterations."""
    return bar(total, f"train {desc}", "it", enabled)


def test_bar(rows: int, desc: str, enabled: Enabled) -> tqdm:
    """A unit's test grid, ``rows`` test rows (points x seeds)."""
    return bar(rows, f"test {desc}", "row", enabled, bar_format=TEST_FORMAT)
