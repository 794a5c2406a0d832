"""A plain model family's seeds trained stacked (:func:`robustbench_ode.sweep`): the researcher's
own ``train_fn`` runs once per seed, each in its own thread, and the threads take turns (one runs
at a time, so each seed's global torch generator state is its own: saved and restored at every
hand-over). Every call of a seed's model is a meeting point: when all seeds have reached it, the
last one runs the model once for all of them (``torch.func.functional_call`` of the model's own
forward under ``torch.vmap``, parameters stacked along a leading seed dimension, as
models/vmapped.py stacks a registered family) and hands each seed its slice; the backward pass
meets the same way (a hook on each slice's output), so each seed's parameters get their own
gradients and each seed's own optimizer steps them. What is stacked is the model's forward and
backward, where the per-op cost is; the loop, the loss and the optimizer stay the researcher's.

torch.func has no notion of "the same training loop for S parameter sets" (it vmaps a function,
and ``.backward()`` / an optimizer's in-place step do not run under vmap): that meeting is what is
written here by hand.

The seeds leave lockstep (:class:`Unstackable`, the reason as one line) when their loops call the
model a different number of times or with inputs of different shapes, when the forward draws
random numbers, changes a buffer in place, returns something other than a tensor, or fails; the
caller then trains them seed by seed from fresh models (sweeping.py) and records why.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from ..solvers import SOLVERS


class Unstackable(Exception):
    """The seeds cannot (or could no longer) be trained stacked; the message says why."""


def why_not(models: list[nn.Module], solver: str) -> str | None:
    """Why these seeds' models cannot be stacked before trying (None: try)."""
    if len(models) < 2:
        return "one seed"
    if SOLVERS.get(solver).adaptive:
        return f"solver {solver!r} is adaptive: each seed's solve takes its own steps"
    shapes = [[(n, p.shape) for n, p in m.named_parameters()] for m in models]
    if any(s != shapes[0] for s in shapes):
        return "the seeds' models have different parameters"
    if not shapes[0]:
        return "the model has no parameters"
    return None


