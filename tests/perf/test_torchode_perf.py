"""torchode vs torchdiffeq on the adaptive part of a Sphere2 test grid (BENCHMARKS.md conventions).

One group per tolerance (1e-3, 1e-5, 1e-7): torchdiffeq's dopri5 through ``robustbench_ode.solve``
beside torchode's dopri5 and tsit5 under batch and per-sample control, each a forward solve of the
1000 Sphere2 test points through an (untrained, seed 0) ``ott_conv1d`` field of width 32, one
thread, inside the field's ``prepared()`` as the evaluation does. ``extra_info`` holds NFE (batched
calls), the per-sample mean NFE, accepted/rejected steps, the error against a float64 dopri8
reference at 1e-10 and the median process CPU time. Speed is never asserted.

    python -m pytest -q -m perf --benchmark-enable --benchmark-json=results/perf/torchode.json \\
        tests/perf/test_torchode_perf.py
    python tests/perf/test_torchode_perf.py results/perf/torchode.json   # the table
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time

import pytest
import torch

pytestmark = pytest.mark.perf

TOLS = (1e-3, 1e-5, 1e-7)
IMPLS = ("torchdiffeq_dopri5", "torchode_dopri5_batch", "torchode_dopri5_per_sample",
         "torchode_tsit5_batch", "torchode_tsit5_per_sample")


@pytest.fixture(scope="module")
def sphere2():
    import robustbench_ode as rb
    from robustbench_ode.models.fields import prepared

    torch.manual_seed(0)
    model = rb.MODELS.get("ott_conv1d")((2,), 2, width=32).eval()
    data = rb.DATASETS.get("sphere2")(0)
    with torch.no_grad():
        z0 = model.input_map(data.x_test)
    field = model.block.field
    f64, z64 = copy.deepcopy(field).double(), z0.double()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), prepared(f64, z64):
            ref = rb.solve(f64, z64, "dopri8", rtol=1e-10, atol=1e-10)
    finally:
        torch.set_num_threads(before)
    assert ref.stats.status.value == "ok"
    return field, z0, ref.z


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _solver(impl: str, tol: float):
    import robustbench_ode as rb

    if impl == "torchdiffeq_dopri5":
        def run(field, z0):
            s = rb.solve(field, z0, "dopri5", rtol=tol, atol=tol)
            return s.z, s.stats
        return run
    pytest.importorskip("torchode")
    _, method, control = impl.split("_", 2)
    name = {"dopri5": "dopri5_torchode", "tsit5": "tsit5"}[method]

    def run(field, z0):
        s = rb.solve(field, z0, name, rtol=tol, atol=tol, control=control)
        return s.z, s.stats
    return run


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tol", TOLS, ids=lambda t: f"{t:g}")
def test_adaptive_sphere2(benchmark, sphere2, impl, tol):
    from robustbench_ode.models.fields import prepared

    field, z0, ref = sphere2
    solve = _solver(impl, tol)
    benchmark.group = f"torchode sphere2 1000 points tol={tol:g}"
    cpu: list[float] = []
    out: dict = {}

    def run():
        c = time.process_time()
        with torch.no_grad(), prepared(field, z0):
            out["z"], out["stats"] = solve(field, z0)
        cpu.append(time.process_time() - c)

    benchmark.pedantic(run, rounds=7, warmup_rounds=1, iterations=1)
    z, stats = out["z"], out["stats"]
    err = (z.double() - ref).flatten(1).norm(dim=1)  # per-sample Euclidean error at t1
    benchmark.extra_info.update(
        impl=impl, tol=tol, threads=torch.get_num_threads(), status=stats.status.value,
        nfe=stats.nfe, accepted=stats.accepted, rejected=stats.rejected,
        nfe_per_sample_mean=round(float(getattr(stats, "nfe_per_sample_mean", stats.nfe)), 1),
        err_max=float(err.max()), err_mean=float(err.mean()),
        cpu_ms_median=round(statistics.median(cpu[1:] or cpu) * 1e3, 2))


def table(path: str) -> str:
    doc = json.load(open(path))
    rows = ["| tol | solver | wall median ms | wall min ms | CPU median ms | NFE (batched calls) "
            "| NFE per sample (mean) | accepted / rejected | max err | mean err |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    bench = [b for b in doc["benchmarks"] if b["group"].startswith("torchode sphere2")]
    for b in sorted(bench, key=lambda b: (-b["extra_info"]["tol"], IMPLS.index(b["extra_info"]["impl"]))):
        e, s = b["extra_info"], b["stats"]
        rows.append(f"| {e['tol']:g} | {e['impl']} | {s['median'] * 1e3:.1f} | {s['min'] * 1e3:.1f} | "
                    f"{e['cpu_ms_median']:.1f} | {e['nfe']} | {e['nfe_per_sample_mean']:.1f} | "
                    f"{e['accepted']} / {e['rejected']} | {e['err_max']:.2e} | {e['err_mean']:.2e} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(sys.argv[1] if len(sys.argv) > 1 else "results/perf/torchode.json"))
