"""torchode (Lienen & Guennemann, 2022) as a solver backend: Tsit5, its Dopri5 and Heun-Euler pairs,
one shared step for the batch or one step size per sample, fixed grids and adjoints.

Optional: ``pip install torchode`` (or the ``[torchode]`` extra). The registry entries
(``tsit5``, ``dopri5_torchode``, ``heun_torchode`` in :mod:`.catalog`) name :func:`integrate` by
import path, so torchode is imported on the first solve only.

Semantics, precisely:

* **Layout.** torchode solves a batch of ``n`` independent problems of shape ``(n, features)``.
  ``z0`` of any shape ``(B, ...)`` is flattened to that and ``f`` always sees ``z`` in ``z0``'s
  own shape. A 0- or 1-dim ``z0`` is one sample.
* **control="batch"**: the whole batch is solved as *one* torchode problem of ``B*d`` features, so
  there is one t, one step size and one accept/reject decision for all samples. The error norm is
  torchode's RMS norm over all ``B*d`` components of ``err / (atol + rtol*max(|z0|, |z1|))``, the
  norm torchdiffeq applies to a batched tensor. One hard sample in a large batch is diluted.
* **control="per_sample"**: torchode's native mode, ``n = B`` problems with their own t, step size,
  controller state, accept/reject decision and RMS norm over that sample's ``d`` components: each
  sample meets the tolerance on its own. Every field call still evaluates the whole batch
  (finished samples are evaluated with step 0), so the cost is set by the hardest sample.
* **steps=N** (instead of tolerances): a fixed grid of N equal steps (FixedStepController), no error
  control; ``control`` is irrelevant and the batch layout is used.
* **t passed to f** is a 0-dim tensor in ``z0``'s dtype whenever all samples share it (batch
  control, fixed grids, one sample). Under per-sample control with B > 1 samples each sample has
  its own t: ``f`` gets a ``(B, 1, ..., 1)`` tensor that broadcasts against ``z``. Fields that read
  ``float(t)`` (``time_input``, the ResNet's piecewise field) are refused there with a ValueError.
* **Counters** (the columns ``nfe``, ``steps_taken``, ``accepted``, ``rejected``): ``nfe`` = batched
  calls of ``f`` (what the solve costs: each call evaluates all B samples), including the two
  calls of the initial step-size selection; ``steps``/``accepted``/``rejected`` are those of the
  sample that ran longest (under batch control: of the one joint problem). :class:`TorchodeStats`
  adds per-sample detail: ``nfe_per_sample_mean`` is the mean over samples of the NFE each sample
  would cost solved alone.
* **status**: torchode's per-sample codes map to :class:`~robustbench_ode.core.status.Status`:
  SUCCESS -> ok (non_finite if the end state is NaN/inf), INFINITE_NORM -> non_finite,
  REACHED_MAX_STEPS -> max_steps, REACHED_DT_MIN / GENERAL_ERROR -> failed. torchode stops the
  whole batch as soon as one sample fails; samples that did not reach t1 get NaN, finished ones
  keep their state. The worst status is the solve's; nothing is raised. ``max_steps`` counts
  attempted steps (accepted + rejected) per sample, as torchdiffeq's ``max_num_steps`` does.
* **adjoint=True**: torchode's backsolve adjoints; batch control and fixed grids use
  JointBacksolveAdjoint (autograd.grad through ``f``'s own parameters), per-sample control uses
  BacksolveAdjoint (``torch.func.vmap`` + ``functional_call`` per sample, so ``f`` must be a
  vmappable ``nn.Module`` whose output depends on its parameters directly). The backward solve
  uses the same method, controller and ``max_steps``; its field calls are not in ``nfe`` (the
  stats are the forward solve's, as for the torchdiffeq solvers). Without the adjoint, gradients
  flow by autograd through the solver loop with the step sizes held constant
  (``backprop_step_control=False``, not torchode's default): the steps are numerical artefacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.status import Status
from .base import Solver, VectorField
from .solution import Solution, SolveStats

# torchode stepper -> (distinct stages, first same as last): how many new f calls a step costs
STEPPERS = {"Tsit5": (7, True), "Dopri5": (7, True), "Heun": (2, False)}

# torchode status code -> project status (torchode.status_codes)
_CODES = {0: Status.OK, 1: Status.FAILED, 2: Status.FAILED, 3: Status.MAX_STEPS, 4: Status.NON_FINITE}
_CODE_NAMES = {0: "success", 1: "general error", 2: "step size below dt_min",
               3: "reached max_steps", 4: "non-finite error norm"}


@dataclass
class TorchodeStats(SolveStats):
    """:class:`SolveStats` (nfe = batched f calls; steps/accepted/rejected of the longest-running
    sample) plus per-sample detail: one entry per torchode problem (B under per-sample control,
    1 under batch control and on fixed grids)."""

    control: str = "batch"  # batch, per_sample or fixed
    samples: int = 1
    nfe_per_sample_mean: float = 0.0
    accepted_mean: float = 0.0
    rejected_mean: float = 0.0
    sample_steps: torch.Tensor | None = field(default=None, repr=False)  # attempted, per sample
    sample_accepted: torch.Tensor | None = field(default=None, repr=False)
    sample_status: list[Status] = field(default_factory=list, repr=False)


def _uses_time(f) -> bool:
    if getattr(f, "time_input", False):
        return True
    return isinstance(f, nn.Module) and any(getattr(m, "time_input", False) for m in f.modules())


class TorchodeField(nn.Module):
    """torchode's view (n, features) of ``f`` on states shaped like ``z0``; an ``nn.Module`` with
    ``f`` as a submodule, so that the adjoints find ``f``'s parameters."""

    def __init__(self, f, shape: torch.Size, n: int) -> None:
        super().__init__()
        self.f = f
        self.shape = tuple(shape)
        # one sample as vmap sees it (BacksolveAdjoint): (features,) -> (1, *sample shape)
        self.vmap_shape = (1, *self.shape[1:]) if n > 1 else self.shape
        self.time_shape = (n,) + (1,) * (len(self.shape) - 1)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = y.reshape(self.vmap_shape if y.ndim == 1 else self.shape)
        if t.ndim == 0:
            tt = t
        elif t.numel() == 1:
            tt = t.reshape(())
        else:
            tt = t.reshape(self.time_shape)
        tt = tt.to(z.dtype)
        try:
            out = self.f(tt, z)
        except (RuntimeError, TypeError, ValueError) as err:
            if tt.ndim > 0 and "convert" in str(err).lower():
                raise ValueError(
                    "under per-sample control every sample has its own t, passed to f as a tensor "
                    f"of shape {tuple(tt.shape)}; this field needs a scalar t (use control: batch)") from err
            raise
        return out.reshape(y.shape)


