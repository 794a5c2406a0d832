"""ms per CNF training iteration (issue 30, BENCHMARKS.md): the ``cnf`` family's training loop
(``train_model``, training/loop.py) with the exact trace and with Hutchinson's (one Gaussian
probe), against a hand-written torchdiffeq FFJORD-style loop (tests/ffjord_plain.py: odeint on
(z, delta_logp), the same two traces) on the same data: two moons, batch 256, a 32x2 tanh MLP,
Euler 8 steps, Adam 1e-3, one thread. Only measures; ``tests/perf/ratios.py`` tabulates the
``cnf train`` group.

    python -m pytest -q -m perf --benchmark-enable --benchmark-json=results/perf/cnf.json \\
        tests/perf/test_cnf_perf.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import robustbench_ode as rb
from robustbench_ode.config import TrainingConfig
from robustbench_ode.models.spec import SolveSpec
from robustbench_ode.training.loop import train_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the plain flow of the equality test
from tests.ffjord_plain import FFJORD, train_step  # noqa: E402

pytestmark = pytest.mark.perf

ITERS, BATCH, HIDDEN, STEPS = 10, 256, 32, 8
IMPLS = ("family_exact", "family_hutchinson", "hand_exact", "hand_hutchinson")


def _family(trace: str, data):
    cfg = TrainingConfig(iterations=ITERS, batch_size=BATCH, lr=1e-3)
    spec = SolveSpec("euler", steps=STEPS)

    def run():
        torch.manual_seed(0)
        model = rb.MODELS.get("cnf")((2,), 0, hidden=HIDDEN, depth=2, activation="tanh", trace=trace)
        outcome = train_model(model, data, spec, cfg, seed=0)
        assert outcome.status.value == "ok", outcome
    return run


def _hand(trace: str, data):
    def run():
        torch.manual_seed(0)
        model = FFJORD(hidden=HIDDEN, trace=trace, options={"step_size": 1 / STEPS})
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        order = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(0))
        for it in range(ITERS):
            idx = order[(it * BATCH) % len(order):][:BATCH]
            loss = train_step(model, data.x_train[idx], opt)
        assert torch.isfinite(torch.tensor(loss))
    return run


@pytest.mark.parametrize("impl", IMPLS)
def test_cnf_training_iteration(benchmark, impl):
    data = rb.DATASETS.get("two_moons")(0, n_train=BATCH * ITERS, n_test=BATCH)
    kind, trace = impl.split("_")
    run = (_family if kind == "family" else _hand)(trace, data)
    benchmark.group = "cnf train"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        benchmark.extra_info.update(impl=impl, threads=1, iterations=ITERS, batch=BATCH, hidden=HIDDEN,
                                    steps=STEPS)
        benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
    finally:
        torch.set_num_threads(before)
    if benchmark.stats is not None:  # None under --benchmark-disable (a smoke run)
        for stat in ("min", "median"):
            benchmark.extra_info[f"per_iteration_ms_{stat}"] = round(
                getattr(benchmark.stats.stats, stat) / ITERS * 1e3, 3)
