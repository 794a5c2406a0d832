"""The trajectory model: a latent-free neural ODE fitted to observed trajectories.

The ODE state is the observed state itself (no encoder, no decoder): dz/dt = f_theta(t, z) from
z(t0) = x, read off at the dataset's observation times t_1 ... t_K. It is the regression
counterpart of :class:`~robustbench_ode.models.classifier.ODEClassifier` and answers the same calls
(``forward``, ``final_state``, ``logits``), so training, evaluation and drift need no second path;
its "final state" is the whole predicted trajectory (B, K, d), and ``logits`` is that prediction.
"""

from __future__ import annotations

import heapq
import math

import torch
from torch import nn

from ..core.status import Status
from ..solvers import SolveStats, solve
from .classifier import AugmentChannels, ODEClassifier
from .fields import MLP, prepared
from .params import AugmentedTrajectoryParams, TrajectoryParams
from .spec import SolveSpec


def allocate_steps(times: tuple[float, ...], steps: int) -> list[int]:
    """``steps`` fixed steps spread over the intervals between consecutive ``times``.

    Every interval gets one step; each further step goes to the interval whose step is currently
    the longest (ties: the earlier interval), which spreads the steps in proportion to the
    interval lengths as closely as whole numbers allow (equal intervals: equal shares, when K
    divides N). Each interval then ends exactly on its observation time. The total is ``steps``,
    or K when ``steps`` < K (one step per interval is the least a solve can take).
    """
    lengths = [b - a for a, b in zip(times[:-1], times[1:])]
    counts = [1] * len(lengths)
    heap = [(-length, i) for i, length in enumerate(lengths)]
    heapq.heapify(heap)
    for _ in range(steps - len(lengths)):
        _, i = heapq.heappop(heap)
        counts[i] += 1
        heapq.heappush(heap, (-lengths[i] / counts[i], i))
    return counts


class TrajectoryModel(ODEClassifier):
    """``forward(x, spec)`` -> (predicted trajectory (B, K, d), stats summed over the solves).

    Subclasses ODEClassifier for its plumbing only (``block.field`` for the compile path,
    parameter names ``block.field.*``, ``as_classifier``); the input map and head are identities.
    """

    def __init__(self, field: nn.Module, times: tuple[float, ...], augment: int = 0) -> None:
        if len(times) < 2:
            raise ValueError("the trajectory model needs t0 and at least one observation time")
        # ANODE (Dupont et al. 2019): the input map appends ``augment`` zero dimensions to the
        # initial state; the prediction is the first d coordinates of each state (a fixed
        # readout, no head). augment 0: the identity, as before.
        lift = AugmentChannels(augment) if augment else nn.Identity()
        super().__init__(lift, field, nn.Identity(), (times[0], times[-1]))
        self.times = tuple(float(t) for t in times)
        self.augment = int(augment)
        self._allocations: dict[int, list[int]] = {}

    def steps_per_interval(self, steps: int) -> list[int]:
        if steps not in self._allocations:  # evaluation asks once per batch, training per iteration
            self._allocations[steps] = allocate_steps(self.times, steps)
        return self._allocations[steps]

    def final_state(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats]:
        """Solve interval by interval from x = z(t0): a fixed-step spec's N steps are spread over
        the intervals (:func:`allocate_steps`), an adaptive spec solves every interval with its
        tolerances. NFE, steps, accepted and rejected are summed; the worst status wins, and the
        solve stops at the first interval that fails (the rest of the trajectory is NaN)."""
        field = self.block.field
        counts = self.steps_per_interval(spec.steps) if spec.steps is not None else None
        total = SolveStats(accepted=0 if spec.adaptive else None, rejected=0 if spec.adaptive else None)
        d = x.shape[-1]
        z = self.input_map(x)
        states = []
        with prepared(field, z):
            for k, (t0, t1) in enumerate(zip(self.times[:-1], self.times[1:])):
                sol = solve(field, z, spec.solver, steps=counts[k] if counts else None,
                            rtol=spec.rtol, atol=spec.atol, t_span=(t0, t1),
                            max_steps=spec.max_steps, adjoint=spec.adjoint, control=spec.control)
                s = sol.stats
                total = total.add(s)
                z = sol.z
                states.append(z[..., :d])
                if s.status is not Status.OK:
                    break
        missing = len(self.times) - 1 - len(states)
        states += [torch.full_like(x, math.nan)] * missing
        return torch.stack(states, 1), total

    def forward(self, x: torch.Tensor, spec: SolveSpec) -> tuple[torch.Tensor, SolveStats]:
        return self.final_state(x, spec)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """The prediction is the trajectory itself (no head); named as the classifiers' call."""
        return z

    def extra_repr(self) -> str:
        augment = f", augment={self.augment}" if self.augment else ""
        return (f"observation_times={len(self.times) - 1}, t_span=({self.times[0]:g}, "
                f"{self.times[-1]:g}){augment}")


def trajectory(in_shape: tuple[int, ...], n_classes: int, times: torch.Tensor | None = None,
               **params) -> TrajectoryModel:
    """An MLP field on the observed state; ``times`` (t0 first) comes from the dataset, not the
    suite (the registry declares it provided). PyTorch's default initialisation (not Kaiming): a
    tanh field that starts small."""
    q = TrajectoryParams(**params)
    if times is None or len(in_shape) != 1:
        raise ValueError("model 'trajectory' needs a time-series dataset (observation times and "
                         f"flat states), got input shape {tuple(in_shape)}"
                         + ("" if times is not None else " and no observation times"))
    field = MLP(in_shape[0], q.hidden, q.depth, q.activation, q.time_input)
    return TrajectoryModel(field, tuple(float(t) for t in torch.as_tensor(times).tolist()))


def augmented_trajectory(in_shape: tuple[int, ...], n_classes: int, times: torch.Tensor | None = None,
                         **params) -> TrajectoryModel:
    """The trajectory model on the state with ``augment`` zero dimensions appended (ANODE), read
    off at its first d coordinates; ``augment: 0`` is the plain NODE, whose 1-D flow is monotone
    (datasets/reflection.py). Its own family so that ``trajectory``'s cell keys stay unchanged."""
    q = AugmentedTrajectoryParams(**params)
    if times is None or len(in_shape) != 1:
        raise ValueError("model 'augmented_trajectory' needs a regression dataset (observation "
                         f"times and flat states), got input shape {tuple(in_shape)}"
                         + ("" if times is not None else " and no observation times"))
    field = MLP(in_shape[0] + q.augment, q.hidden, q.depth, q.activation, q.time_input)
    return TrajectoryModel(field, tuple(float(t) for t in torch.as_tensor(times).tolist()), q.augment)