def _statuses(codes: list[int], reached: list[bool], finite: list[bool]) -> list[Status]:
    out = []
    for code, done, fin in zip(codes, reached, finite):
        s = _CODES.get(code, Status.FAILED)
        out.append(Status.NON_FINITE if s is Status.OK and done and not fin else s)
    return out


def _tolerances(name: str, steps, rtol, atol):
    if steps is not None:
        if rtol is not None or atol is not None:
            raise ValueError("give either steps or tolerances, not both")
        if int(steps) < 1:
            raise ValueError("steps must be >= 1")
        return int(steps), None, None
    if rtol is None and atol is None:
        raise ValueError(f"solver {name!r} is adaptive: give rtol/atol or steps")
    return None, (atol if rtol is None else rtol), (rtol if atol is None else atol)


def torchode_solve(f: VectorField, z0: torch.Tensor, t_span: tuple[float, float] = (0.0, 1.0),
                   stepper: str = "Tsit5", *, rtol: float | None = None, atol: float | None = None,
                   control: str = "batch", max_steps: int = 10_000, adjoint: bool = False,
                   steps: int | None = None, pid: tuple[float, float, float] | None = None,
                   backprop_step_control: bool = False) -> Solution:
    """Integrate dz/dt = f(t, z) from ``t_span[0]`` to ``t_span[1]`` with torchode's ``stepper``
    (``Tsit5``, ``Dopri5``, ``Heun``). Give ``rtol``/``atol`` (one alone is used for both) or
    ``steps`` (a fixed grid). ``pid=(p, i, d)`` selects torchode's PIDController; by default the
    integral controller (torchdiffeq's rule). Returns the end state in ``z0``'s shape and
    :class:`TorchodeStats`; a failed solve is a status, never an exception (bad arguments raise
    ValueError)."""
    import torchode as to  # the optional dependency (Solver.requires): imported on the first solve

    if stepper not in STEPPERS:
        raise ValueError(f"unknown torchode stepper {stepper!r} (valid: {', '.join(STEPPERS)})")
    if control not in ("batch", "per_sample"):
        raise ValueError(f"control must be 'batch' or 'per_sample', not {control!r}")
    steps, rtol, atol = _tolerances(stepper, steps, rtol, atol)
    shape = z0.shape
    per_sample = control == "per_sample" and steps is None and z0.ndim >= 2 and shape[0] > 1
    if per_sample and _uses_time(f):
        raise ValueError("this field takes t as an input (time_input) and reads it as one scalar, but "
                         "under per-sample control every sample has its own t: use control: batch")
    n = shape[0] if per_sample else 1
    y0 = z0.reshape(n, -1)
    dtype, device = z0.dtype, z0.device
    t0 = torch.full((n,), float(t_span[0]), dtype=dtype, device=device)
    t1 = torch.full((n,), float(t_span[1]), dtype=dtype, device=device)
    term = to.ODETerm(TorchodeField(f, shape, n))
    method = getattr(to, stepper)(term=term)
    dt0 = None
    if steps is not None:
        controller = to.FixedStepController()
        h = (float(t_span[1]) - float(t_span[0])) / steps
        # A hair above h so that rounding in torchode's running sum t += dt cannot leave a sliver
        # after step N; the last step is clipped onto t1 (relative change 4 N eps: invisible).
        dt0 = torch.full((n,), h * (1 + 4 * steps * torch.finfo(dtype).eps), dtype=dtype, device=device)
    elif pid is not None:
        controller = to.PIDController(atol, rtol, *pid, term=term)
    else:
        controller = to.IntegralController(atol, rtol, term=term)
    controller = controller.to(device=device, dtype=dtype)  # atol/rtol buffers in z0's dtype
    # Evaluate at t0 and t1: n_initialized then says which samples reached t1 (2), and the
    # adjoint's backward pass has an interval to run (with t1 alone it would skip the backsolve).
    problem = to.InitialValueProblem(y0, t0, t1, torch.stack([t0, t1], 1))
    if adjoint:
        if per_sample:
            solver = to.BacksolveAdjoint(term, method, controller)
            loops = (solver.forward_adjoint, solver.backward_adjoint)
        else:
            solver = to.JointBacksolveAdjoint(term, method, controller)
            loops = (solver.forward_loop, solver.backward_loop)
        for loop in loops:
            loop.max_steps = int(max_steps)
    else:
        solver = to.AutoDiffAdjoint(method, controller, max_steps=int(max_steps),
                                    backprop_through_step_size_control=backprop_step_control)
    sol = solver.solve(problem, dt0=dt0)
    ys = sol.ys[:, -1]  # (n, features); the joint adjoint also returns its one problem as n = 1
    reached_t = sol.stats["n_initialized"].reshape(-1).to(ys.device) == 2
    z = torch.where(reached_t[:, None], ys, torch.full_like(ys, float("nan"))).reshape(shape)
    stats = _stats(sol, ys, reached_t, n, steps, per_sample, stepper, max_steps)
    return Solution(z, stats)


