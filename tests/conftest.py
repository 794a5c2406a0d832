import os

import pytest
import torch

# Two threads at most, and the cores shared among pytest-xdist's workers (make test runs two):
# two workers with two threads each on two cores would oversubscribe them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke suite, run once per test session."""
    from robustbench_ode.cli import main

    out = tmp_path_factory.mktemp("smoke")
    assert main(["run", os.path.join(ROOT, "suites", "smoke.yaml"), "--out", str(out),
                 "--no-progress"]) == 0
    return out
