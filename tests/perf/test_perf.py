"""Speed benchmarks with their baselines in the same run (``make perf``; BENCHMARKS.md).

Each pytest-benchmark *group* holds one workload and its baselines; ``tests/perf/ratios.py``
turns the saved JSON into the ratio table. Speed is never asserted: these only measure.

1. Fixed-step solves: our ``solve`` vs a hand-written loop of the same steps on the same model
   (Sphere2's field), forward and forward + backward, and torchdiffeq where it has the method.
2. Sphere2 training iterations (Euler, 64 steps, batch 128, Adam): a re-implementation of the
   released reference training step (written here from its published description: nn.Conv1d
   block, torchdiffeq ``odeint`` with method euler and a step_size option, a standard Adam step),
   our single-seed path (fast and plain) and the 5-seed batched path, per seed-iteration.
4. Evaluating a model over a test grid vs the sum of its bare solves.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
import torchdiffeq
from torch import nn

from robustbench_ode.config import DatasetConfig, ModelConfig, TrainingConfig
from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.harness.cell import CellConfig
from robustbench_ode.harness.evaluation import evaluate
from robustbench_ode.models import SolveSpec
from robustbench_ode.solvers import SOLVERS, Kind
from robustbench_ode.training.forward import StackedForward
from robustbench_ode.training.loop import Member, train, train_model

pytestmark = pytest.mark.perf

STEPS, BATCH, ITERS, SEEDS = 64, 128, 10, 5
SOLVE_STEPS = 16


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    """Half a second of the workload first: the first benchmark of a session otherwise pays for
    lazy initialisation (BLAS, allocator) that no later one does."""
    cell = _cell(0)
    data = load_data(cell)
    model = build_model(cell, data)
    with threads(1):
        train_model(model, data, cell.train_spec, cell.training.model_copy(update={"iterations": 30}), seed=0)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread unless a benchmark says otherwise: the machine is shared, and two
    threads on 2 busy cores only add contention to these tiny products (see test_train_sphere2)."""
    with threads(1):
        yield


def _info(benchmark, **kw):
    benchmark.extra_info.update(threads=torch.get_num_threads(), **kw)


# --- 1. fixed-step solves -------------------------------------------------------------------

def _hand_written(name):
    """The same steps written out by hand, the way one would without a tableau."""
    def euler(f, z, h, n):
        for i in range(n):
            z = z + h * f(i * h, z)
        return z

    def midpoint(f, z, h, n):
        for i in range(n):
            t = i * h
            z = z + h * f(t + h / 2, z + h / 2 * f(t, z))
        return z

    def heun(f, z, h, n):
        for i in range(n):
            t = i * h
            k1 = f(t, z)
            k2 = f(t + h, z + h * k1)
            z = z + h / 2 * (k1 + k2)
        return z

    def rk4(f, z, h, n):
        for i in range(n):
            t = i * h
            k1 = f(t, z)
            k2 = f(t + h / 2, z + h / 2 * k1)
            k3 = f(t + h / 2, z + h / 2 * k2)
            k4 = f(t + h, z + h * k3)
            z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return z

    def rk4_38(f, z, h, n):
        for i in range(n):
            t = i * h
            k1 = f(t, z)
            k2 = f(t + h / 3, z + h / 3 * k1)
            k3 = f(t + 2 * h / 3, z + h * (k2 - k1 / 3))
            k4 = f(t + h, z + h * (k1 - k2 + k3))
            z = z + h / 8 * (k1 + 3 * (k2 + k3) + k4)
        return z

    return {"euler": euler, "midpoint": midpoint, "heun": heun, "rk4": rk4, "rk4_38": rk4_38}[name]


FIXED = [n for n in SOLVERS.names() if SOLVERS.get(n).kind is Kind.FIXED]


@pytest.fixture(scope="module")
def sphere_field():
    torch.manual_seed(0)
    model = build_model(_cell(0), load_data(_cell(0)))
    z0 = torch.randn(BATCH, 1, 2)
    return model.block.field, z0


