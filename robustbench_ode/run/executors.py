"""Executors: where units of work run. In-process, a local process pool, or Ray tasks on a cluster.

Each takes a list of units (:mod:`.jobs`) and yields ``(index, results)`` as units finish, in any
order; the runner writes results and assembles the tables in suite order, so every executor
produces the same tables. Pools start the costliest units first (:func:`.jobs.costliest_first`),
and the process pool starts its workers when it is made, so that their start-up (a fresh
interpreter importing torch) overlaps the driver's planning. A unit lost to the infrastructure (a
dead worker process, a Ray task out of retries) comes back as failed results, never as an
exception. Every executor applies the thread budget (:mod:`.threads`) in the process that runs the units.
A stopped run (Ctrl-C, SIGTERM) ends the pool's workers at once, and a pool worker whose driver
died ends too (tests/test_signals.py): no cell trains on that nobody will collect.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ..core.errors import SuiteError
from ..core.registry import Registry
from ..core.signals import CAUGHT
from ..harness.cell import CellResult
from . import threads as thread_budget
from .jobs import Unit, costliest_first, run_unit


class Executor(Protocol):
    name: str
    threads: int
    # True: units run in this process (their training and test bars join the run's progress
    # display, run/progress.py); an executor without it shows only the cells bar
    in_process: bool

    def run(self, units: list[Unit]) -> Iterator[tuple[int, list[CellResult]]]: ...

    def close(self) -> None: ...


def counted_unit(unit: Unit) -> tuple[int, int, list[CellResult]]:
    """(this process's id, the intra-op threads torch really ran the unit with, its results): read
    inside the unit's process, not the configured budget, for meta.json's ``threads_used``."""
    import torch  # in the worker, where the unit ran

    results = run_unit(unit)
    return os.getpid(), torch.get_num_threads(), results


class LocalExecutor:
    name = "local"
    in_process = True

    def __init__(self, threads: int | None = None) -> None:
        self.threads = thread_budget.budget(1, threads)
        self.threads_used: dict[int, int] = {}  # worker process -> threads its units ran with

    def run(self, units: list[Unit]) -> Iterator[tuple[int, list[CellResult]]]:
        thread_budget.apply(self.threads)
        for i, unit in enumerate(units):
            pid, used, results = counted_unit(unit)
            self.threads_used.setdefault(pid, used)
            yield i, results

    def close(self) -> None:
        pass


def _prepare(threads: int) -> None:
    """A fresh worker: its thread budget, and the imports every unit needs, done while the driver
    still plans. torch.optim's first optimizer imports torch._dynamo (about 3 s here, measured:
    BENCHMARKS.md, "Performance at scale"), so each worker's first cell would otherwise pay it."""
    thread_budget.apply(threads)
    import torch._dynamo  # noqa: F401 - the import is the point

    from ..harness import execution  # noqa: F401 - likewise


def _leave(signum: int, frame: object) -> None:
    """SIGTERM from the driver: leave the cell by an exception, so the worker's exit runs its
    finalizers (a bare termination leaves tqdm's semaphore behind, and the resource tracker then
    warns about it on the terminal)."""
    raise SystemExit(128 + signum)


