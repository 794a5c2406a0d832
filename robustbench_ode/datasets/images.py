"""Image datasets: CIFAR10, MNIST, Fashion-MNIST and SVHN through torchvision, and scikit-learn's digits.

Images are kept as uint8 tensors of shape (N, C, H, W) in memory with ``scale=255`` and the
dataset's channel mean/std, so normalisation happens per batch on the device (4x less to move).

The data root is, in order: the suite's ``dataset.root``, the ``--data-root`` option (which sets
``ROBUSTBENCH_ODE_DATA``), the environment variable ``ROBUSTBENCH_ODE_DATA``, then ``./data``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..core.errors import SuiteError
from . import params as p
from .base import DataSplits, split_rng

ENV_VAR = "ROBUSTBENCH_ODE_DATA"
DEFAULT_ROOT = "data"

# Channel statistics of each full training split (pixels in [0, 1]); fixed per dataset so a
# subset or a seed never changes the input normalisation.
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}

# Files each loader reads, relative to the root, and where they come from (for the missing-data error).
FILES = {
    "cifar10": (["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/data_batch_2",
                 "cifar-10-batches-py/data_batch_3", "cifar-10-batches-py/data_batch_4",
                 "cifar-10-batches-py/data_batch_5", "cifar-10-batches-py/test_batch",
                 "cifar-10-batches-py/batches.meta"],
                "unpack cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html there"),
    "mnist": ([f"MNIST/raw/{p}" for p in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")],
              "gunzip the four MNIST *-ubyte.gz files there"),
    "fashion_mnist": ([f"FashionMNIST/raw/{p}" for p in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte")],
        "Debian's dataset-fashion-mnist package provides them in /usr/share/datasets/fashion-mnist "
        "and `make data` prepares them"),
    "svhn": (["train_32x32.mat", "test_32x32.mat"],
             "download them from http://ufldl.stanford.edu/housenumbers/ (format 2)"),
}


def data_root(root: str | None = None) -> Path:
    """The suite's root, else ``$ROBUSTBENCH_ODE_DATA`` (set by ``--data-root``), else ``./data``."""
    return Path(root or os.environ.get(ENV_VAR) or DEFAULT_ROOT).expanduser()


def check_files(name: str, root: Path) -> None:
    """Raise a one-line :class:`SuiteError` naming the missing files, where they go and their source."""
    files, source = FILES[name]
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        # the folder before the file list: a long list is what the CLI's 300-character line cuts
        raise SuiteError(f"dataset {name}: under {root}, missing {', '.join(missing)} (set dataset.root, "
                         f"--data-root or ${ENV_VAR}; {source}; or set dataset.download: true "
                         "where a network exists)")


def _subset(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int, split: str):
    """A seeded random subset of ``n`` samples (kept in dataset order), or everything."""
    if n is None or n >= len(y):
        return x, y
    idx = np.sort(split_rng(seed, split).permutation(len(y))[:n])
    idx_t = torch.as_tensor(idx)
    return x[idx_t].contiguous(), y[idx_t].contiguous()


def _splits(name: str, train, test, seed: int, n_train: int | None, n_test: int | None,
            n_classes: int = 10) -> DataSplits:
    mean, std = STATS[name]
    xtr, ytr = _subset(*train, n_train, seed, "train")
    xte, yte = _subset(*test, n_test, seed, "test")
    return DataSplits(xtr, ytr, xte, yte, n_classes=n_classes, scale=255.0, mean=mean, std=std)


def _load(name: str, cls, root: str | None, download: bool, **split_kw):
    """Run torchvision's own loader; a missing or corrupt file becomes a :class:`SuiteError`."""
    path = data_root(root)
    if not download:
        check_files(name, path)
    try:
        return cls(str(path), download=download, **split_kw)
    except RuntimeError as exc:
        raise SuiteError(f"dataset {name} under {path}: {str(exc).splitlines()[0]}") from None


def _tensor(a) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a))


def cifar10(seed: int, **params) -> DataSplits:
    """CIFAR10: 50 000 / 10 000 colour images 3x32x32, 10 classes (torchvision's python batches)."""
    from torchvision.datasets import CIFAR10

    q = p.ImageParams(**params)

    def split(train: bool):
        ds = _load("cifar10", CIFAR10, q.root, q.download, train=train)
        # torchvision keeps HWC for PIL; the models want CHW
        return _tensor(ds.data.transpose(0, 3, 1, 2)), torch.as_tensor(ds.targets, dtype=torch.long)

    return _splits("cifar10", split(True), split(False), seed, q.n_train, q.n_test)


def _idx_dataset(name: str, cls, seed, params: dict) -> DataSplits:
    q = p.ImageParams(**params)

    def split(train: bool):
        ds = _load(name, cls, q.root, q.download, train=train)
        return ds.data.unsqueeze(1).contiguous(), ds.targets.long()

    return _splits(name, split(True), split(False), seed, q.n_train, q.n_test)


def mnist(seed: int, **params) -> DataSplits:
    """MNIST: 60 000 / 10 000 grey digits 1x28x28 (IDX files under <root>/MNIST/raw)."""
    from torchvision.datasets import MNIST

    return _idx_dataset("mnist", MNIST, seed, params)


def fashion_mnist(seed: int, **params) -> DataSplits:
    """Fashion-MNIST: 60 000 / 10 000 grey clothing images 1x28x28 (<root>/FashionMNIST/raw)."""
    from torchvision.datasets import FashionMNIST

    return _idx_dataset("fashion_mnist", FashionMNIST, seed, params)


def svhn(seed: int, **params) -> DataSplits:
    """SVHN (cropped digits, format 2): 73 257 / 26 032 colour images 3x32x32, label 10 -> 0."""
    from torchvision.datasets import SVHN

    q = p.ImageParams(**params)

    def split(name: str):
        ds = _load("svhn", SVHN, q.root, q.download, split=name)
        return _tensor(ds.data), torch.as_tensor(ds.labels, dtype=torch.long)

    return _splits("svhn", split("train"), split("test"), seed, q.n_train, q.n_test)


def digits(seed: int, **params) -> DataSplits:
    """scikit-learn's 8x8 digits (1797 images, 16 grey levels, shipped with the library), split
    into train/test stratified by class from the seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    n_test = p.DigitsParams(**params).n_test
    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None]  # values 0..16
    y = bunch.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=n_test, stratify=y,
                                          random_state=int(split_rng(seed, "test").integers(2**31 - 1)))
    # statistics of the whole set, so the normalisation does not move with the seed
    mean, std = float(x.mean() / 16.0), float(x.std() / 16.0)
    return DataSplits(_tensor(xtr), torch.as_tensor(ytr), _tensor(xte), torch.as_tensor(yte),
                      n_classes=10, scale=16.0, mean=(mean,), std=(std,))

