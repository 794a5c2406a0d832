"""The built-in datasets, registered in :data:`DATASETS` with their metadata when the package is
imported. A factory is ``f(seed, **params) -> DataSplits``; its parameters are the entry's
``params`` model. Adding a dataset: a factory in a module of this package, its params model in
:mod:`.params`, one entry here (see docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..core.registry import Registry
from . import params as p

DATASETS: Registry = Registry("dataset")

Task = Literal["classification", "regression", "density"]


@dataclass(frozen=True)
class Shape:
    """The shape of one sample, declared for the cost estimate (harness/cost.py scales by the
    model's arithmetic on it, without generating the data). ``dim``: a params field that gives
    the length of a flat sample instead. A class, not a closure: metadata travels to spawned and
    Ray workers by pickling."""

    fixed: tuple[int, ...] = ()
    dim: str | None = None

    def __call__(self, params: dict[str, Any]) -> tuple[int, ...]:
        return (int(params[self.dim]),) if self.dim is not None else self.fixed


PLANE = Shape((2,))


@dataclass(frozen=True)
class DatasetInfo:
    params: type[p.Params]
    # regression: y holds trajectories at DataSplits.times; density: samples only (y empty)
    task: Task = "classification"
    files: bool = False  # reads files from disk (checked before a run starts)
    # (train, test) samples when the params leave n_train / n_test unset (the full splits of a
    # file dataset): what the cost estimate (harness/cost.py) counts with
    sizes: tuple[int, int] | None = None
    shape: Shape = PLANE  # one sample's shape (x_train.shape[1:]) from the params


_M = "robustbench_ode.datasets"
BUILTIN = {
    "sphere2": (f"{_M}.toy:sphere2", DatasetInfo(p.Sphere2Params),
                "three concentric rings in 2-D, classes 0/1/0, 2000/1000 points (Ott et al.)"),
    "spheres": (f"{_M}.toy:spheres", DatasetInfo(p.SpheresParams, shape=Shape(dim="dim")),
                "concentric spheres in `dim` dimensions, Sphere2 generalised (3, 10, 900 in the paper)"),
    "moons": (f"{_M}.toy:moons", DatasetInfo(p.MoonsParams),
              "two interleaving half circles, scikit-learn's make_moons"),
    "annuli": (f"{_M}.toy:annuli", DatasetInfo(p.AnnuliParams),
               "two concentric circles, scikit-learn's make_circles"),
    "spirals": (f"{_M}.toy:spirals", DatasetInfo(p.SpiralsParams), "two interleaved spirals"),
    "minima": (f"{_M}.minima:minima", DatasetInfo(p.MinimaParams),
               "three minima: a damped particle in a three-well potential, labelled by the well it "
               "settles in (x0, v0) -> 0/1/2"),
    "xor": (f"{_M}.xor:xor", DatasetInfo(p.XorParams),
            "XOR on the unit square's corners, classes 0/1/1/0, optional noise"),
    "cifar10": (f"{_M}.images:cifar10", DatasetInfo(p.ImageParams, files=True, sizes=(50_000, 10_000),
                                           shape=Shape((3, 32, 32))),
                "CIFAR10 3x32x32, 10 classes, torchvision (cifar-10-batches-py under the root)"),
    "mnist": (f"{_M}.images:mnist", DatasetInfo(p.ImageParams, files=True, sizes=(60_000, 10_000),
                                               shape=Shape((1, 28, 28))),
              "MNIST 1x28x28, torchvision (MNIST/raw under the root)"),
    "fashion_mnist": (f"{_M}.images:fashion_mnist",
                      DatasetInfo(p.ImageParams, files=True, sizes=(60_000, 10_000),
                                  shape=Shape((1, 28, 28))),
                      "Fashion-MNIST 1x28x28, torchvision (FashionMNIST/raw; `make data`)"),
    "svhn": (f"{_M}.images:svhn", DatasetInfo(p.ImageParams, files=True, sizes=(73_257, 26_032),
                                         shape=Shape((3, 32, 32))),
             "SVHN cropped digits 3x32x32, torchvision (*_32x32.mat under the root)"),
    "digits": (f"{_M}.images:digits", DatasetInfo(p.DigitsParams, sizes=(1437, 360), shape=Shape((1, 8, 8))),
               "scikit-learn's 8x8 digits 1x8x8, shipped with the library, stratified split"),
    "lotka_volterra": (f"{_M}.timeseries:lotka_volterra",
                       DatasetInfo(p.LotkaVolterraParams, task="regression"),
                       "predator-prey trajectories (regression); alpha, beta, gamma, delta = "
                       "1.5, 1, 3, 1; optional irregular times and noise"),
    "van_der_pol": (f"{_M}.timeseries:van_der_pol", DatasetInfo(p.VanDerPolParams, task="regression"),
                    "Van der Pol oscillator trajectories (regression), mu = 1; optional irregular "
                    "times and noise"),
    "reflection": (f"{_M}.reflection:reflection",
                   DatasetInfo(p.ReflectionParams, task="regression", shape=Shape((1,))),
                   "Dupont et al.'s g(x) = -x in 1-D (regression, one observation at t = 1), x "
                   "uniform on [-1, -0.5] U [0.5, 1]: no 1-D flow fits it, an augmented one does"),
    # density sets (continuous normalising flows, docs/cnf.md)
    "two_moons": (f"{_M}.density:two_moons", DatasetInfo(p.TwoMoonsParams, task="density"),
                  "two moons as a 2-D density (CNF toy), scaled to the [-4, 4]^2 window"),
    "eight_gaussians": (f"{_M}.density:eight_gaussians",
                        DatasetInfo(p.EightGaussiansParams, task="density"),
                        "eight Gaussians on a circle, a 2-D density (CNF toy)"),
    "checkerboard": (f"{_M}.density:checkerboard", DatasetInfo(p.DensityToyParams, task="density"),
                     "uniform on the black squares of a 4x4 board on [-4, 4]^2 (CNF toy; entropy "
                     "log 32)"),
    "pinwheel": (f"{_M}.density:pinwheel", DatasetInfo(p.PinwheelParams, task="density"),
                 "five curved arms, a 2-D density (CNF toy)"),
    "two_spirals": (f"{_M}.density:two_spirals", DatasetInfo(p.TwoSpiralsParams, task="density"),
                    "two interleaved spirals as one 2-D density (CNF toy)"),
    "digits_density": (f"{_M}.density:digits_density",
                       DatasetInfo(p.DigitsParams, task="density", sizes=(1437, 360), shape=Shape((64,))),
                       "scikit-learn's 8x8 digits as 64-D vectors, uniformly dequantised and "
                       "standardised (density; bits per dimension of the 17 grey levels)"),
}


def register_all() -> None:
    for name, (target, info, description) in BUILTIN.items():
        if name not in DATASETS:
            DATASETS.register(name, target, description, meta=info)