class Lockstep:
    """The seeds' models (one per seed, trained in place) and the meeting of their loops."""

    def __init__(self, models: list[nn.Module]) -> None:
        self.models = models
        self.template = copy.deepcopy(models[0])  # its forward is the one called, with each seed's tensors
        self.names = [n for n, _ in models[0].named_parameters()]
        self._cond = threading.Condition()
        self._turn, self._arrived, self._results = 0, {}, {}
        self._rng: list[torch.Tensor | None] = [None] * len(models)
        self._outputs: dict[int, torch.Tensor] = {}
        self._finished, self.broken = False, None

    def train(self, train_fn: Callable[[nn.Module, Any], None], datas: list[Any], seeds: list[int]) -> None:
        """Run ``train_fn(model_i, data_i)`` for every seed in lockstep; raises Unstackable."""
        for i, model in enumerate(self.models):
            model.forward = lambda *args, _i=i, **kw: self._call(_i, args, kw)  # instance attribute
        threads = [threading.Thread(target=self._run, args=(i, train_fn, datas[i], seeds[i]), daemon=True)
                   for i in range(len(self.models))]
        try:
            for t in threads:
                t.start()
            self._coordinate()
            for t in threads:
                t.join()
        finally:
            for model in self.models:
                del model.forward  # the class's forward again
        if self.broken is not None:
            raise Unstackable(self.broken)

    def _run(self, i: int, train_fn, data, seed: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._turn == i or self.broken is not None)
            if self.broken is not None:
                return
        torch.manual_seed(seed)  # as sweep() seeds a cell's loop
        try:
            train_fn(self.models[i], data)
            self._meet(i, "end", None)
        except Unstackable:
            pass
        except Exception as exc:  # noqa: BLE001 - any failure ends the lockstep; seed by seed reports it
            self._break(f"seed {seed}'s train_fn raised {type(exc).__name__}: {str(exc)[:200]}")

    def _break(self, why: str) -> None:
        with self._cond:
            if self.broken is None:
                self.broken = why.splitlines()[0] if why else "lockstep broken"
            self._cond.notify_all()

    def _coordinate(self) -> None:
        """The calling thread runs every stacked step (a substitution block holds in the thread
        that opened it, harness/substitution.py) when the last seed has handed it the turn."""
        with self._cond:
            while True:
                self._cond.wait_for(lambda: self.broken is not None or self._turn == -1)
                if self.broken is not None:
                    return
                try:
                    self._results = self._step()
                except Exception as exc:  # noqa: BLE001 - the stacked step failing is a reason, not a crash
                    why = str(exc) if isinstance(exc, Unstackable) else f"{type(exc).__name__}: {exc}"
                    self.broken = f"the stacked step failed: {why[:200]}".splitlines()[0]
                    self._cond.notify_all()
                    return
                self._arrived, self._turn = {}, 0
                self._cond.notify_all()
                if self._finished:
                    return

    def _meet(self, i: int, kind: str, payload: Any) -> Any:
        """Seed i reaches a meeting point: hand the turn on (after the last seed, to the
        coordinator, which runs the stacked step) and wait for this seed's turn and result."""
        with self._cond:
            if self.broken is not None:
                raise Unstackable(self.broken)
            self._arrived[i] = (kind, payload)
            self._rng[i] = torch.get_rng_state()
            self._turn = i + 1 if i < len(self.models) - 1 else -1
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.broken is not None or self._finished
                                or (self._turn == i and i in self._results))
            if self.broken is not None:
                raise Unstackable(self.broken)
            torch.set_rng_state(self._rng[i])
            return self._results.pop(i, None)

    def _step(self) -> dict[int, Any]:
        kinds = {kind for kind, _ in self._arrived.values()}
        if len(kinds) != 1:
            raise Unstackable("the seeds' loops called the model a different number of times")
        kind = kinds.pop()
        payloads = [self._arrived[i][1] for i in range(len(self.models))]
        if kind == "end":
            self._finished = True
            return {}
        if kind == "backward":
            return self._backward(payloads)
        return self._forward(payloads)

    def _call(self, i: int, args: tuple, kwargs: dict) -> torch.Tensor:
        if kwargs or not args or not all(isinstance(a, torch.Tensor) for a in args):
            self._break("the model's forward is called with other than positional tensors")
            raise Unstackable(self.broken)
        payload = (args, torch.is_grad_enabled(), self.models[i].training)
        return self._meet(i, "forward", payload)

    def _forward(self, payloads: list) -> dict[int, torch.Tensor]:
        modes = {(grad, training) for _, grad, training in payloads}
        shapes = {tuple(a.shape for a in args) for args, _, _ in payloads}
        if len(modes) != 1 or len(shapes) != 1:
            raise Unstackable("the seeds' loops called the model in different modes or with inputs of "
                              "different shapes")
        grad, training = modes.pop()
        args = [torch.stack(a) for a in zip(*(p[0] for p in payloads))]
        self.template.train(training)
        with torch.set_grad_enabled(grad):
            out = self._vmapped(args)
        results = {}
        fid = len(self._outputs) + 1 if grad else 0
        for i in range(len(self.models)):
            share = out[i].detach().requires_grad_(out.requires_grad)
            if out.requires_grad:
                share.register_hook(lambda g, _i=i, _f=fid: self._meet(_i, "backward", (_f, g)))
            results[i] = share
        if out.requires_grad:
            self._outputs = {fid: out}  # the graph of the latest call only: one backward per call
        return results

    def _vmapped(self, args: list[torch.Tensor]) -> torch.Tensor:
        params = {n: torch.stack([dict(m.named_parameters())[n] for m in self.models]) for n in self.names}
        named = [dict(m.named_buffers()) for m in self.models]
        shared = {n: b for n, b in named[0].items() if all(torch.equal(b, o[n]) for o in named[1:])}
        stacked = {n: torch.stack([o[n] for o in named]) for n in named[0] if n not in shared}
        versions = [b._version for o in named for b in o.values()]

        def one(p, b, *xs):
            return functional_call(self.template, ({**p, **b}, shared), xs)

        out = torch.vmap(one, randomness="error")(params, stacked, *args)
        if [b._version for o in named for b in o.values()] != versions:
            raise Unstackable("the model's forward changes its buffers in place")
        if not isinstance(out, torch.Tensor):
            raise Unstackable(f"the model's forward returns {type(out).__name__}, not a tensor")
        return out

    def _backward(self, payloads: list) -> dict[int, None]:
        fids = {fid for fid, _ in payloads}
        if len(fids) != 1 or fids.pop() not in self._outputs:
            raise Unstackable("the seeds' loops differentiated different model calls")
        out = self._outputs.pop(payloads[0][0])
        torch.autograd.backward(out, torch.stack([g for _, g in payloads]))
        return {i: None for i in range(len(self.models))}
