"""The thread budget: how many intra-op threads each worker gets.

Small models make torch's intra-op threads contend rather than help, and several workers with
the default thread count each oversubscribe the cores many times over: a thread more than there
are free cores makes every small op wait at OpenMP's barrier for a descheduled peer. The budget
therefore gives each worker one thread per core that is free when the run starts.

OpenMP's wait policy is left as the user has it. Passive waiting (``OMP_WAIT_POLICY=PASSIVE``)
was tried and measured (BENCHMARKS.md, "Performance at scale"): with the budget's thread count it
makes no difference under load, because no thread waits for a descheduled peer, and on an idle
machine it made five stacked Sphere2 seeds on two threads 4x slower (16.4 against 4.1 ms per
seed-iteration) by putting every thread to sleep between the thousands of tiny ops of an
iteration. Only when load arrives after the start (two threads beside one busy process) did it
help (8.7 against 14.0 ms); that case is rarer than an idle machine, and ``--threads 1`` or
``OMP_WAIT_POLICY=PASSIVE`` in the environment covers it.
"""

from __future__ import annotations

import os

from ..core.errors import SuiteError

MAX_THREADS = 1024  # threads or workers: far above any machine this runs on, far below an overflow


def cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_elsewhere() -> int:
    """Processes running on other cores right now (Linux's ``procs_running``, less this one); 0
    where it cannot be read."""
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("procs_running"):
                    return max(0, int(line.split()[1]) - 1)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def budget(workers: int = 1, explicit: int | None = None) -> int:
    """Threads per worker: ``explicit`` (``--threads`` or ``OMP_NUM_THREADS``) if given, else the
    cores not busy with other processes when the run starts, divided among the workers (at least
    one). A thread more than there are free cores makes every small op wait for a descheduled
    peer; one thread per free core degrades gracefully instead."""
    if explicit is not None:
        if int(explicit) > MAX_THREADS:
            raise SuiteError(f"--threads {explicit}: at most {MAX_THREADS}")
        return max(1, int(explicit))
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        if len(env) > 6 or int(env) > MAX_THREADS:
            raise SuiteError(f"OMP_NUM_THREADS={env[:24]}: at most {MAX_THREADS} threads; set it lower")
        return int(env)
    free = max(1, cores() - busy_elsewhere())
    return max(1, free // max(1, workers))


def apply(threads: int) -> int:
    """Set torch's intra-op thread count; returns it."""
    import torch  # only where a worker applies its budget: budget() itself stays torch-free

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
