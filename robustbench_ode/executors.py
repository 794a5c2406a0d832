"""Executors: where cells run. In-process, a local process pool, or Ray tasks on a cluster.

Each takes a list of jobs (:class:`~robustbench_ode.job.CellJob`, or a
:class:`~robustbench_ode.seed_group.SeedGroupJob` whose result is a list of results) and yields
``(index, CellResult)`` as jobs finish, in any order; the runner writes results and rebuilds the
tables in suite order, so every executor produces the same tables. A job lost to the
infrastructure (a dead worker process, a Ray task out of retries) comes back as a ``failed``
result, never as an exception.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Protocol

from .cell import CellResult, _test_columns
from .config import SuiteError
from .job import CellJob, run_job
from .status import Status

EXECUTORS = ("local", "process", "ray")


class Executor(Protocol):
    name: str

    def run(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult]]: ...


def lost(job: CellJob, why: str) -> CellResult | list[CellResult]:
    """A job the infrastructure lost: one failed row per test point, so the table shows it (a
    seed group: one such result per cell)."""
    if hasattr(job, "jobs"):
        return [lost(member, why) for member in job.jobs]
    message = f"executor: {why}"[:300]
    rows = [{**job.cell.columns(), **_test_columns(p), "status": Status.FAILED.value, "message": message,
             "train_status": Status.FAILED.value, "train_message": message} for p in job.tests]
    return CellResult(job.cell, Status.FAILED, message, rows=rows)


class LocalExecutor:
    name = "local"

    def run(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult]]:
        for i, job in enumerate(jobs):
            yield i, run_job(job)


def _init_worker(threads: int) -> None:
    # N workers with the default thread count each would oversubscribe the cores N times over
    import torch

    torch.set_num_threads(threads)


class ProcessExecutor:
    """A pool of spawned processes (spawn: no forked torch or CUDA state)."""

    name = "process"

    def __init__(self, workers: int, threads_per_worker: int | None = None) -> None:
        self.workers = workers
        self.threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)

    def run(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult]]:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(self.threads,)) as pool:
            pending = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    try:
                        yield i, fut.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. BrokenProcessPool: a worker died
                        yield i, lost(jobs[i], f"{type(exc).__name__}: {exc}")


class RayExecutor:
    """Cells as Ray tasks declaring their CPU/GPU needs; a task whose worker dies is retried."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_cell: float = 1,
                 gpus_per_cell: float = 0, max_retries: int = 3) -> None:
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
        self.threads = max(1, int(cpus_per_cell))

    def run(self, jobs: list[CellJob]) -> Iterator[tuple[int, CellResult]]:
        ray = self.ray
        task = ray.remote(_ray_task).options(**self.options)
        pending = {task.remote(job, self.threads): i for i, job in enumerate(jobs)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    yield i, ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - out of retries, or the task raised
                    yield i, lost(jobs[i], f"{type(exc).__name__}: {str(exc).splitlines()[0]}")


def _ray_task(job: CellJob, threads: int) -> CellResult:
    _init_worker(threads)
    return run_job(job)


def make_executor(name: str = "local", workers: int = 1, address: str | None = None,
                  gpus_per_cell: float = 0) -> Executor:
    if name not in EXECUTORS:
        raise SuiteError(f"--executor {name}: unknown (allowed: {', '.join(EXECUTORS)})")
    if workers < 1:
        raise SuiteError(f"--workers {workers}: must be at least 1")
    if name == "ray":
        return RayExecutor(address, num_cpus=workers if workers > 1 else None, gpus_per_cell=gpus_per_cell)
    if address:
        raise SuiteError("--address: only with --executor ray")
    if name == "process" or workers > 1:
        return ProcessExecutor(workers)
    return LocalExecutor()