def _stats(sol, ys, reached_t, n: int, steps, per_sample: bool, stepper: str, max_steps: int,
           ) -> TorchodeStats:
    codes = [int(c) for c in sol.status.reshape(-1).expand(n).tolist()]
    reached = [bool(r) for r in reached_t.tolist()]
    per = _statuses(codes, reached, torch.isfinite(ys.detach()).all(1).tolist())
    worst = Status.OK
    for s in per:
        worst = worst.combine(s)
    n_steps = sol.stats["n_steps"].reshape(-1).cpu()
    n_acc = sol.stats["n_accepted"].reshape(-1).cpu()
    nfe = int(sol.stats["n_f_evals"].max())
    longest = int(torch.argmax(n_steps))
    loop_steps = int(n_steps[longest])
    stages, fsal = STEPPERS[stepper]
    per_step = stages - 1 if fsal else stages
    initial = nfe - loop_steps * per_step
    message = ""
    if worst is not Status.OK:
        bad = sum(s is not Status.OK for s in per)
        kinds = ", ".join(sorted({_CODE_NAMES.get(c, str(c)) for c in codes if c != 0}))
        message = (f"torchode: {bad} of {len(per)} samples not ok ({kinds or 'non-finite end state'}); "
                   f"{sum(not r for r in reached)} did not reach t1 and are NaN")
        if worst is Status.MAX_STEPS:
            message += f"; max_steps={int(max_steps)}"
    return TorchodeStats(
        nfe=nfe, steps=int(n_acc[longest]), accepted=int(n_acc[longest]),
        rejected=loop_steps - int(n_acc[longest]), status=worst, message=message[:200],
        control="fixed" if steps is not None else ("per_sample" if per_sample else "batch"),
        samples=n, nfe_per_sample_mean=float((initial + n_steps.double() * per_step).mean()),
        accepted_mean=float(n_acc.double().mean()),
        rejected_mean=float((n_steps - n_acc).double().mean()),
        sample_steps=n_steps, sample_accepted=n_acc, sample_status=per)


def integrate(solver: Solver, f: VectorField, z0: torch.Tensor, t_span: tuple[float, float], *,
              steps: int | None = None, rtol: float | None = None, atol: float | None = None,
              max_steps: int = 10_000, adjoint: bool = False, control: str = "batch") -> Solution:
    """The registry's integrator for a torchode solver (``solver.method``: the stepper class)."""
    return torchode_solve(f, z0, t_span, solver.method or "Tsit5", rtol=rtol, atol=atol,
                          control=control, max_steps=max_steps, adjoint=adjoint, steps=steps)
