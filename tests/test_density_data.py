"""The density datasets (datasets/density.py), read off the registry: shapes, seeding, the 2-D
window, the checkerboard's support and the digits' dequantisation and bits-per-dimension offset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robustbench_ode import DATASETS
from robustbench_ode.datasets.density import DIGIT_LEVELS, WINDOW
from robustbench_ode.harness.evaluation import evaluate
from robustbench_ode.models import SolveSpec
from robustbench_ode.solvers import SolveStats

DENSITY = [n for n in DATASETS.names() if DATASETS.meta(n).task == "density"]
TOYS = [n for n in DENSITY if DATASETS.meta(n).shape({}) == (2,)]


def test_the_toys_and_the_digits_are_registered_as_densities():
    assert set(TOYS) == {"two_moons", "eight_gaussians", "checkerboard", "pinwheel", "two_spirals"}
    assert "digits_density" in DENSITY


@pytest.mark.parametrize("name", TOYS)
def test_toys_are_seeded_samples_in_the_window(name):
    a, b, c = (DATASETS.get(name)(s, n_train=3000, n_test=500) for s in (4, 4, 5))
    assert a.task == "density" and a.n_classes == 0 and a.bin_log_width is None
    assert a.x_train.shape == (3000, 2) and a.x_test.shape == (500, 2) and a.y_train.shape == (3000, 0)
    assert a.x_train.dtype == torch.float32 and torch.isfinite(a.x_train).all()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.x_train, c.x_train) and not torch.equal(a.x_train[:500], a.x_test)
    outside = (a.x_train.abs() > WINDOW[1]).any(1).float().mean()
    assert float(outside) < 0.005  # every toy lies in the window (up to its Gaussian tails)
    assert float(a.x_train.std(0).min()) > 0.5  # and spreads over it


def test_the_checkerboard_fills_the_black_squares_uniformly():
    x = DATASETS.get("checkerboard")(0, n_train=16_000, n_test=10).x_train.numpy()
    cells = np.floor((x - WINDOW[0]) / 2).astype(int)  # 4 x 4 squares of side 2
    assert ((cells.sum(1) % 2) == 0).all()  # black squares only
    counts = np.bincount(cells[:, 1] * 4 + cells[:, 0], minlength=16)
    black = counts[counts > 0]
    assert len(black) == 8 and black.min() > 0.9 * 2000 and black.max() < 1.1 * 2000


def test_eight_gaussians_sit_on_their_circle():
    x = DATASETS.get("eight_gaussians")(0, n_train=8000, n_test=10).x_train
    angle = torch.atan2(x[:, 1], x[:, 0])
    mode = torch.round(angle / (2 * math.pi / 8)) % 8
    assert torch.bincount(mode.long(), minlength=8).min() > 800
    assert float(x.norm(dim=1).median()) == pytest.approx(2.8, abs=0.1)


def test_digits_are_dequantised_standardised_64d_vectors():
    d = DATASETS.get("digits_density")(0)
    assert d.task == "density" and d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
    x = torch.cat([d.x_train, d.x_test]).double()
    assert abs(float(x.mean())) < 0.02 and float(x.std()) == pytest.approx(1.0, abs=0.02)
    # one grey level is exp(bin_log_width) wide in model units: back in grey levels, every value
    # is its level plus a uniform draw in [0, 1)
    levels = (x - x.min()) / math.exp(d.bin_log_width)
    frac = levels - levels.floor()
    assert float(levels.max()) < DIGIT_LEVELS and float(levels.min()) >= 0
    assert 0.45 < float(frac.mean()) < 0.55 and len(torch.unique(levels.floor())) == DIGIT_LEVELS
    assert not torch.equal(d.x_train, DATASETS.get("digits_density")(1).x_train)


class _Uniform(torch.nn.Module):
    """Uniform on the data's box: 17 grey levels of width w per dimension, NLL log(17 w) each."""

    def __init__(self, nll: float) -> None:
        super().__init__()
        self.nll = nll

    def final_state(self, x, spec):
        return x, SolveStats(nfe=1, steps=1)

    def logits(self, z):
        return torch.full((len(z),), self.nll)


def test_evaluation_reports_log2_17_bits_per_dimension_for_the_uniform_density():
    d = DATASETS.get("digits_density")(0)
    nll = math.log(DIGIT_LEVELS) + d.bin_log_width
    row = evaluate(_Uniform(nll), d, SolveSpec("euler", steps=1), batch_size=100)
    assert row["nll"] == pytest.approx(nll) and row["loss"] == row["nll"]
    assert row["bpd"] == pytest.approx(math.log2(DIGIT_LEVELS)) and math.isnan(row["accuracy"])
    toy = DATASETS.get("two_moons")(0, n_train=10, n_test=30)
    assert evaluate(_Uniform(1.0), toy, SolveSpec("euler", steps=1), batch_size=7)["bpd"] is None
