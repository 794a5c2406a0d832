"""Where and how a run computes, decided once at its start (and at the start of ``benchmark()``):
the execution context that the units of work carry (run/jobs.py) down to training and testing.

Nothing in it changes what a cell computes (it is never part of a cell key): the device, the
intra-op threads of the process that runs the units, and the switches that follow from the
device (pinned host batches and synchronised timing on CUDA, training/acceleration.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SuiteError

# What ``run --device`` and ``validate --device`` accept (``cuda:N`` names one GPU of several).
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ExecutionContext:
    device: str = "cpu"  # resolved (resolve_device): cpu, cuda or cuda:N, never auto
    threads: int | None = None  # intra-op threads per worker (run/threads.py); None: torch's own

    @property
    def cuda(self) -> bool:
        """Whether the cells run on a GPU (the cost limits, pinned batches, synchronised clocks)."""
        return self.device.startswith("cuda")


CPU = ExecutionContext()  # the default: this process's CPU, torch's own thread count


def resolve_device(device: object) -> str:
    """The device a run uses: ``auto`` is CUDA where it is available, else the CPU. The one place
    ``auto`` is resolved; a CUDA device where there is none is bad input (one line). ``cpu``
    answers without importing torch, so ``validate`` stays light."""
    name = str(device)
    if name not in DEVICES and not re.fullmatch(r"cuda:\d{1,3}", name):
        raise SuiteError(f"--device {name[:40]}: unknown (allowed: {', '.join(DEVICES)})")
    if name == "cpu":
        return name
    import torch  # only a GPU question needs torch: `cpu` (validate, the default) stays torch-free

    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise SuiteError(f"--device {name}: CUDA is not available here (allowed: auto, cpu)")
    return name


def on_gpu(device: object) -> bool:
    """Whether a run with ``--device device`` computes on a GPU, for ``validate`` (which may check
    a suite for another machine): ``cuda`` (``cuda:N``) does, ``auto`` as it resolves here."""
    name = str(device)
    if name.startswith("cuda") and re.fullmatch(r"cuda(:\d{1,3})?", name):
        return True
    return resolve_device(name).startswith("cuda")


def resolve(device: object = "cpu", threads: int | None = None) -> ExecutionContext:
    """The execution context of a run on ``device`` with ``threads`` per worker."""
    return ExecutionContext(resolve_device(device), threads)
