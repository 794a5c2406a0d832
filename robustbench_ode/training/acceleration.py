"""The fast training path: bf16 autocast, channels-last, torch.compile, pinned host batches,
synchronised per-iteration timing and peak GPU memory. Every piece is a no-op on CPU or when
its setting is off, so the CPU path runs the same code as the GPU path.
"""

from __future__ import annotations

import contextlib
import time

import torch
from torch import nn

from ..config import TrainingConfig
from ..datasets.base import DataSplits


def is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def autocast(cfg: TrainingConfig, device: str):
    """bf16 autocast when ``cfg.amp``; bf16 keeps fp32's exponent range, so no loss scaling."""
    if not cfg.amp:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def prepare_model(model: nn.Module, cfg: TrainingConfig) -> nn.Module:
    """Channels-last weights and a compiled vector field, in place (parameter names unchanged, so
    state dicts stay loadable without torch.compile's ``_orig_mod`` prefix)."""
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        # Only the field: the solver loop around it is Python with data-dependent step control,
        # which would break the graph; the field is what runs NFE times per iteration.
        model.block.field.compile(mode=cfg.compile_mode)
    return model


def memory_format(x: torch.Tensor, cfg: TrainingConfig) -> torch.Tensor:
    if cfg.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


class HostBatches:
    """Gathers a training batch on the host and moves it to the device in one transfer.

    On CUDA the batch is gathered straight into a pinned buffer, so the copy is a DMA transfer
    that does not stage through pageable memory. One buffer is enough: every iteration reads the
    loss with ``.item()``, which waits for the stream the copy was queued on.
    """

    def __init__(self, data: DataSplits, batch_size: int, device: str) -> None:
        self.data, self.device = data, device
        self.pinned = is_cuda(device) and torch.cuda.is_available()
        self._x = self._y = None
        if self.pinned:
            self._x = torch.empty((batch_size,) + tuple(data.x_train.shape[1:]),
                                  dtype=data.x_train.dtype).pin_memory()
            # trajectories (regression) are (K, d) per sample, class labels a scalar
            self._y = torch.empty((batch_size,) + tuple(data.y_train.shape[1:]),
                                  dtype=data.y_train.dtype).pin_memory()

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.pinned or len(idx) != len(self._y):
            return (self.data.x_train[idx].to(self.device, non_blocking=True),
                    self.data.y_train[idx].to(self.device, non_blocking=True))
        torch.index_select(self.data.x_train, 0, idx, out=self._x)
        torch.index_select(self.data.y_train, 0, idx, out=self._y)
        return (self._x.to(self.device, non_blocking=True), self._y.to(self.device, non_blocking=True))


class Clock:
    """Wall time of one iteration; on CUDA it synchronises first, so queued kernels are counted."""

    def __init__(self, device: str) -> None:
        self.cuda = is_cuda(device) and torch.cuda.is_available()
        self.device = device
        self.t0 = 0.0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._sync()
        self.t0 = time.perf_counter()

    def stop(self) -> float:
        self._sync()
        return time.perf_counter() - self.t0

    def peak_memory_mb(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda else None
