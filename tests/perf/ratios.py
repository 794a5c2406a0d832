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
        groups[b["group"]][b["extra_info"]["impl"]] = b
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
        for key in ("reference", "ours_plain", "ours_single", "ours_5_seeds"):
            b = impls.get(key)
            if b is None:
                continue
            e = b["extra_info"]
            out.append(f"| {key} | {e['threads']} | {e['per_seed_iteration_ms_min']:.2f} | "
                       f"{e['per_seed_iteration_ms_median']:.2f} | "
                       f"{ref_ms / e['per_seed_iteration_ms_min']:.1f}x |")
    for group, impls in groups.items():
        if group.startswith("test grid"):
            ev, bare = impls["evaluate_grid"]["stats"], impls["sum_of_solves"]["stats"]
            out += ["", f"{group}: evaluate {ev['min'] * 1e3:.1f} ms, bare solves "
                        f"{bare['min'] * 1e3:.1f} ms (min), ratio {ev['min'] / bare['min']:.3f} "
                        f"(median ratio {ev['median'] / bare['median']:.3f})"]
    return "\n".join(out)


if __name__ == "__main__":
    print(tables(sys.argv[1] if len(sys.argv) > 1 else "results/perf/benchmarks.json"))
