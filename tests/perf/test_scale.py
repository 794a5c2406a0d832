"""Speed at scale (``make perf``; BENCHMARKS.md, "Performance at scale"): the thread budget under
competing load, executors on a 4-cell suite, the test grid batched across seeds and configurations,
the per-cell cost of a 500-cell suite, and the machine's matrix-product throughput with the FLOPs
of one training iteration. Speed is never asserted: these only measure."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from robustbench_ode.config import load_suite, parse_suite
from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.harness.cell import cells
from robustbench_ode.harness.evaluation import evaluate, evaluate_points, evaluate_stacked
from robustbench_ode.harness.grid import grid_points
from robustbench_ode.run.threads import budget

pytestmark = pytest.mark.perf
ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("stacked_child.py")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


# --- the thread budget under competing load ---------------------------------------------------

@pytest.mark.parametrize("busy", [0, 1, 2])
@pytest.mark.parametrize("impl", ["budget", "old_default"])
def test_five_seeds_beside_busy_processes(benchmark, impl, busy):
    """Five stacked seeds (Euler 64, batch 128) beside 0-2 busy single-threaded processes. budget:
    the runner's thread budget (threads = free cores at the start); old_default: torch's default
    threads (the cores); both with OpenMP's default wait policy."""
    benchmark.group = f"contention busy={busy}"
    procs = _busy(busy)
    try:
        time.sleep(1.0)
        if impl == "budget":
            threads = budget(1)
        else:
            threads = os.cpu_count() or 1
        env = {k: v for k, v in ENV.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
        out = {}

        def run():
            done = subprocess.run([sys.executable, str(CHILD), "--threads", str(threads), "--iterations",
                                   "30"], env=env, capture_output=True, text=True, check=True, timeout=900)
            out.update(json.loads(done.stdout.strip().splitlines()[-1]))

        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        for p in procs:
            p.kill()
    # the child reports the thread count it ran with; it wins over the one asked for
    benchmark.extra_info.update({"impl": impl, "busy": busy, "threads": threads, **out})


# --- executors on a 4-cell suite ---------------------------------------------------------------

@pytest.mark.parametrize("iterations", [2000, 8000])
@pytest.mark.parametrize("impl", ["workers1", "workers2", "ray2"])
def test_executors_on_four_cells(benchmark, impl, iterations, tmp_path):
    """``run suites/scaling4_long.yaml`` (4 cells: Euler 2/4/8/16; 2000 iterations as shipped, and
    8000), wall time of the whole command with 1 or 2 workers (thread budget: 1 thread each on 2
    cores), and the executor's part alone (``units_seconds`` of meta.json: the cells, without the
    driver's start-up and report)."""
    if impl == "ray2":
        pytest.importorskip("ray")
    benchmark.group = f"executors scaling4_long {iterations} iterations"
    args = {"workers1": [], "workers2": ["--workers", "2"],
            "ray2": ["--executor", "ray", "--workers", "2"]}[impl]
    args += ["--set", f"training.iterations={iterations}"]
    env = {k: v for k, v in ENV.items() if k != "OMP_NUM_THREADS"}
    runs = iter(range(100))
    units: list[float] = []

    def run():
        out = tmp_path / f"run{next(runs)}"
        subprocess.run([sys.executable, "-m", "robustbench_ode", "run", "suites/scaling4_long.yaml", "--out",
                        str(out), "--no-progress", *args], cwd=ROOT, env=env, check=True, capture_output=True,
                       timeout=900)
        # a failed cell is fast: time only runs whose every cell trained and tested
        statuses = set(pd.read_csv(out / "results.csv")["status"])
        assert statuses == {"ok"}, (impl, statuses)
        units.append(json.loads((out / "meta.json").read_text())["units_seconds"])

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(impl=impl, iterations=iterations, units_seconds=units[-1])


# --- the test grid, batched ---------------------------------------------------------------------

def _grid_models(suite_path: str, seeds: int):
    suite = load_suite(ROOT / suite_path)
    group = [c for c in cells(suite) if c.steps == c.steps][:seeds]  # the first configuration's seeds
    group = [c for c in cells(suite) if (c.solver, c.steps) == (group[0].solver, group[0].steps)][:seeds]
    datas = [load_data(c) for c in group]
    models = [build_model(c, d).eval() for c, d in zip(group, datas)]
    points = grid_points(suite.test, suite.reference, group[0].train_spec, group[0].training.max_steps)
    return models, datas, points, group[0].training.eval_batch_size


@pytest.mark.parametrize("impl", ["per_point", "one_pass", "stacked"])
@pytest.mark.parametrize("suite", ["suites/quick.yaml", "suites/sphere2.yaml"])
def test_test_grid_batched(benchmark, suite, impl):
    """One configuration's seeds (quick: 2, paper scale: 5; untrained models) over the suite's
    whole test grid. per_point: each point a separate pass over the test set, seed by seed (before
    this change); one_pass: each batch loaded once for all points, seed by seed; stacked: the
    fixed-step points of all seeds as one stacked model."""
    seeds = 2 if "quick" in suite else 5
    models, datas, points, bs = _grid_models(suite, seeds)
    benchmark.group = f"test grid {Path(suite).stem} ({seeds} seeds, {len(points)} points)"

    def run():
        if impl == "per_point":
            return [[evaluate(m, d, p.spec, bs) for p in points] for m, d in zip(models, datas)]
        if impl == "one_pass":
            return [evaluate_points(m, d, points, bs) for m, d in zip(models, datas)]
        return evaluate_stacked(models, datas, points, bs)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1, iterations=1)
    benchmark.extra_info.update(impl=impl, seeds=seeds, points=len(points))


