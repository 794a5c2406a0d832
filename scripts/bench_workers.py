"""Executors on the 4-cell suites, for BENCHMARKS.md (issue 31): `--workers 1`, `--workers 2` and
Ray with 2 CPUs on suites/scaling4.yaml, and `--workers 2` against Ray on suites/scaling4_long.yaml;
N rounds, the configurations interleaved within each round, every run into a fresh folder. Prints a
Markdown table: wall time of the whole command, meta.json's breakdown of it (run/meta.py
WALL_TIME), the threads each worker really used, and the ratios against the baseline of the same
round, with the load average before and after.

    .venv/bin/python scripts/bench_workers.py                 # the record: idle machine, 2 rounds
    .venv/bin/python scripts/bench_workers.py --reps 1 --set training.iterations=10 --omp-threads 1
                                                              # a check that it runs (not a timing)

OMP_NUM_THREADS is removed from the runs' environment unless --omp-threads gives it, so that the
thread budget (run/threads.py) decides as it does for a user's run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("startup_seconds", "cells_seconds", "tables_seconds", "figures_seconds", "report_seconds")
RUNS = (  # (suite, label, arguments); the first of each suite is its baseline
    ("scaling4", "--workers 1", ["--workers", "1"]),
    ("scaling4", "--workers 2", ["--workers", "2"]),
    ("scaling4", "Ray, 2 CPUs", ["--executor", "ray", "--workers", "2"]),
    ("scaling4_long", "--workers 2", ["--workers", "2"]),
    ("scaling4_long", "Ray, 2 CPUs", ["--executor", "ray", "--workers", "2"]),
)


def has_ray(python: str) -> bool:
    return subprocess.run([python, "-c", "import ray"], capture_output=True).returncode == 0


def one_run(python: str, suite: str, args: list[str], out: Path, sets: list[str],
            env: dict[str, str]) -> dict:
    """One command in a fresh process and folder: its wall time and meta.json's breakdown."""
    cmd = [python, "-m", "robustbench_ode", "run", f"suites/{suite}.yaml", "--out", str(out),
           "--no-progress", "-q", *args, *[a for s in sets for a in ("--set", s)]]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}\n{done.stderr[-2000:]}")
    meta = json.loads((out / "meta.json").read_text())
    return {"wall": wall, "meta": meta, "ok": meta.get("failed_cells") == 0}


def table(rows: list[dict], suite: str) -> list[str]:
    """One Markdown table for ``suite``: each run of each round, its ratio to the round's baseline."""
    head = ("| round | executor | wall s | x baseline | startup | cells | tables | figures | report "
            "| outside | threads used | all cells ok |")
    lines = [f"**suites/{suite}.yaml**", "", head, "|" + "---|" * (head.count("|") - 1)]
    for r in (r for r in rows if r["suite"] == suite):
        base = next(b for b in rows if b["suite"] == suite and b["round"] == r["round"])
        m = r["meta"]
        parts = " | ".join(f"{m.get(k, float('nan')):.1f}" for k in PARTS)
        lines.append(f"| {r['round']} | {r['label']} | {r['wall']:.1f} | {base['wall'] / r['wall']:.2f}x "
                     f"| {parts} | {r['wall'] - m.get('wall_seconds', float('nan')):.1f} "
                     f"| {m.get('threads_used')} | {'yes' if r['ok'] else '**no**'} |")
    return lines


def medians(rows: list[dict]) -> list[str]:
    """The ratios the issue sets goals for, as medians over the rounds."""
    def med(suite: str, label: str) -> float | None:
        walls = [r["wall"] for r in rows if r["suite"] == suite and r["label"] == label]
        return statistics.median(walls) if walls else None
    out = ["", "| ratio (median wall time over the rounds) | value | goal |", "|---|---|---|"]
    pairs = (("scaling4", "--workers 1", "--workers 2", "`--workers 2` speed-up on scaling4", ">= 1.5x"),
             ("scaling4", "--workers 1", "Ray, 2 CPUs", "Ray speed-up on scaling4", ""),
             ("scaling4_long", "Ray, 2 CPUs", "--workers 2", "Ray wall / `--workers 2` wall on scaling4_long",
              "<= 1.10"))
    for suite, num, den, what, goal in pairs:
        a, b = med(suite, num), med(suite, den)
        if a and b:
            out.append(f"| {what} | {a / b:.2f}{'x' if 'speed-up' in what else ''} | {goal} |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2, help="rounds (default 2)")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="passed to every run, e.g. training.iterations=10 (a check, not a timing)")
    parser.add_argument("--omp-threads", type=int, default=None,
                        help="OMP_NUM_THREADS for the runs (default: unset, the thread budget decides)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--md", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if args.omp_threads is not None:
        env["OMP_NUM_THREADS"] = str(args.omp_threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    runs = [r for r in RUNS if "ray" not in r[2] or has_ray(args.python)]
    root = Path(tempfile.mkdtemp(prefix="bench_workers_"))
    load_before, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    rows = []
    try:
        for rnd in range(1, args.reps + 1):
            for i, (suite, label, extra) in enumerate(runs):
                out = root / f"r{rnd}_{i}"
                row = one_run(args.python, suite, extra, out, args.sets, env)
                rows.append({"round": rnd, "suite": suite, "label": label, **row})
                print(f"round {rnd} {suite} {label}: {row['wall']:.1f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load_after = os.getloadavg()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    lines = [f"{started} to {time.strftime('%H:%M:%S UTC', time.gmtime())}, tree {rev}, "
             f"{platform.platform()}, {os.cpu_count()} CPUs; load average (1, 5, 15 min) before "
             f"{', '.join(f'{v:.2f}' for v in load_before)}, "
             f"after {', '.join(f'{v:.2f}' for v in load_after)}; "
             f"{args.reps} rounds, interleaved; OMP_NUM_THREADS "
             f"{args.omp_threads if args.omp_threads is not None else 'unset'}"
             + (f"; --set {' '.join(args.sets)} (a check, not a timing)" if args.sets else "")
             + ("" if len(runs) == len(RUNS) else "; Ray not installed: its rows left out"), "",
             "Seconds; startup ... report: meta.json's wall-time breakdown (run/meta.py WALL_TIME); "
             "outside: the command's wall time less meta.json's wall_seconds (the interpreter's "
             "start before the package's import, and the process's exit).", ""]
    for suite in dict.fromkeys(r[0] for r in runs):
        lines += table(rows, suite) + [""]
    lines += medians(rows)
    text = "\n".join(lines)
    print(text)
    if args.md is not None:
        args.md.write_text(text + "\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
