"""The thread budget: how many intra-op threads each worker gets.

Small models make torch's intra-op threads contend rather than help, and several workers with
the default thread count each oversubscribe the cores many times over. A descheduled OpenMP
thread that its peers spin-wait for stalls every operation, so the wait policy is set to passive
as well (it must be set before the OpenMP runtime starts, i.e. before torch is imported: the
command line does it first thing, and spawned workers inherit the environment).
"""

from __future__ import annotations

import os

WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}


def set_wait_policy() -> None:
    """Passive OpenMP waiting, unless the user chose otherwise (call before importing torch)."""
    for key, value in WAIT_POLICY.items():
        os.environ.setdefault(key, value)


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
    peer; one thread per free core, with passive waiting, degrades gracefully instead."""
    if explicit is not None:
        return max(1, int(explicit))
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    free = max(1, cores() - busy_elsewhere())
    return max(1, free // max(1, workers))


def apply(threads: int) -> int:
    """Set torch's intra-op thread count; returns it."""
    import torch  # threads.py stays importable before torch (set_wait_policy must run first)

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
