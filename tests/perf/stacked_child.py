"""A child process for the contention benchmark (tests/perf/test_scale.py): trains Sphere2's model
(Euler 64 steps, batch 128) for five seeds stacked, with the thread count and OpenMP wait policy
its environment gives, and prints the milliseconds per seed-iteration as JSON.

    python tests/perf/stacked_child.py --threads 2 --iterations 40
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from robustbench_ode.config import DatasetConfig, ModelConfig, TrainingConfig
from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.harness.cell import CellConfig
from robustbench_ode.training.forward import StackedForward
from robustbench_ode.training.loop import Member, train


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainingConfig(iterations=args.iterations, batch_size=128, lr=1e-4, checkpoint_every=0)
    cells = [CellConfig(dataset=DatasetConfig(name="sphere2"), model=ModelConfig(name="ott_conv1d"),
                        training=cfg, solver="euler", steps=64, seed=s) for s in range(args.seeds)]
    for c in cells:
        c.dataset.check_params("dataset")
        c.model.check_params("model")
    datas = [load_data(c) for c in cells]
    warm = cfg.model_copy(update={"iterations": 5})
    models = [build_model(c, d) for c, d in zip(cells, datas)]
    members = [Member(d, c.seed) for d, c in zip(datas, cells)]
    train(StackedForward(models, "cpu"), members, cells[0].train_spec, warm)
    models = [build_model(c, d) for c, d in zip(cells, datas)]
    t0 = time.perf_counter()
    train(StackedForward(models, "cpu"), members, cells[0].train_spec, cfg)
    seconds = time.perf_counter() - t0
    print(json.dumps({"ms_per_seed_iteration": seconds / (args.iterations * args.seeds) * 1e3,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
