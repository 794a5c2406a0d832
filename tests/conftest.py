import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke suite, run once per test session."""
    from robustbench_ode.cli import main

    out = tmp_path_factory.mktemp("smoke")
    assert main(["run", os.path.join(ROOT, "suites", "smoke.yaml"), "--out", str(out),
                 "--no-progress"]) == 0
    return out
