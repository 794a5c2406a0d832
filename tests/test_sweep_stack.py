"""rb.sweep()'s seeds trained stacked (robustbench_ode/harness/lockstep.py): a plain model's
seeds at one step count train as one vmapped model and give the seed-by-seed results (atol 1e-5);
a model that cannot stack (its forward changes a buffer in place, or draws random numbers) trains
seed by seed, and sweep.json / SweepResult.stacking say why."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

import robustbench_ode as rb

sys.path.insert(0, str(Path(__file__).parent))
import sweep_family as fam  # noqa: E402

GRID = [{"solver": "euler", "step_factors": [1, 2]}, {"solver": "rk4", "step_factors": [1]}]
NUMBERS = ["accuracy", "loss"]


def _sweep(out, make_model=fam.make_model, stack=True, seeds=(0, 1, 2)):
    return rb.sweep(make_model, fam.train_fn, fam.data, steps=[2, 4], seeds=list(seeds), out=out,
                    grid=GRID, threads=1, stack=stack)


def _numbers(table: pd.DataFrame) -> pd.DataFrame:
    return table[["train_steps", "seed", "test_solver", "test_steps", *NUMBERS]].reset_index(drop=True)


def test_stacked_seeds_give_the_seed_by_seed_results(tmp_path):
    stacked, alone = _sweep(tmp_path / "stacked"), _sweep(tmp_path / "alone", stack=False)
    assert stacked.stacking == {"2": "stacked", "4": "stacked"}
    assert all(v.startswith("seed by seed") for v in alone.stacking.values())
    assert json.loads((tmp_path / "stacked" / "sweep.json").read_text())["stacking"] == stacked.stacking
    assert (stacked.table["train_status"] == "ok").all() and len(stacked.table) == len(alone.table)
    pd.testing.assert_frame_equal(_numbers(stacked.table), _numbers(alone.table), check_exact=False,
                                  atol=1e-5, rtol=0)
    pd.testing.assert_frame_equal(stacked.critical, alone.critical)
    again = _sweep(tmp_path / "stacked")  # resumed: every cell stored, nothing to stack
    assert again.trained == [] and again.stacking == {}


class Counting(fam.PlainSphere):
    """Keeps state in a buffer it changes in place: torch.func cannot stack it."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return super().forward(x)


class Dropping(fam.PlainSphere):
    """Draws random numbers in its forward: per seed, not stackable to the same results."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return super().forward(self.drop(x))


@pytest.mark.parametrize("cls, why", [(Counting, "changes its buffers in place"),
                                      (Dropping, "random")])
def test_a_model_that_cannot_stack_trains_seed_by_seed_and_says_why(tmp_path, cls, why):
    def make_model(seed):
        return cls(fam.SETTINGS["width"])

    result = _sweep(tmp_path / "out", make_model, seeds=(0, 1))
    assert set(result.stacking) == {"2", "4"}
    for how in result.stacking.values():
        assert how.startswith("seed by seed") and why in how, how
    assert (result.table["train_status"] == "ok").all()
    alone = _sweep(tmp_path / "alone", make_model, stack=False, seeds=(0, 1))
    pd.testing.assert_frame_equal(_numbers(result.table), _numbers(alone.table))
