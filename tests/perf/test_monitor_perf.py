"""The overhead of one rb.Monitor check (BENCHMARKS.md conventions; not timed in the fast suite).

One check is a benchmark() of the model on the monitor's data: here a plain torchdiffeq model
(Euler, 2 steps, width 32) on 1000 points, the grid Euler 2 steps plus the reference (dopri5 at
1e-5), one thread; beside it, the baseline of one training step of the same model, so the ratio
says how many training steps one check costs. Speed is never asserted.

    python -m pytest -q -m perf --benchmark-enable tests/perf/test_monitor_perf.py
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robustbench_ode as rb
from tests.test_assert_is_ode import REF, Plain, rings

pytestmark = pytest.mark.perf


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return Plain(2), rings(1000, 1)


def test_one_monitor_check(benchmark, setup):
    model, data = setup
    monitor = rb.Monitor(data, every=1, on_resnet="log", grid=[{"solver": "euler", "steps": [2]}],
                         reference=REF, train={"solver": "euler", "steps": 2})
    benchmark.group = "monitor"
    benchmark(monitor.check, model, 0)
    benchmark.extra_info["checks_logged"] = len(monitor.log)


def test_one_training_step_baseline(benchmark, setup):
    model, (x, y) = setup
    opt = torch.optim.Adam(model.parameters(), lr=0.03)

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[:256]), y[:256]).backward()
        opt.step()

    benchmark.group = "monitor"
    benchmark(step)