@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("impl", ["ours", "hand", "torchdiffeq"])
@pytest.mark.parametrize("name", FIXED)
def test_solve(benchmark, sphere_field, name, impl, backward):
    field, z0 = sphere_field
    solver = SOLVERS.get(name)
    if impl == "torchdiffeq" and solver.torchdiffeq_method is None:
        pytest.skip(f"torchdiffeq has no {name}")
    h = 1.0 / SOLVE_STEPS
    benchmark.group = f"solve {name} {'fwd+bwd' if backward else 'fwd'}"
    _info(benchmark, impl=impl, steps=SOLVE_STEPS, batch=BATCH)
    t = torch.tensor([0.0, 1.0])

    def run():
        z = z0.detach().requires_grad_(backward)
        with field.prepared(z), torch.set_grad_enabled(backward):
            if impl == "ours":
                out = solver.solve(field, z, (0.0, 1.0), steps=SOLVE_STEPS).z
            elif impl == "hand":
                out = _hand_written(name)(field, z, h, SOLVE_STEPS)
            else:
                out = torchdiffeq.odeint(field, z, t, method=solver.torchdiffeq_method,
                                         options={"step_size": h})[-1]
            if backward:
                out.square().sum().backward()
        return out

    benchmark.pedantic(run, rounds=100, warmup_rounds=10, iterations=1)


# --- 2. Sphere2 training --------------------------------------------------------------------

def _cell(seed: int, fast: bool = True, record_memory: bool = True, memory_every: int = 10) -> CellConfig:
    tc = TrainingConfig(iterations=ITERS, batch_size=BATCH, lr=1e-4, fast=fast,
                        record_memory=record_memory, memory_every=memory_every, checkpoint_every=0)
    return CellConfig(dataset=DatasetConfig(name="sphere2"), model=ModelConfig(name="ott_conv1d"),
                      training=tc, solver="euler", steps=STEPS, seed=seed)


