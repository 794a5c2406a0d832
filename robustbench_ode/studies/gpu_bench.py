"""Training throughput of the CIFAR10-shaped workload: ``python -m robustbench_ode.studies.gpu_bench``.

Runs the real training loop (:func:`robustbench_ode.training.loop.train`) on the protocol's CIFAR10
model (ott_conv2d, width 128, 3x32x32, about 179k parameters) with Euler at 8 steps, batch 256,
for fp32 and bf16 autocast, with and without ``torch.compile`` of the vector field. Reports
iterations/s, images/s, peak GPU memory, FLOPs of one iteration (counted by
``torch.utils.flop_counter`` on forward + backward) and the achieved fraction of the GPU's peak
dense matrix throughput (TF32 peak for fp32, since cuDNN runs fp32 convolutions as TF32 by
default; bf16 peak for bf16): the model FLOPs utilisation (MFU, ``fraction_of_peak``). On CUDA
every combination of bf16, channels_last and compile on and off is measured (``--channels-last`` and
``--compile`` narrow it). Uses synthetic uint8 CIFAR10-shaped data unless ``--data-root`` holds
CIFAR10: nothing is downloaded. The JSON is rewritten after every setting, so a run cut short by a
time limit keeps what it measured. Runs on CPU too (small settings), so the script itself is tested
without a GPU; ``scripts/gpu_check.sh`` runs it with the CUDA tests (BENCHMARKS.md, "GPU").
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import TrainingConfig
from ..core.console import configure
from ..core.context import resolve_device
from ..datasets.base import DataSplits
from ..datasets.images import STATS, cifar10
from ..models import MODELS
from ..models.spec import SolveSpec
from ..training.forward import PlainForward
from ..training.loop import Member, train

log = logging.getLogger(__name__)  # shown by main's configure() (core/console.py)

# Dense (no sparsity) peak tensor throughput in TFLOP/s from the vendors' datasheets:
# name fragment -> (tf32, bf16). Pass --peak-tflops for a GPU not listed.
PEAK_TFLOPS = {
    "H200": (494.7, 989.4),
    "H100 PCIe": (378.0, 756.0),
    "H100": (494.7, 989.4),  # SXM5
    "A100": (156.0, 312.0),
    "L40S": (183.0, 362.0),
}


def peak_tflops(device_name: str) -> tuple[float, float] | None:
    for fragment, peaks in PEAK_TFLOPS.items():
        if fragment in device_name:
            return peaks
    return None


def synthetic_cifar10(n_train: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n_train, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n_train,), generator=g)
    mean, std = STATS["cifar10"]
    return DataSplits(x, y, x[:256], y[:256], n_classes=10, scale=255.0, mean=mean, std=std)


def iteration_flops(model, data, steps: int, batch: int, device: str) -> int:
    """FLOPs of one training iteration (forward + backward), counted on the real modules."""
    from torch.utils.flop_counter import FlopCounterMode

    x = data.prepare(data.x_train[:batch].to(device))
    y = data.y_train[:batch].to(device)
    with FlopCounterMode(display=False) as counter:
        logits, _ = model(x, SolveSpec("euler", steps=steps))
        F.cross_entropy(logits, y).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def measure(data, *, amp: bool, compile: bool, steps: int, batch: int, width: int,
            iterations: int, warmup: int, device: str, channels_last: bool = True) -> dict:
    torch.manual_seed(0)
    model = MODELS.get("ott_conv2d")(data.in_shape, data.n_classes, width=width).to(device)
    flops = iteration_flops(model, data, steps, batch, device)
    cfg = TrainingConfig(iterations=warmup + iterations, batch_size=batch, lr=1e-3, amp=amp,
                         channels_last=channels_last, compile=compile)
    forward = PlainForward(model, cfg, device, seed=0)
    (out,) = train(forward, [Member(data, 0)], SolveSpec("euler", steps=steps), cfg)
    if out.status.value != "ok":
        return {"amp": amp, "compile": compile, "channels_last": channels_last,
                "status": out.status.value, "message": out.message}
    timed = [r["seconds"] for r in out.log[warmup:]]
    median = statistics.median(timed)
    peaks = [r["peak_gpu_mb"] for r in out.log if r["peak_gpu_mb"] is not None]
    return {"amp": amp, "compile": compile, "channels_last": channels_last, "status": "ok",
            "iterations_timed": len(timed),
            "median_s_per_iteration": median, "iterations_per_s": 1.0 / median,
            "images_per_s": batch / median, "flops_per_iteration": flops,
            "achieved_tflops": flops / median / 1e12, "peak_gpu_mb": max(peaks) if peaks else None}


def junit_summary(junit: Path) -> dict:
    """Counts of a pytest ``--junitxml`` file (the CUDA paths' tests run beside the benchmark)."""
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(t.get(k, 0)) for t in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = [f"{c.get('classname')}::{c.get('name')}" for t in suites for c in t.iter("testcase")
              if c.find("failure") is not None or c.find("error") is not None]
    return {**counts, "failed": failed}


def settings(choice: str, device: str, on_cpu: bool) -> list[bool]:
    """auto: both on CUDA, only ``on_cpu`` on CPU."""
    if choice == "both" or (choice == "auto" and device != "cpu"):
        return [False, True]
    return [on_cpu] if choice == "auto" else [choice == "on"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m robustbench_ode.studies.gpu_bench",
                                description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto (cuda if present), cuda or cpu")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--iterations", type=int, default=100, help="timed iterations per setting")
    p.add_argument("--warmup", type=int, default=20, help="untimed iterations (compile, autotune)")
    p.add_argument("--compile", choices=["auto", "both", "on", "off"], default="auto",
                   help="auto: with and without torch.compile on CUDA, without on CPU")
    p.add_argument("--channels-last", choices=["auto", "both", "on", "off"], default="auto",
                   help="auto: with and without channels_last on CUDA, with it on CPU")
    p.add_argument("--peak-tflops", type=float, nargs=2, metavar=("TF32", "BF16"),
                   help="peak dense TFLOP/s of the device, if it is not in the built-in table")
    p.add_argument("--data-root", help="use real CIFAR10 from here instead of synthetic tensors")
    p.add_argument("--tests-junit", type=Path, help="a pytest --junitxml file to summarise in the JSON")
    p.add_argument("--out", type=Path, default=Path("results/gpu_bench.json"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    configure()  # the study's table on stdout through the package log
    args = parse(argv)
    device = resolve_device(args.device)
    data = cifar10(0, root=args.data_root) if args.data_root else synthetic_cifar10(max(4 * args.batch, 1024))
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    peaks = tuple(args.peak_tflops) if args.peak_tflops else peak_tflops(name)
    report = {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "solver": "euler",
              "steps": args.steps, "batch": args.batch, "width": args.width,
              "data": "cifar10" if args.data_root else "synthetic", "peak_tflops": peaks, "results": []}
    if args.tests_junit is not None:
        report["tests"] = junit_summary(args.tests_junit) if args.tests_junit.is_file() else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for compile in settings(args.compile, device, on_cpu=False):
        for channels_last in settings(args.channels_last, device, on_cpu=True):
            for amp in (False, True):
                row = measure(data, amp=amp, compile=compile, channels_last=channels_last,
                              steps=args.steps, batch=args.batch, width=args.width,
                              iterations=args.iterations, warmup=args.warmup, device=device)
                if peaks and row["status"] == "ok":
                    row["peak_tflops"] = peaks[1] if amp else peaks[0]
                    row["fraction_of_peak"] = row["achieved_tflops"] / row["peak_tflops"]
                report["results"].append(row)
                log.info(json.dumps(row))
                args.out.write_text(json.dumps(report, indent=2))  # kept if a time limit cuts the run
    args.out.write_text(json.dumps(report, indent=2))
    log.info(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
