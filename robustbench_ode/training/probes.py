"""What a training iteration's gradient costs: field evaluations in the backward pass and memory
held for it.

``training.gradient`` picks how the ODE block is differentiated: ``autograd`` backpropagates
through every operation of the solver (memory grows with the number of steps), ``adjoint`` solves
torchdiffeq's adjoint ODE backwards in time (Chen et al. 2018: memory independent of the number of
steps, paid for with extra field evaluations). The two probes here measure both sides of that
trade on any device:

- :class:`FieldCalls` counts the vector field's evaluations, so the backward pass's NFE is the
  count after ``loss.backward()`` minus the count after the forward pass: the adjoint solve's
  evaluations. Autograd re-evaluates nothing (0 by construction), so training hooks the field
  only for the adjoint.
- :class:`SavedTensors` adds up the bytes autograd keeps for the backward pass (its saved
  tensors, each storage once, parameters excluded): the activation memory the O(1)-memory claim
  is about. Written by hand because torch reports allocator peaks only on CUDA; on a GPU the
  training log also has ``peak_gpu_mb`` from the allocator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class FieldCalls:
    """Counts calls of ``model.block.field`` (a forward hook); ``calls`` is the running total, None
    for a model without that field."""

    def __init__(self, model: nn.Module) -> None:
        field = getattr(getattr(model, "block", None), "field", None)
        self.calls: int | None = 0 if isinstance(field, nn.Module) else None
        self._handle = field.register_forward_hook(self._count) if self.calls is not None else None

    def _count(self, module, args, output) -> None:
        self.calls += 1

    def since(self, start: int | None) -> int | None:
        return None if self.calls is None else self.calls - start

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()


class _Held:
    """What autograd stores in place of a saved tensor while the probe records."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class SavedTensors:
    """``with probe.recording(params): loss = ...``, then ``loss.backward()``, then
    ``probe.release()``; ``probe.mb``: megabytes autograd saved for that backward pass.

    A pack hook that keeps the tensor itself makes a reference cycle through the tensor's own
    autograd node (an op that saves its output), which Python's collector cannot see: graph parts
    the backward pass never visits (an adaptive solver's step-size control) would leak every
    iteration. So the tensor sits in a holder, and :meth:`release` empties the holders once the
    backward pass is done, which breaks every such cycle."""

    def __init__(self) -> None:
        self.bytes = 0
        self._held: list[_Held] = []

    @property
    def mb(self) -> float:
        return self.bytes / 2**20

    @contextlib.contextmanager
    def recording(self, parameters: Iterator[torch.Tensor]) -> Iterator[SavedTensors]:
        self.release()
        skip = {p.untyped_storage().data_ptr() for p in parameters}
        seen: set[int] = set()
        self.bytes = 0

        def pack(t: torch.Tensor) -> _Held:
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in skip and ptr not in seen:
                seen.add(ptr)
                self.bytes += storage.nbytes()
            held = _Held(t)
            self._held.append(held)
            return held

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda held: held.tensor):
            yield self

    def release(self) -> None:
        """After the backward pass: drop the recorded tensors (a later backward through this
        graph is no longer possible)."""
        for held in self._held:
            held.tensor = None
        self._held.clear()
