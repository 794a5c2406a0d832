"""Density datasets (``task: density``): samples of a distribution, no labels, for continuous
normalising flows (models/cnf.py).

The 2-D toys are the ones the CNF papers draw (FFJORD, Grathwohl et al. 2019; RNODE, Finlay et
al. 2020): two moons, eight Gaussians, a checkerboard, a pinwheel and two spirals, generated here
from the seed (train and test from independent streams, :func:`~.base.split_rng`). Their scales
are chosen so that every set lies in the window :data:`WINDOW` x :data:`WINDOW` (the box on which
density maps are drawn and densities are integrated; tests/test_density_data.py checks it).

The higher-dimensional set is scikit-learn's 8x8 digits as 64-D vectors (:func:`digits_density`,
shipped with the library, no download): its 17 grey levels v are dequantised with uniform noise,
``(v + u) / 17`` with ``u ~ U[0, 1)`` drawn once per sample from the seed, and then standardised
by one mean and one standard deviation of the whole dequantised set. The transform is affine on
purpose: its log-Jacobian is one constant, so a flow's NLL in model space and its bits per
dimension of the 17-level data differ by a constant (:attr:`~.base.DataSplits.bin_log_width`),
and the gap between a train solver's NLL and the reference's is the same number in either unit.
(The logit transform that FFJORD applies to MNIST has a per-sample log-Jacobian: the gap in bits
would then mix the solver's error with the data's position.) docs/cnf.md says more.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import params as p
from .base import DataSplits, split_rng
from .toy import sample_spirals

# Every 2-D toy set lies in [-WINDOW_HALF, WINDOW_HALF]^2 (up to its Gaussian tails).
WINDOW_HALF = 4.0
WINDOW = (-WINDOW_HALF, WINDOW_HALF)
DIGIT_LEVELS = 17  # scikit-learn's digits: grey levels 0..16


def _splits(sample, seed: int, n_train: int, n_test: int) -> DataSplits:
    """Both splits of a 2-D sampler ``sample(n, rng) -> (n, 2)``; y is empty (N, 0)."""
    xs = [torch.as_tensor(sample(n, split_rng(seed, split)), dtype=torch.float32)
          for split, n in (("train", n_train), ("test", n_test))]
    return DataSplits(xs[0], torch.zeros(len(xs[0]), 0), xs[1], torch.zeros(len(xs[1]), 0),
                      n_classes=0, task="density")


def two_moons(seed: int, **params) -> DataSplits:
    """scikit-learn's two interleaving half circles, centred and scaled by ``scale`` (the moons
    span about [-3, 3] x [-1.5, 1.5] at the default)."""
    from sklearn.datasets import make_moons  # lazy: scikit-learn adds seconds to every import

    q = p.TwoMoonsParams(**params)

    def sample(n, rng):
        x, _ = make_moons(n, noise=q.noise, random_state=int(rng.integers(2**31 - 1)))
        return (x - np.array([0.5, 0.25])) * q.scale

    return _splits(sample, seed, q.n_train, q.n_test)


def eight_gaussians(seed: int, **params) -> DataSplits:
    """An equal mixture of eight isotropic Gaussians of std ``std`` centred on a circle of radius
    ``radius``, at angles 2 pi k / 8."""
    q = p.EightGaussiansParams(**params)

    def sample(n, rng):
        angle = 2 * np.pi * rng.integers(0, 8, n) / 8
        centre = q.radius * np.stack([np.cos(angle), np.sin(angle)], 1)
        return centre + q.std * rng.standard_normal((n, 2))

    return _splits(sample, seed, q.n_train, q.n_test)


def checkerboard(seed: int, **params) -> DataSplits:
    """Uniform on the 8 black squares of a 4 x 4 board covering the window (squares of side 2).
    Its density is 1/32 on its support, so its entropy is log 32 nats (log(32) / 2 = 1.733 nats
    per dimension): no flow can have a lower expected test NLL."""
    q = p.DensityToyParams(**params)

    def sample(n, rng):
        row = rng.integers(0, 4, n)
        col = 2 * rng.integers(0, 2, n) + (row % 2)  # black squares: row + col even
        cell = np.stack([col, row], 1).astype(np.float64)
        return WINDOW[0] + 2.0 * (cell + rng.random((n, 2)))

    return _splits(sample, seed, q.n_train, q.n_test)


def pinwheel(seed: int, **params) -> DataSplits:
    """``arms`` curved arms: a point of arm k starts at (r, s) with r ~ N(1, radial_std^2) and
    s ~ N(0, tangential_std^2), is turned by 2 pi k / arms + rate exp(r) (the outer part of an arm
    turns further, which bends it) and scaled by 2."""
    q = p.PinwheelParams(**params)

    def sample(n, rng):
        arm = rng.integers(0, q.arms, n)
        r = 1.0 + q.radial_std * rng.standard_normal(n)
        s = q.tangential_std * rng.standard_normal(n)
        angle = 2 * np.pi * arm / q.arms + q.rate * np.exp(r)
        cos, sin = np.cos(angle), np.sin(angle)
        return 2.0 * np.stack([cos * r - sin * s, sin * r + cos * s], 1)

    return _splits(sample, seed, q.n_train, q.n_test)


def two_spirals(seed: int, **params) -> DataSplits:
    """The two interleaved spirals of the classification set ``spirals`` (datasets/toy.py) as one
    density: radius scaled to ``scale``, Gaussian noise of std ``noise`` after scaling."""
    q = p.TwoSpiralsParams(**params)

    def sample(n, rng):
        x, _ = sample_spirals(n, q.turns, 0.0, rng)
        return q.scale * x + q.noise * rng.standard_normal((n, 2))

    return _splits(sample, seed, q.n_train, q.n_test)


def digits_density(seed: int, **params) -> DataSplits:
    """scikit-learn's 8x8 digits as 64-D vectors, uniformly dequantised and standardised (module
    docstring); the train/test split is the classification set's (stratified by class, from the
    seed), the dequantisation noise comes from the seed's train and test streams."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    q = p.DigitsParams(**params)
    bunch = load_digits()
    v = bunch.images.reshape(len(bunch.images), -1).astype(np.float64)  # values 0..16
    vtr, vte = train_test_split(v, test_size=q.n_test, stratify=bunch.target,
                                random_state=int(split_rng(seed, "test").integers(2**31 - 1)))
    # the dequantised set's moments from the whole set's grey levels (u adds 1/2 and 1/12), so
    # the standardisation does not move with the seed
    mean = (v.mean() + 0.5) / DIGIT_LEVELS
    std = math.sqrt(v.var() + 1.0 / 12.0) / DIGIT_LEVELS
    xs = []
    for split, values in (("train", vtr), ("test", vte)):
        u = split_rng(seed, split).random(values.shape)
        xs.append(torch.as_tensor(((values + u) / DIGIT_LEVELS - mean) / std, dtype=torch.float32))
    # one grey level is 1 / 17 in [0, 1), 1 / (17 std) in model units
    bin_log_width = -math.log(DIGIT_LEVELS * std)
    return DataSplits(xs[0], torch.zeros(len(xs[0]), 0), xs[1], torch.zeros(len(xs[1]), 0),
                      n_classes=0, task="density", bin_log_width=bin_log_width)