# --- per-cell cost of a 500-cell suite ----------------------------------------------------------

def test_five_hundred_cells(benchmark, tmp_path):
    """500 tiny cells of equal cost (seeds 0-499 of one configuration, each its own unit: the
    stacked path is switched off; 2 iterations, 32 test points, no diagnostics): cells per minute
    over the first and the last 50, and the runner's peak memory. The whole run includes the
    report, drawn once at the end."""
    suite = {"name": "many", "dataset": {"name": "sphere2", "n_train": 32, "n_test": 32},
             "model": {"name": "ott_conv1d", "width": 4, "fast": False},
             "training": {"iterations": 2, "batch_size": 16, "checkpoint_every": 0},
             "train": {"seeds": list(range(500)), "grid": [{"solver": "euler", "steps": [4]}]},
             "test": [{"solver": "euler", "step_factors": [1]}], "reference": {"tol": 1e-3},
             "diagnostics": {"enabled": False}}
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(suite))
    parse_suite(suite)
    out = tmp_path / "out"
    info = {}
    benchmark.group = "500 cells"

    def run():
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run([sys.executable, "-m", "robustbench_ode", "run", str(path), "--out", str(out),
                        "--no-progress"], cwd=ROOT, env=ENV, check=True, capture_output=True, timeout=1800)
        info["peak_rss_mb"] = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024

    benchmark.pedantic(run, rounds=1, iterations=1)
    done = sorted(p.stat().st_mtime for p in (out / "cells").glob("*/config.json"))
    first, last = done[49] - done[0], done[-1] - done[-50]
    benchmark.extra_info.update(impl="500 cells", cells=len(done), cells_per_min_first50=49 / first * 60,
                                cells_per_min_last50=49 / last * 60, **info)


# --- the machine's limit --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["1024x1024x1024", "5x128x64x64"])
def test_matmul_throughput(benchmark, shape):
    """Single-thread float32 matrix-product throughput: a large square product (the machine's
    limit) and the batched product of five stacked seeds' 64-wide layer."""
    torch.set_num_threads(1)
    if shape == "1024x1024x1024":
        a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
        flops, fn = 2 * 1024 ** 3, lambda: a @ b
    else:
        a, b = torch.randn(5, 128, 64), torch.randn(5, 64, 64)
        flops, fn = 2 * 5 * 128 * 64 * 64, lambda: torch.bmm(a, b)
    benchmark.group = "matmul throughput (1 thread)"
    benchmark.pedantic(fn, rounds=50 if shape.startswith("1024") else 2000, warmup_rounds=5, iterations=1)
    benchmark.extra_info.update(impl=shape, gflops=flops / benchmark.stats.stats.min / 1e9)


def test_flops_of_one_stacked_iteration(benchmark):
    """FLOPs of one five-seed training iteration (forward + backward; Sphere2, Euler 64, batch 128),
    counted by torch's flop counter on the real stacked model."""
    from robustbench_ode.config import DatasetConfig, ModelConfig, TrainingConfig
    from robustbench_ode.harness.cell import CellConfig
    from robustbench_ode.models.stacked import StackedClassifier

    cfg = TrainingConfig(iterations=1, batch_size=128)
    group = [CellConfig(dataset=DatasetConfig(name="sphere2"), model=ModelConfig(name="ott_conv1d"),
                        training=cfg, solver="euler", steps=64, seed=s) for s in range(5)]
    for c in group:
        c.dataset.check_params("dataset")
        c.model.check_params("model")
    datas = [load_data(c) for c in group]
    stack = StackedClassifier([build_model(c, d) for c, d in zip(group, datas)])
    x = torch.stack([d.x_train[:128] for d in datas])
    y = torch.stack([d.y_train[:128] for d in datas])
    counted = {}
    benchmark.group = "flops"

    def run():
        with FlopCounterMode(display=False) as counter:
            logits, _, _ = stack(x, group[0].train_spec)
            torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
        counted["flops"] = counter.get_total_flops()

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(impl="5 seeds euler64 b128", flops=counted["flops"],
                                flops_per_seed_iteration=counted["flops"] / 5)
