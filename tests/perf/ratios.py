"""The ratio tables of BENCHMARKS.md from pytest-benchmark's JSON (``make perf`` runs this).

    python tests/perf/ratios.py results/perf/benchmarks.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def tables(path: str) -> str:
    doc = json.load(open(path))
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for b in doc["benchmarks"]:
        groups[b["group"] or ""][b["extra_info"]["impl"]] = b
    out = [f"machine: {doc['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
           f"{doc['datetime']}", ""]
    out += ["| solve (16 steps, batch 128, Sphere2 field) | hand-written min | ours / hand (min) "
            "| ours / hand (median) | torchdiffeq / hand (min) |", "|---|---|---|---|---|"]
    for group, impls in sorted(groups.items()):
        if not group.startswith("solve"):
            continue
        by = {k: v["stats"] for k, v in impls.items()}
        hand, ours, tdq = by["hand"], by["ours"], by.get("torchdiffeq")
        tdq_ratio = f"{tdq['min'] / hand['min']:.2f}" if tdq else "no such method"
        out.append(f"| {group[6:]} | {hand['min'] * 1e3:.2f} ms | {ours['min'] / hand['min']:.3f} | "
                   f"{ours['median'] / hand['median']:.3f} | {tdq_ratio} |")
    out += ["", "| training, Sphere2 Euler 64, batch 128 | threads | ms per seed-iteration (min) "
            "| median | speed-up over reference (min) |", "|---|---|---|---|---|"]
    for group, impls in sorted(groups.items()):
        if not group.startswith("train"):
            continue
        ref = impls["reference"]
        ref_ms = ref["extra_info"]["per_seed_iteration_ms_min"]
        for key in ("reference", "ours_plain", "ours_single", "ours_single_no_memory",
                    "ours_single_probe_every", "ours_5_seeds", "hand_5_seeds"):
            b = impls.get(key)
            if b is None:
                continue
            e = b["extra_info"]
            out.append(f"| {key} | {e['threads']} | {e['per_seed_iteration_ms_min']:.2f} | "
                       f"{e['per_seed_iteration_ms_median']:.2f} | "
                       f"{ref_ms / e['per_seed_iteration_ms_min']:.1f}x |")
    for group, impls in groups.items():
        if group.startswith("test grid") and "evaluate_grid" in impls:
            ev, bare = impls["evaluate_grid"]["stats"], impls["sum_of_solves"]["stats"]
            out += ["", f"{group}: evaluate {ev['min'] * 1e3:.1f} ms, bare solves "
                        f"{bare['min'] * 1e3:.1f} ms (min), ratio {ev['min'] / bare['min']:.3f} "
                        f"(median ratio {ev['median'] / bare['median']:.3f})"]
    out += _scale(groups) + _stacking(groups) + _cnf(groups)
    return "\n".join(out)


def _stacking(groups: dict[str, dict[str, dict]]) -> list[str]:
    """The table of tests/perf/test_stack_perf.py: stacked against seed-by-seed, per family."""
    rows = [(g[6:], v) for g, v in sorted(groups.items())
            if g.startswith("stack ") and {"stacked", "seed_by_seed"} <= set(v)]
    if not rows:
        return []
    out = ["", "| family (5 seeds, 1 thread) | stacked ms per seed-iteration | seed by seed | "
           "speed-up |", "|---|---|---|---|"]
    for family, v in rows:
        a, b = (v[k]["extra_info"]["per_seed_iteration_ms_min"] for k in ("stacked", "seed_by_seed"))
        out.append(f"| {family} | {a:.2f} | {b:.2f} | {b / a:.2f}x |")
    return out


def _cnf(groups: dict[str, dict[str, dict]]) -> list[str]:
    """The table of tests/perf/test_cnf_perf.py: the cnf family's training iteration against a
    hand-written torchdiffeq FFJORD-style loop, exact trace and Hutchinson."""
    impls = groups.get("cnf train", {})
    hand = impls.get("hand_exact", {}).get("extra_info", {}).get("per_iteration_ms_min")
    if not hand:
        return []
    out = ["", "| CNF training, two moons, batch 256, 32x2 tanh, Euler 8 (1 thread) | ms per iteration "
           "(min) | median | / hand-written exact (min) |", "|---|---|---|---|"]
    for key in ("family_exact", "family_hutchinson", "hand_exact", "hand_hutchinson"):
        e = impls.get(key, {}).get("extra_info", {})
        if "per_iteration_ms_min" in e:
            out.append(f"| {key} | {e['per_iteration_ms_min']:.2f} | {e['per_iteration_ms_median']:.2f} | "
                       f"{e['per_iteration_ms_min'] / hand:.2f} |")
    return out


def _scale(groups: dict[str, dict[str, dict]]) -> list[str]:
    """The tables of tests/perf/test_scale.py."""
    out = []
    busy = {g: v for g, v in groups.items() if g.startswith("contention")}
    if busy:
        idle = {impl: b["extra_info"]["ms_per_seed_iteration"]
                for impl, b in busy.get("contention busy=0", {}).items()}
        out += ["", "| five seeds, Euler 64 | busy processes | threads | ms per seed-iteration | x idle |",
                "|---|---|---|---|---|"]
        for group in sorted(busy):
            for impl, b in sorted(busy[group].items()):
                e = b["extra_info"]
                base = idle.get(impl)
                ratio = f"{e['ms_per_seed_iteration'] / base:.2f}" if base else "-"
                ms = e["ms_per_seed_iteration"]
                out.append(f"| {impl} | {e['busy']} | {e['threads']} | {ms:.2f} | {ratio} |")
    for group, ex in sorted(groups.items()):
        if not group.startswith("executors"):
            continue
        w1 = ex.get("workers1", {})
        out += ["", f"| {group[10:]} (4 cells) | wall s | speed-up over 1 worker | the cells alone, s "
                "| speed-up |", "|---|---|---|---|---|"]
        for impl in ("workers1", "workers2", "ray2"):
            if impl in ex:
                t, u = ex[impl]["stats"]["min"], ex[impl]["extra_info"].get("units_seconds")
                u1 = w1.get("extra_info", {}).get("units_seconds")
                wall = f"{w1['stats']['min'] / t:.2f}x" if w1 else "-"
                cells = f"{u:.1f} | {u1 / u:.2f}x" if u and u1 else "- | -"
                out.append(f"| {impl} | {t:.1f} | {wall} | {cells} |")
    for group, impls in sorted(groups.items()):
        if group.startswith("test grid") and "per_point" in impls:
            base = impls["per_point"]["stats"]["min"]
            out += ["", f"| {group} | min ms | speed-up |", "|---|---|---|"]
            for impl in ("per_point", "one_pass", "stacked"):
                if impl in impls:
                    t = impls[impl]["stats"]["min"]
                    out.append(f"| {impl} | {t * 1e3:.1f} | {base / t:.2f}x |")
    for group, impls in groups.items():
        for impl, b in impls.items():
            e = b["extra_info"]
            if impl == "500 cells":
                out += ["", f"500 cells: {e['cells']} stored; {e['cells_per_min_first50']:.0f} cells/min "
                            f"over the first 50, {e['cells_per_min_last50']:.0f} over the last 50; peak "
                            f"memory {e.get('peak_rss_mb', float('nan')):.0f} MB; whole run "
                            f"{b['stats']['min']:.1f} s"]
            if group.startswith("matmul"):
                out.append(f"matmul {impl}: {e['gflops']:.1f} GFLOP/s (1 thread, min time)")
            if group == "flops":
                out.append(f"FLOPs of one five-seed iteration: {e['flops'] / 1e9:.3f} GFLOP "
                           f"({e['flops_per_seed_iteration'] / 1e6:.1f} MFLOP per seed-iteration)")
    return out


if __name__ == "__main__":
    print(tables(sys.argv[1] if len(sys.argv) > 1 else "results/perf/benchmarks.json"))
