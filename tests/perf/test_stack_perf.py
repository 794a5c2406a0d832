"""ms per seed-iteration of seed-stacked training against seed-by-seed, for every stackable
registered family (``make perf``; issue 31). The stacked path is the family's own (the field's
hand-written stacked form where it has one, else torch.vmap: training/forward.py); the baseline
trains the same seeds one after another. Only measures; ``tests/perf/ratios.py`` tabulates the
``stack <family>`` groups."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.models import MODELS
from robustbench_ode.training.forward import StackedForward
from robustbench_ode.training.loop import Member, train, train_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the equality test's cells
from test_stack_vmap import seed_cells  # noqa: E402

pytestmark = pytest.mark.perf

SEEDS, ITERS = 5, 10
STACKABLE = [n for n in MODELS.names() if MODELS.meta(n).stackable]


@pytest.mark.parametrize("impl", ["stacked", "seed_by_seed"])
@pytest.mark.parametrize("name", STACKABLE)
def test_stacked_vs_seed_by_seed(benchmark, name, impl):
    cells = seed_cells(name, n=SEEDS, iterations=ITERS)
    datas = [load_data(c) for c in cells]
    spec, cfg = cells[0].train_spec, cells[0].training

    def stacked():
        models = [build_model(c, d) for c, d in zip(cells, datas)]
        train(StackedForward(models, "cpu"), [Member(d, c.seed) for d, c in zip(datas, cells)], spec, cfg)

    def seed_by_seed():
        for c, d in zip(cells, datas):
            train_model(build_model(c, d), d, spec, cfg, seed=c.seed)

    benchmark.group = f"stack {name}"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        benchmark.extra_info.update(impl=impl, threads=1, seeds=SEEDS, iterations=ITERS)
        benchmark.pedantic(stacked if impl == "stacked" else seed_by_seed, rounds=5,
                           warmup_rounds=1, iterations=1)
    finally:
        torch.set_num_threads(before)
    if benchmark.stats is not None:  # None under --benchmark-disable (a smoke run)
        benchmark.extra_info["per_seed_iteration_ms_min"] = round(
            benchmark.stats.stats.min / (ITERS * SEEDS) * 1e3, 3)


@pytest.mark.parametrize("impl", ["stacked", "seed_by_seed"])
def test_sweep_plain_model_stacked_vs_seed_by_seed(benchmark, impl):
    """sweep()'s stacked path for a plain model (tests/sweep_family.py's researcher loop, Euler at
    4 steps): its seeds in lockstep (harness/lockstep.py) against the same loop seed by seed."""
    import sweep_family as fam

    from robustbench_ode.harness.lockstep import Lockstep
    from robustbench_ode.harness.substitution import substituted
    from robustbench_ode.models.spec import SolveSpec

    settings = {**fam.SETTINGS, "iterations": ITERS}
    seeds = list(range(SEEDS))
    datas = [fam.data(s, settings) for s in seeds]

    def built():
        return [fam.make_model(s, settings) for s in seeds]

    def train_fn(model, data):
        fam.train_fn(model, data, settings)

    def stacked():
        with substituted(SolveSpec("euler", steps=4), keep=False):
            Lockstep(built()).train(train_fn, datas, seeds)

    def seed_by_seed():
        with substituted(SolveSpec("euler", steps=4), keep=False):
            for s, model, data in zip(seeds, built(), datas):
                torch.manual_seed(s)
                train_fn(model, data)

    benchmark.group = "stack sweep plain model"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        benchmark.extra_info.update(impl=impl, threads=1, seeds=SEEDS, iterations=ITERS)
        benchmark.pedantic(stacked if impl == "stacked" else seed_by_seed, rounds=5,
                           warmup_rounds=1, iterations=1)
    finally:
        torch.set_num_threads(before)
    if benchmark.stats is not None:  # None under --benchmark-disable (a smoke run)
        benchmark.extra_info["per_seed_iteration_ms_min"] = round(
            benchmark.stats.stats.min / (ITERS * SEEDS) * 1e3, 3)