def _init_pool_worker(threads: int, driver: int) -> None:
    """A pool worker also leaves stopping to its driver and ends with it.

    Ctrl-C reaches the whole process group: the worker ignores it and the driver, which owns the
    run, stops the pool (:func:`_stop_workers`). A driver killed outright (SIGKILL, the OOM
    killer) cannot stop anything, and a pool worker is never told: it would train its cell to the
    end as an orphan, writing the checkpoint a rerun resumes from. So a thread watches the parent
    and ends the worker when the driver is gone. (Linux's PR_SET_PDEATHSIG would do this without a
    thread but follows the thread that spawned the worker, which may be the pool's manager.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _leave)

    def follow() -> None:
        while os.getppid() == driver:
            time.sleep(0.5)
        os._exit(1)  # mid-checkpoint is safe: checkpoints are written to a temporary, then renamed

    threading.Thread(target=follow, name="robustbench-ode-driver-watch", daemon=True).start()
    _prepare(threads)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now, mid-cell (their checkpoints keep the progress), not after the
    cells they run: ``shutdown`` only waits for those. concurrent.futures can terminate workers
    only from Python 3.14 (``terminate_workers``); before it, the pool's process table is the one
    handle on them."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()  # SIGTERM: each worker leaves its cell (_leave) and the pool's end
    pool.shutdown(wait=True, cancel_futures=True)


def _ready() -> bool:
    return True


def visible_store(unit: Unit) -> Unit:
    """``unit`` as a worker may run it: with its mid-training checkpoints where this worker sees
    the run folder (the driver writes its ``meta.json`` before any unit starts), without them
    where it does not. Checkpoints are the one thing workers write to the run folder themselves
    (results come back to the driver), so a Ray node without the shared file system would
    otherwise grow a stray copy of the folder that nobody reads; it trains on without
    checkpoints, and a retried cell retrains from scratch there."""
    root = getattr(unit, "store_root", None)
    if root is None or (Path(root) / "meta.json").is_file():
        return unit
    return replace(unit, store_root=None)


def _run_with_threads(unit: Unit, threads: int) -> tuple[int, int, list[CellResult]]:
    _prepare(threads)
    return counted_unit(visible_store(unit))


class ProcessExecutor:
    """A pool of spawned processes (spawn: no forked torch or CUDA state)."""

    name = "process"
    in_process = False

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.workers = workers
        self.threads = thread_budget.budget(workers, threads)
        self.threads_used: dict[int, int] = {}  # worker process -> threads its units ran with
        self._pool: ProcessPoolExecutor | None = None
        self._start()

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_pool_worker,
                                             initargs=(self.threads, os.getpid()))
            for _ in range(self.workers):  # the pool spawns a worker per waiting task: all now
                self._pool.submit(_ready)
        return self._pool

    def run(self, units: list[Unit]) -> Iterator[tuple[int, list[CellResult]]]:
        pool = self._start()
        try:
            pending = {pool.submit(counted_unit, units[i]): i for i in costliest_first(units)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    try:
                        pid, used, result = fut.result()
                        self.threads_used.setdefault(pid, used)
                    except Exception as exc:  # noqa: BLE001 - e.g. BrokenProcessPool: a worker died
                        result = units[i].lost(f"{type(exc).__name__}: {exc}")
                    yield i, result
        except BaseException:  # Ctrl-C, SIGTERM (core/signals.py), or the runner gave up: stop now
            _stop_workers(pool)
            raise
        else:
            pool.shutdown(wait=True)
        finally:
            self._pool = None

    def close(self) -> None:
        """Stop the workers (a run refused after the pool was made, or one that ended early)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Units as Ray tasks declaring their CPU/GPU needs; a task whose worker dies is retried."""

    name = "ray"
    in_process = False

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_cell: float = 1,
                 gpus_per_cell: float = 0, max_retries: int = 3, threads: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise SuiteError("--executor ray: Ray is not installed (pip install 'robustbench_ode[ray]')") \
                from None
        self.ray = ray
        if not ray.is_initialized():
            # ray.init installs its own SIGTERM handler in the driver (sys.exit, bypassing
            # core/signals.py's Stopped), and never removes it: the handlers as they were stay
            handlers = {s: signal.getsignal(s) for s in CAUGHT}
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SuiteError(f"--address {address}: cannot connect to Ray: {msg}") from None
            finally:
                for s, handler in handlers.items():
                    if handler is not None and threading.current_thread() is threading.main_thread():
                        signal.signal(s, handler)
        self.options = {"num_cpus": cpus_per_cell, "num_gpus": gpus_per_cell, "max_retries": max_retries}
        # each task holds cpus_per_cell of the cluster's CPUs: that many intra-op threads
        self.threads = max(1, int(threads if threads is not None else cpus_per_cell))
        self.threads_used: dict[int, int] = {}  # worker process -> threads its units ran with

    def run(self, units: list[Unit]) -> Iterator[tuple[int, list[CellResult]]]:
        ray = self.ray
        task = ray.remote(_run_with_threads).options(**self.options)
        pending = {task.remote(units[i], self.threads): i for i in costliest_first(units)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    pid, used, result = ray.get(ref)
                    self.threads_used.setdefault(pid, used)  # pids: one node's; a cluster's may repeat
                except Exception as exc:  # noqa: BLE001 - out of retries, or the task raised
                    result = units[i].lost(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                yield i, result

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
                  gpus_per_cell: float = 0, threads: int | None = None, units: int | None = None) -> Executor:
    """The executor ``--executor name`` names, with ``workers`` workers, never more than ``units``
    (the most units a run can have: its cells), so no worker is started with nothing to run."""
    check_executor(name)
    if workers < 1:
        raise SuiteError(f"--workers {workers}: must be at least 1")
    if units is not None:
        workers = max(1, min(workers, units))
    if address and not EXECUTORS.meta(name).takes_address:
        raise SuiteError("--address: only with --executor ray")
    if name == "ray":
        per_cell = max(1, thread_budget.cores() // workers) if threads is None else threads
        return RayExecutor(address, num_cpus=workers if workers > 1 else None, cpus_per_cell=1,
                           gpus_per_cell=gpus_per_cell, threads=per_cell if not address else threads)
    if name == "process" or (name == "local" and workers > 1):
        return ProcessExecutor(workers, threads)
    return EXECUTORS.get(name)(threads)  # local, or any other entry: constructed with its threads


def check_executor(name: str) -> None:
    """A name ``--executor`` accepts: an entry of :data:`EXECUTORS`; else bad input (one line)."""
    if name not in EXECUTORS:
        raise SuiteError(f"--executor {str(name)[:40]}: unknown (allowed: {', '.join(EXECUTORS.names())})")
