"""A plain Sphere2 model family for the sweep tests (tests/test_sweep.py): the package's
ott_conv1d layers re-housed in a model that calls torchdiffeq.odeint itself (held as an attribute,
asking for dopri5: substitution must supersede it), and a plain Adam loop that draws its batches
as the suite's loop does (consecutive seeded permutations), so a suite of the same settings
trains the same models. ``SWEEP_CALLS`` (a file) counts train_fn's calls; ``SWEEP_HANG_AT=k``
makes the k-th call of the process hang (the resume test kills it there)."""

from __future__ import annotations

import os
import time

import torch
from torch import nn
from torchdiffeq import odeint

import robustbench_ode as rb
from robustbench_ode.datasets.toy import sphere2

SETTINGS = {"iterations": 20, "batch_size": 32, "lr": 0.01, "width": 4, "n_train": 96, "n_test": 64}
_calls_here = [0]


class PlainSphere(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        net = rb.MODELS.get("ott_conv1d")((2,), 2, width=width, fast=False)  # the suite's init
        self.lift, self.f, self.readout = net.input_map, net.block.field, net.head
        self.solve = odeint
        self.register_buffer("t", torch.tensor([0.0, 1.0]))

    def forward(self, x):
        z = self.solve(self.f, self.lift(x), self.t, method="dopri5")
        return self.readout(z[-1].flatten(1))


def make_model(seed: int, settings: dict = SETTINGS) -> nn.Module:
    return PlainSphere(settings["width"])


def train_fn(model: nn.Module, data, settings: dict = SETTINGS) -> None:
    count = os.environ.get("SWEEP_CALLS")
    if count:
        with open(count, "a") as fh:
            fh.write("call\n")
    _calls_here[0] += 1
    if os.environ.get("SWEEP_HANG_AT") == str(_calls_here[0]):
        time.sleep(600)
    gen = torch.Generator().manual_seed(torch.initial_seed())  # sweep() seeded it with the cell's seed
    opt = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    buffer, size = torch.empty(0, dtype=torch.long), settings["batch_size"]
    for _ in range(settings["iterations"]):
        while len(buffer) < size:
            buffer = torch.cat([buffer, torch.randperm(len(data.y_train), generator=gen)])
        idx, buffer = buffer[:size], buffer[size:]
        loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def data(seed: int, settings: dict = SETTINGS):
    return sphere2(seed, n_train=settings["n_train"], n_test=settings["n_test"])


def suite(settings: dict, steps: list[int], seeds: list[int], grid: list[dict]) -> dict:
    """The suite of the same settings (per-seed data, as the family's data function). Its CPU
    fast paths (dense matrix products, seeds stacked, a hand-derived backward: the same model up
    to float rounding) are off, so both train with the very same operations."""
    return {"name": "family", "dataset": {"name": "sphere2", "n_train": settings["n_train"],
                                          "n_test": settings["n_test"]},
            "model": {"name": "ott_conv1d", "width": settings["width"]},
            "training": {"iterations": settings["iterations"], "batch_size": settings["batch_size"],
                         "lr": settings["lr"], "fast": False},
            "train": {"seeds": seeds, "grid": [{"solver": "euler", "steps": steps}]}, "test": grid}


def run(out):
    """The resume test's sweep: 4 cells."""
    grid = [{"solver": "euler", "step_factors": [1, 2]}, {"solver": "rk4", "step_factors": [1]}]
    return rb.sweep(make_model, train_fn, data, steps=[1, 2], seeds=[0, 1], out=out, name="sphere2",
                    grid=grid, threads=1,  # one thread in every process: the same reductions
                    stack=False)  # one train_fn call per cell: the kill lands after the first cell


if __name__ == "__main__":  # python tests/sweep_family.py OUT: the resume test's subprocess
    import sys

    run(sys.argv[1])
