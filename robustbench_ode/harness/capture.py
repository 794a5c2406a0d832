"""The ODE inside a plain model, captured under solver substitution, so that a plain torchdiffeq
model gets the same diagnosis as a suite's cell (:mod:`.analysis`, docs/diagnostics.md).

One forward pass under the train configuration (:func:`~.substitution.substituted`) records the
model's solve: its vector field (the model's ``func`` as the substituted solve called it), its
initial states ``z0`` (what the model's code before the solve made of the inputs) and its time
span. The head (the model's code after the solve, ``z(T) -> logits``) is the model's own forward
replayed with the solve handing back given final states (:class:`ReplayProbe`), so nothing of the
model is rewritten. The replay feeds the first input of the batch to every row, so it is the
model's head only where the logits depend on the input through ``z(T)`` alone: checked on the
batch itself (the replayed head on the train solve's final states must give the model's own
classes), else the diagnosis is ``not_computed`` with the reason.

Not diagnosable (:class:`Undiagnosable`, a ``not_computed`` status): no solve or several ODE blocks
per forward pass, a tuple state, a torchode solve, or output times other than ``[t0, T]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..models.spec import SolveSpec
from ..solvers import SolveStats
from .odeint_calls import refuse
from .substitution import SubstitutionProbe, substituted


class Undiagnosable(ValueError):
    """The model's solve cannot be read as one field, one initial state and one head."""


@dataclass(frozen=True)
class CapturedODE:
    """A plain model's ODE block in pieces, as the diagnosis takes them."""

    field: nn.Module  # f(t, z), the model's func
    z0: torch.Tensor  # (B, *state): the initial states of the batch
    t_span: tuple[float, float]
    head: Callable[[torch.Tensor], torch.Tensor]  # z(T) (N, *state) -> logits (N, classes)


class ReplayProbe(SubstitutionProbe):
    """A substitution whose solve hands back ``final`` as z(T) instead of solving: the model's code
    after its solve applied to given states."""

    def __init__(self, final: torch.Tensor) -> None:
        super().__init__(SolveSpec("euler", steps=1))
        self.final = final

    def solve_intervals(self, f, z0: torch.Tensor, times: tuple[float, ...]):
        if len(times) != 2 or z0.shape != self.final.shape:
            raise refuse(f"the replayed head expects one solve over [t0, T] of states shaped "
                         f"{tuple(self.final.shape)}, got {len(times)} times and {tuple(z0.shape)}")
        return torch.stack([z0, self.final.to(z0)]), SolveStats(), 2


def replayed_head(model: nn.Module, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``z -> model(x[0] repeated)`` with the solve handing back ``z`` (module docstring)."""
    one = x[:1]

    def head(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), ReplayProbe(z):
            return model(one.expand(len(z), *one.shape[1:]))

    return head


def captured(model: nn.Module, x: torch.Tensor, train: SolveSpec) -> CapturedODE:
    """The ODE of ``model`` on the batch ``x`` under the train configuration ``train``; raises
    :class:`Undiagnosable` with the reason (module docstring)."""
    with torch.no_grad(), substituted(train) as probe:
        logits = model(x)
    if probe.n_calls != 1:
        raise Undiagnosable(f"the diagnosis reads one ODE block, and the model's forward made "
                            f"{probe.n_calls} solves")
    call = probe.calls[0]
    if call.field is None:
        raise Undiagnosable("the diagnosis reads a torchdiffeq solve of one tensor state (this one is "
                            f"a {call.entry} call{' of a tuple state' if call.entry != 'solve_ivp' else ''})")
    if len(call.t) != 2:
        raise Undiagnosable(f"the diagnosis reads a solve over [t0, T]; this one returns {len(call.t)} "
                            "output times")
    head = replayed_head(model, x)
    if not torch.equal(head(call.solution[-1]).argmax(-1), logits.argmax(-1)):
        raise Undiagnosable("the model's logits depend on its input besides the final state of its "
                            "solve, so its head cannot be replayed on other states")
    return CapturedODE(call.field, call.solution[0], (call.t[0], call.t[1]), head)
