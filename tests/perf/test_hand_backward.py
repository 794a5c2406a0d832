"""Single-seed Sphere2 Euler-64 training (batch 128, Adam): the hand-derived fixed-step backward
(solvers/dense_backward.py, with ``HAND_BACKWARD`` set) against the default path (autograd
through the fixed-step loop on the same dense field) and a hand-written loop (the three matrix
products per step written out, autograd, Adam; no log, no probes), at 1 and 2 threads.

``make perf`` runs it; speed is never asserted. Goal (issue 31): new >= 1.5x old, measured by the
lead on an idle machine, side by side (BENCHMARKS.md, "The hand-derived backward").
"""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from robustbench_ode.config import DatasetConfig, ModelConfig, TrainingConfig
from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.harness.cell import CellConfig
from robustbench_ode.models.fields import conv_as_matrix
from robustbench_ode.solvers import dense_backward
from robustbench_ode.training.loop import train_model

pytestmark = pytest.mark.perf

STEPS, BATCH, ITERS = 64, 128, 10  # as tests/perf/test_perf.py's training rows


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cell() -> CellConfig:
    tc = TrainingConfig(iterations=ITERS, batch_size=BATCH, lr=1e-4, checkpoint_every=0)
    return CellConfig(dataset=DatasetConfig(name="sphere2"), model=ModelConfig(name="ott_conv1d"),
                      training=tc, solver="euler", steps=STEPS, seed=0)


def _hand_loop(model, data):
    """One seed written by hand: dense Conv1d matrices once per iteration, 64 Euler steps of three
    matrix products, the head, cross-entropy, autograd, a standard Adam step."""
    p = dict(model.named_parameters())
    opt = torch.optim.Adam(p.values(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    h = 1.0 / STEPS

    def run():
        for _ in range(ITERS):
            idx = torch.randint(len(data.y_train), (BATCH,), generator=gen)
            z, y = data.x_train[idx].flatten(1), data.y_train[idx]
            layers = [(conv_as_matrix(p[f"block.field.{n}.weight"], 2, pad).t(),
                       p[f"block.field.{n}.bias"].repeat_interleave(2)) for n, pad in
                      (("conv1", 0), ("conv2", 1), ("conv3", 0))]
            (w1, b1), (w2, b2), (w3, b3) = layers
            for _ in range(STEPS):
                k = torch.addmm(b3, torch.addmm(b2, torch.addmm(b1, z, w1).relu(), w2).relu(), w3)
                z = z + h * k
            loss = F.cross_entropy(torch.addmm(p["head.bias"], z, p["head.weight"].t()), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()

    return run


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("impl", ["old_autograd", "new_hand_backward", "hand_loop"])
def test_train_sphere2_single_seed(benchmark, monkeypatch, impl, n_threads):
    benchmark.group = f"hand backward sphere2 euler{STEPS} b{BATCH} threads={n_threads}"
    cell = _cell()
    data = load_data(cell)
    if impl == "new_hand_backward":  # off by default (solvers/dense_backward.py)
        monkeypatch.setattr(dense_backward, "HAND_BACKWARD", True)
    if impl == "hand_loop":
        run = _hand_loop(build_model(cell, data), data)
    else:
        def run():
            model = build_model(cell, data)
            train_model(model, data, cell.train_spec, cell.training, seed=0)

    with threads(n_threads):
        benchmark.extra_info.update(threads=torch.get_num_threads(), impl=impl, iterations=ITERS)
        benchmark.pedantic(run, rounds=20, warmup_rounds=2, iterations=1)
    if benchmark.stats is None:  # None under --benchmark-disable (a smoke run)
        return
    benchmark.extra_info["per_seed_iteration_ms_min"] = round(benchmark.stats.stats.min / ITERS * 1e3, 3)
    benchmark.extra_info["per_seed_iteration_ms_median"] = round(
        benchmark.stats.stats.median / ITERS * 1e3, 3)
