"""What a dataset factory returns: both splits as tensors, plus shape and class count (or, for
a time-series regression dataset, the observation times; for a density dataset, the size of a
quantisation bin).

Every dataset is materialised as tensors once (toy data is generated, image data decoded), so a
training batch is one index operation and one device transfer, with no per-sample Python work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch


@dataclass(frozen=True)
class DataSplits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    # Applied per batch after the device transfer: x -> (x / scale - mean) / std. Image data stays
    # uint8 in memory (4x less to move); toy data has scale 1, mean 0, std 1.
    scale: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # Classification: y holds class indices. Regression (datasets/timeseries.py): y holds
    # trajectories (N, K, d) observed at ``times[1:]``, x the initial states at ``times[0]``;
    # n_classes is 0. Density (datasets/density.py): x holds the samples, y is empty (N, 0) and
    # n_classes is 0.
    task: Literal["classification", "regression", "density"] = "classification"
    times: torch.Tensor | None = None
    # Density data that was quantised (the digits' 17 grey levels, dequantised by uniform noise):
    # the log of one quantisation bin's width in model units, so that a test NLL of L nats per
    # dimension in model space is (L - bin_log_width) / ln 2 bits per dimension of the discrete
    # data. None: the model space is the data's own (the 2-D toys), no bits per dimension.
    bin_log_width: float | None = None

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Turn a raw batch (already on its device) into model input."""
        x = x.float()
        if self.scale != 1.0:
            x = x / self.scale
        if self.mean is not None and self.std is not None:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            mean = torch.tensor(self.mean, device=x.device).view(shape)
            std = torch.tensor(self.std, device=x.device).view(shape)
            x = (x - mean) / std
        return x


def split_rng(seed: int, split: str) -> np.random.Generator:
    """Independent, reproducible streams per (seed, split): train and test never share draws.
    ``times`` is a third stream, for a dataset's shared observation times (timeseries.py)."""
    stream = {"train": 0, "test": 1, "times": 2}[split]
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream]))
