"""Executors: where units of work run. In-process, a local process pool, or Ray tasks on a cluster.

Each takes a list of units (:mod:`.jobs`) and yields ``(index, results)`` as units finish, in any
order; the runner writes results and assembles the tables in suite order, so every executor
produces the same tables. Pools start the costliest units first (:func:`.jobs.costliest_first`),
and the process pool starts its workers when it is made, so that their start-up (a fresh
interpreter importing torch) overlaps the driver's planning. A unit lost to the infrastructure (a
dead worker process, a Ray task out of retries) comes back as failed results, never as an
exception. Every executor applies the thread budget (:mod:`.threads`) in the process that runs the units.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from ..core.errors import SuiteError
from ..core.registry import Registry
from ..harness.cell import CellResult
from . import threads as thread_budget
from .jobs import Unit, costliest_first, run_unit


class Executor(Protocol):
    name: str
    threads: int

    def run(self, units: list[Unit]) -> Iterator[tuple[int, list[CellResult]]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    name = "local"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = thread_budget.budget(1, threads)

    def run(self, units: list[Unit]) -> Iterator[tuple[int, list[CellResult]]]:
        thread_budget.apply(self.threads)
        for i, unit in enumerate(units):
            yield i, run_unit(unit)

    def close(self) -> None:
        pass


def _init_worker(threads: int) -> None:
    """A fresh worker: its thread budget, and the imports every unit needs, done while the driver
    still plans. torch.optim's first optimizer imports torch._dynamo (about 3 s here, measured:
    BENCHMARKS.md, "Performance at scale"), so each worker's first cell would otherwise pay it."""
    thread_budget.apply(threads)
    import torch._dynamo  # noqa: F401 - the import is the point

    from ..harness import execution  # noqa: F401 - likewise


def _ready() -> bool:
    return True


def _run_with_threads(unit: Unit, threads: int) -> list[CellResult]:
    _init_worker(threads)
    return run_unit(unit)


class ProcessExecutor:
    """A pool of spawned processes (spawn: no forked torch or CUDA state)."""

    name = "process"

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.workers = workers
        self.threads = thread_budget.budget(workers, threads)
        self._pool: ProcessPoolExecutor | None = None
        self._start()

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(self.threads,))
            for _ in range(self.workers):  # the pool spawns a worker per waiting task: all now
                self._pool.submit(_ready)
        return self._pool

    def run(self, units: list[Unit]) -> Iterator[tuple[int, list[CellResult]]]:
        with self._start() as pool:
            pending = {pool.submit(run_unit, units[i]): i for i in costliest_first(units)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    try:
                        yield i, fut.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. BrokenProcessPool: a worker died
                        yield i, units[i].lost(f"{type(exc).__name__}: {exc}")
        self._pool = None

    def close(self) -> None:
        """Stop the workers (a run refused after the pool was made, or one that ended early)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Units as Ray tasks declaring their CPU/GPU needs; a task whose worker dies is retried."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_cell: float = 1,
                 gpus_per_cell: float = 0, max_retries: int = 3, threads: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise SuiteError("--executor ray: Ray is not installed (pip install 'robustbench_ode[ray]')") \
                from None
        self.ray = ray
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SuiteError(f"--address {address}: cannot connect to Ray: {msg}") from None
        self.options = {"num_cpus": cpus_per_cell, "num_gpus": gpus_per_cell, "max_retries": max_retries}
        # each task holds cpus_per_cell of the cluster's CPUs: that many intra-op threads
        self.threads = max(1, int(threads if threads is not None else cpus_per_cell))

    def run(self, units: list[Unit]) -> Iterator[tuple[int, list[CellResult]]]:
        ray = self.ray
        task = ray.remote(_run_with_threads).options(**self.options)
        pending = {task.remote(units[i], self.threads): i for i in costliest_first(units)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    yield i, ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - out of retries, or the task raised
                    yield i, units[i].lost(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    def close(self) -> None:
        pass  # the Ray instance outlives a run (a cluster, or the next suite in this process)


@dataclass(frozen=True)
class ExecutorInfo:
    extra: str | None = None  # the optional dependency it needs (pip install 'robustbench_ode[...]')
    takes_address: bool = False


EXECUTORS: Registry = Registry("executor")
EXECUTORS.register("local", LocalExecutor, "cells in turn, in this process (the default)", ExecutorInfo())
EXECUTORS.register("process", ProcessExecutor, "a local pool of --workers spawned processes",
                   ExecutorInfo())
EXECUTORS.register("ray", RayExecutor, "Ray tasks on a local instance (--workers CPUs) or a cluster "
                   "(--address)", ExecutorInfo(extra="ray", takes_address=True))


def make_executor(name: str = "local", workers: int = 1, address: str | None = None,
                  gpus_per_cell: float = 0, threads: int | None = None) -> Executor:
    if name not in EXECUTORS:
        raise SuiteError(f"--executor {str(name)[:40]}: unknown (allowed: {', '.join(EXECUTORS.names())})")
    if workers < 1:
        raise SuiteError(f"--workers {workers}: must be at least 1")
    if address and not EXECUTORS.meta(name).takes_address:
        raise SuiteError("--address: only with --executor ray")
    if name == "ray":
        per_cell = max(1, thread_budget.cores() // workers) if threads is None else threads
        return RayExecutor(address, num_cpus=workers if workers > 1 else None, cpus_per_cell=1,
                           gpus_per_cell=gpus_per_cell, threads=per_cell if not address else threads)
    if name == "process" or workers > 1:
        return ProcessExecutor(workers, threads)
    return LocalExecutor(threads)
