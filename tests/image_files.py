"""Small image datasets written in each dataset's real on-disk format, for the loader tests.

torchvision checks the MD5 of the CIFAR10 and SVHN files it knows; :func:`trust` points those
checks at the files written here, so the real loading code runs on small data.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np


def images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def _idx(array: np.ndarray) -> bytes:
    # IDX: two zero bytes, type code 0x08 (unsigned byte), number of dims, big-endian int32 sizes
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) \
        + array.tobytes()


def write_idx(folder: Path, n_train: int, n_test: int, compress: bool = False) -> dict:
    """MNIST-family IDX files (``*-ubyte``, or ``*-ubyte.gz`` when ``compress``)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        x, y = images(n, (28, 28), seed)
        out[prefix] = (x, y)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{prefix}-{kind}-ubyte"
            data = _idx(arr)
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return out


def write_cifar10(root: Path, per_batch: int, n_test: int) -> dict:
    """cifar-10-batches-py: five pickled train batches, a test batch and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    out = {"train": [], "test": None}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x, y = images(n_test if name == "test_batch" else per_batch, (3, 32, 32), 10 + i)
        entry = {"batch_label": name, "data": x.reshape(len(x), -1), "labels": [int(v) for v in y]}
        (folder / name).write_bytes(pickle.dumps(entry))
        if name == "test_batch":
            out["test"] = (x, y)
        else:
            out["train"].append((x, y))
    meta = {"label_names": [f"class{k}" for k in range(10)], "num_cases_per_batch": per_batch}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return out


def write_svhn(root: Path, n_train: int, n_test: int) -> dict:
    """train_32x32.mat / test_32x32.mat: X of shape (32, 32, 3, N), labels 1..10 (10 is digit 0)."""
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, seed in (("train", n_train, 20), ("test", n_test, 21)):
        x, y = images(n, (3, 32, 32), seed)
        labels = np.where(y == 0, 10, y).astype(np.uint8)[:, None]
        savemat(root / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": labels})
        out[split] = (x, y)
    return out


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def trust(monkeypatch, root: Path) -> None:
    """Make torchvision's CIFAR10/SVHN integrity checks expect the MD5s of the files under root."""
    from torchvision.datasets import CIFAR10, SVHN

    folder = root / "cifar-10-batches-py"
    if folder.is_dir():
        monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(folder / n)] for n, _ in CIFAR10.train_list])
        monkeypatch.setattr(CIFAR10, "test_list", [[n, md5(folder / n)] for n, _ in CIFAR10.test_list])
        monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(folder / "batches.meta")})
    if (root / "train_32x32.mat").is_file():
        monkeypatch.setattr(SVHN, "split_list", {
            k: [url, name, md5(root / name) if (root / name).is_file() else h]
            for k, (url, name, h) in SVHN.split_list.items()})
