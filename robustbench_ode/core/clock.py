"""When this process began its work: the first import of the package, the start of a run's
wall-time breakdown (run/meta.py ``WALL_TIME``). The interpreter's own start before it (tens of
milliseconds) is not counted: reading it would mean reading /proc, which the bounded reader
refuses by design."""

from __future__ import annotations

import time

STARTED = time.perf_counter()
