"""The environment a run happened in, for ``meta.json``."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.files import write_text
from ..core.version import __version__

# meta.json's wall-time breakdown of a run, in seconds (issue 31): the parts follow each other and
# add up to WALL (to within the few milliseconds between them). Read by scripts/bench_workers.py.
WALL_TIME = {
    "startup_seconds": "from the package's first import (core/clock.py; in-process calls: from "
                       "run_suite's start) to the first unit handed to the executor: imports, the "
                       "suite, the executor's start (Ray's included), the data check, the plan",
    "cells_seconds": "the executor's part: first unit handed to it to the last result back "
                     "(training and testing; also kept as units_seconds)",
    "tables_seconds": "the tables rebuilt in suite order from the store, and meta.json",
    "figures_seconds": "the report's figures (outputs/figures/)",
    "report_seconds": "the rest of the report: summary, critical table, the HTML page",
    "wall_seconds": "the whole: startup to the report written",
}
# the intra-op threads each worker really ran its units with (torch.get_num_threads() read inside
# the unit, one entry per worker process, in the order each first returned a unit)
THREADS_USED = "threads_used"


def wall_time(marks: dict[str, float]) -> dict[str, float]:
    """The breakdown of :data:`WALL_TIME` from the clock ``marks`` (perf_counter seconds) named
    start, units, cells, tables, figures, report: each part is the time between two marks."""
    order = ("start", "units", "cells", "tables", "figures", "report")
    parts = dict(zip(("startup_seconds", "cells_seconds", "tables_seconds", "figures_seconds",
                      "report_seconds"), (marks[b] - marks[a] for a, b in zip(order, order[1:]))))
    parts["wall_seconds"] = marks["report"] - marks["start"]
    return {k: round(v, 3) for k, v in parts.items()}


def git_revision() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def environment(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "package": "robustbench_ode", "version": __version__, "python": sys.version.split()[0],
        "torch": torch.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "device": device, "git_revision": git_revision(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


@dataclass
class Throughput:
    """Images/s over all timed iterations of a run and the largest peak GPU memory, for meta.json,
    accumulated one training log at a time."""

    iterations: int = 0
    seconds: float = 0.0
    images: int = 0
    peak_gpu_mb: float | None = None

    def add(self, log: list[dict[str, Any]], batch_size: int) -> None:
        for r in log:
            if r.get("seconds"):
                self.iterations += 1
                self.seconds += r["seconds"]
                self.images += batch_size
            peak = r.get("peak_gpu_mb")
            if peak is not None and (self.peak_gpu_mb is None or peak > self.peak_gpu_mb):
                self.peak_gpu_mb = peak

    def summary(self) -> dict[str, Any]:
        return {"train_iterations": self.iterations, "train_seconds": round(self.seconds, 3),
                "train_images_per_s": round(self.images / self.seconds, 1) if self.seconds else None,
                "peak_gpu_mb": round(self.peak_gpu_mb, 1) if self.peak_gpu_mb is not None else None}


def _strict(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def strict_json(data: Any, indent: int | None = 2) -> str:
    """Strict JSON text: NaN and infinity (e.g. no GPU peak) are written as null."""
    return json.dumps(_strict(data), indent=indent, default=str, allow_nan=False)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Strict JSON, written then renamed (a kill or a full disk leaves the old file or the new
    one, and no temporary file)."""
    write_text(path, strict_json(data))
