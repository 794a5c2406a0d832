"""The smallest suite a CLI test can run: one Sphere2 cell of two iterations (seed 0, Euler at
one step), tested at the train step (and at ``factors``). Each call returns a fresh copy."""

from __future__ import annotations


def tiny_suite(factors: tuple[float, ...] = (1,)) -> dict:
    return {
        "name": "tiny",
        "dataset": {"name": "sphere2", "n_train": 64, "n_test": 32},
        "model": {"name": "ott_conv1d", "width": 4},
        "training": {"iterations": 2, "batch_size": 32, "lr": 0.01},
        "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [1]}]},
        "test": [{"solver": "euler", "step_factors": list(factors)}],
    }
