"""The thread budget (run/threads.py): threads per worker from the free cores and the workers (an
explicit setting wins), applied by every executor in the process that runs the units."""

from __future__ import annotations

import os
import time

import pytest
import torch

from robustbench_ode.run import threads
from robustbench_ode.run.executors import LocalExecutor, ProcessExecutor


class ThreadProbe:
    """A unit of work that reports the worker's intra-op threads and OpenMP wait policy."""

    cells = ()
    weight = 0.0

    def run(self):
        return [(torch.get_num_threads(), os.environ.get("OMP_WAIT_POLICY"))]

    def lost(self, why):
        return [why]


def test_budget_divides_the_free_cores_and_respects_an_explicit_setting(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 8)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 0)
    assert threads.budget(1) == 8 and threads.budget(2) == 4 and threads.budget(3) == 2
    assert threads.budget(16) == 1  # never below one
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 6)  # two cores left
    assert threads.budget(1) == 2 and threads.budget(2) == 1
    assert threads.budget(2, explicit=3) == 3  # --threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert threads.budget(2) == 5  # then the environment


def test_busy_elsewhere_reads_the_running_processes():
    assert threads.busy_elsewhere() >= 0


def test_local_executor_applies_its_budget(monkeypatch):
    before = torch.get_num_threads()
    try:
        ex = LocalExecutor(threads=1)
        ((i, [(n, _)]),) = list(ex.run([ThreadProbe()]))
        assert (i, n) == (0, 1) and ex.threads == 1
    finally:
        torch.set_num_threads(before)


def test_process_workers_get_the_budget_and_the_users_wait_policy(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)  # not forced (run/threads.py says why)
    ex = ProcessExecutor(2, threads=1)
    got = dict(ex.run([ThreadProbe(), ThreadProbe()]))
    assert sorted(got) == [0, 1]
    assert all(r == [(1, None)] for r in got.values()), got


@pytest.mark.slow  # Ray's start-up takes 30-90 s here; skipped where Ray is not installed
def test_ray_workers_get_the_budget():
    ray = pytest.importorskip("ray")
    from robustbench_ode.run.executors import RayExecutor

    # Ray's workers import this test module to unpickle the probe: tests/ must be on their path
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join([here, os.path.dirname(here), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    ex = RayExecutor(threads=1)
    try:
        got = dict(ex.run([ThreadProbe(), ThreadProbe()]))
        assert all(r[0][0] == 1 for r in got.values()), got
    finally:
        ray.shutdown()


class WeighedProbe(ThreadProbe):
    """A unit with a declared cost estimate; it reports when it ran."""

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def run(self):
        return [time.monotonic_ns()]


def test_a_pool_starts_the_costliest_unit_first_and_can_be_closed_and_reused():
    ex = ProcessExecutor(1, threads=1)  # one worker: the order it runs them is the order it yields
    units = [WeighedProbe(1.0), WeighedProbe(3.0), WeighedProbe(2.0), WeighedProbe(3.0)]
    started = dict(ex.run(units))  # (results come back as they finish, several at once in any order)
    assert sorted(started, key=started.get) == [1, 3, 2, 0]  # ties in suite order
    ex.close()  # after a run: nothing left to stop
    ex = ProcessExecutor(1, threads=1)
    ex.close()  # a run refused before any unit: the started worker is stopped
    assert list(dict(ex.run([WeighedProbe(5.0)]))) == [0]  # and a later run starts a new pool