class ReferenceODEFunc(nn.Module):
    """The protocol's block as the reference code writes it: nn.Conv1d layers on (B, 1, 2)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, width, 1)
        self.conv2 = nn.Conv1d(width, width, 3, padding=1)
        self.conv3 = nn.Conv1d(width, 1, 1)

    def forward(self, t, x):
        return self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))


class ReferenceModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.odefunc = ReferenceODEFunc()
        self.fc = nn.Linear(2, 2)
        self.register_buffer("t", torch.tensor([0.0, 1.0]))

    def forward(self, x):
        z = torchdiffeq.odeint(self.odefunc, x.view(-1, 1, 2), self.t, method="euler",
                               options={"step_size": 1.0 / STEPS})[-1]
        return self.fc(z.flatten(1))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("impl", ["reference", "ours_plain", "ours_single", "ours_single_no_memory",
                                  "ours_single_probe_every", "ours_5_seeds", "hand_5_seeds"])
def test_train_sphere2(benchmark, impl, n_threads):
    """One round = ITERS iterations; extra_info per_seed_iteration_ms is what the table reports."""
    benchmark.group = f"train sphere2 euler{STEPS} b{BATCH} threads={n_threads}"
    cells = [_cell(s, fast=impl != "ours_plain", record_memory=impl != "ours_single_no_memory",
                   memory_every=1 if impl == "ours_single_probe_every" else 10)
             for s in range(SEEDS if impl.endswith("5_seeds") else 1)]
    datas = [load_data(c) for c in cells]

    if impl == "reference":
        torch.manual_seed(0)
        model = ReferenceModel()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        gen = torch.Generator().manual_seed(0)
        x_all, y_all = datas[0].x_train, datas[0].y_train

        def run():
            for _ in range(ITERS):
                idx = torch.randint(len(y_all), (BATCH,), generator=gen)
                loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss.item()
    elif impl == "hand_5_seeds":
        run = _hand_five_seeds([build_model(c, d) for c, d in zip(cells, datas)], datas)
    elif impl == "ours_5_seeds":
        def run():
            models = [build_model(c, d) for c, d in zip(cells, datas)]
            train(StackedForward(models, "cpu"), [Member(d, c.seed) for d, c in zip(datas, cells)],
                  cells[0].train_spec, cells[0].training)
    else:
        def run():
            model = build_model(cells[0], datas[0])
            train_model(model, datas[0], cells[0].train_spec, cells[0].training, seed=0)

    with threads(n_threads):
        _info(benchmark, impl=impl, iterations=ITERS, seeds=len(cells))
        benchmark.pedantic(run, rounds=20, warmup_rounds=2, iterations=1)
    per = benchmark.stats.stats.min / (ITERS * len(cells)) * 1e3
    benchmark.extra_info["per_seed_iteration_ms_min"] = round(per, 3)
    benchmark.extra_info["per_seed_iteration_ms_median"] = round(
        benchmark.stats.stats.median / (ITERS * len(cells)) * 1e3, 3)


def _hand_five_seeds(models, datas):
    """The five-seed baseline written by hand: the stacked field as three batched matrix products
    per Euler step (the dense Conv1d matrices built once per iteration), the head, summed
    cross-entropy, autograd, a standard Adam step; nothing else (no log, no probes)."""
    from robustbench_ode.models.fields import conv_as_matrix

    names = [n for n, _ in models[0].named_parameters()]
    params = [torch.stack([m.get_parameter(n).detach() for m in models]).clone().requires_grad_(True)
              for n in names]
    p = dict(zip(names, params))
    opt = torch.optim.Adam(params, lr=1e-4)
    gens = [torch.Generator().manual_seed(s) for s in range(len(models))]
    h = 1.0 / STEPS

    def run():
        for _ in range(ITERS):
            idx = [torch.randint(len(d.y_train), (BATCH,), generator=g) for d, g in zip(datas, gens)]
            z = torch.stack([d.x_train[i] for d, i in zip(datas, idx)])
            y = torch.stack([d.y_train[i] for d, i in zip(datas, idx)])
            layers = []
            for name, pad in (("conv1", 0), ("conv2", 1), ("conv3", 0)):
                w = conv_as_matrix(p[f"block.field.{name}.weight"], 2, pad).transpose(1, 2)
                layers.append((p[f"block.field.{name}.bias"].repeat_interleave(2, dim=1).unsqueeze(1), w))
            (b1, w1), (b2, w2), (b3, w3) = layers
            for _ in range(STEPS):
                k = torch.baddbmm(b3, torch.baddbmm(b2, torch.baddbmm(b1, z, w1).relu(), w2).relu(), w3)
                z = z + h * k
            logits = torch.baddbmm(p["head.bias"].unsqueeze(1), z, p["head.weight"].transpose(1, 2))
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
            loss = loss.view(len(models), -1).mean(1)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
            loss.sum().item()

    return run


# --- 4. the test grid -----------------------------------------------------------------------

GRID = ([SolveSpec("euler", steps=n) for n in (1, 2, 4, 8, 16, 32, 64)]
        + [SolveSpec("rk4", steps=n) for n in (1, 4, 16)] + [SolveSpec("dopri5", rtol=1e-3, atol=1e-3)])


@pytest.mark.parametrize("impl", ["evaluate_grid", "sum_of_solves"])
def test_test_grid(benchmark, impl):
    """evaluate() over the grid (accuracy, loss, counters) vs the bare solves of the same batches."""
    cell = _cell(0)
    data = load_data(cell)
    model = build_model(cell, data).eval()
    benchmark.group = "test grid sphere2 (1000 test points, 11 configurations)"
    bs = cell.training.eval_batch_size
    _info(benchmark, impl=impl, points=len(GRID), n_test=len(data.y_test))

    def run():
        if impl == "evaluate_grid":
            return [evaluate(model, data, spec, bs) for spec in GRID]
        with torch.no_grad():
            return [model(data.x_test[i:i + bs], spec) for spec in GRID
                    for i in range(0, len(data.y_test), bs)]

    benchmark.pedantic(run, rounds=20, warmup_rounds=2, iterations=1)
