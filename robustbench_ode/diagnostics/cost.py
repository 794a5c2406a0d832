"""What the diagnostics cost: ``python -m robustbench_ode.diagnostics.cost [steps ...]``.

Sphere2 (seed 0, 1000 test points), ``ott_conv1d`` width 32, untrained (the cost does not depend on
the weights much: the reference's step count does), Euler at each step count, dopri5 at 1e-7 as
the reference, float32, the threads torch is given. Prints one line per step count: total (wall)
seconds and the split into train points, fold Jacobians, reference Jacobians, transport, and the
process's CPU seconds for the call (less sensitive to a busy machine).
"""

from __future__ import annotations

import sys
import time

import torch

from ..datasets import DATASETS
from ..models import MODELS
from .model import diagnose_model


def main(argv: list[str] | None = None) -> int:
    steps_list = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or [2, 8, 32, 128]
    torch.manual_seed(0)
    splits = DATASETS.get("sphere2")(0)
    model = MODELS.get("ott_conv1d")(splits.in_shape, splits.n_classes, width=32)
    x = splits.prepare(splits.x_test)
    # warm-up: torch.func and torchdiffeq pay a one-time start-up cost on their first call
    diagnose_model(model, x[:8], splits.y_test[:8], "euler", 2)
    print(f"threads={torch.get_num_threads()} samples={x.shape[0]}")
    print("steps  cost_s  train_s  fold_s  ref_fold_s  transport_s  cpu_s  effect")
    for n in steps_list:
        cpu = time.process_time()
        d = diagnose_model(model, x, splits.y_test, "euler", n)
        s = d.scalars
        print(f"{n:5d}  {s['cost_s']:6.2f}  {s['cost_train_s']:7.3f}  {s['cost_fold_s']:6.2f}  "
              f"{s['cost_ref_fold_s']:10.2f}  {s['cost_transport_s']:11.2f}  "
              f"{time.process_time() - cpu:5.2f}  {s['effect']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
