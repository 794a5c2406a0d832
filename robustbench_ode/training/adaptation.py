"""Step-size and tolerance adaptation during training (Ott et al.): the controllers. Their settings
are :class:`~robustbench_ode.config.AdaptationConfig`.

Every ``check_every`` iterations, on the current training batch, the train solver's accuracy is
compared with a more accurate test solver's. A gap above ``threshold`` halves the step (or the
tolerance); otherwise a step 1.1x larger is tried and kept only if it still agrees.

The state in force for fixed-step training is an integer step count ``N = ceil(T / h)`` with all
steps equal; ``h`` itself is kept as a float so that repeated 1.1x growth can cross integer
boundaries (growing N directly by ``ceil(N / 1.1)`` would be stuck at N <= 10 forever).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import torch

from ..config import AdaptationConfig
from ..models.classifier import ODEClassifier
from ..models.spec import SolveSpec
from ..solvers import SOLVERS


@dataclass
class Decision:
    """One check: the two accuracies, the trial (if a growth was tried) and the outcome."""

    iteration: int
    action: str  # halve | halve_capped | grow | keep | revert
    acc_train: float
    acc_test: float
    acc_trial: float | None
    before: float  # step count or tolerance before the check
    after: float
    nfe: int  # function evaluations spent by the check's extra solves

    def columns(self) -> dict:
        return {"check_acc_train": self.acc_train, "check_acc_test": self.acc_test,
                "check_acc_trial": self.acc_trial, "check_decision": self.action,
                "check_nfe": self.nfe}


def _rms(v: torch.Tensor, scale: torch.Tensor) -> float:
    return float(torch.sqrt(torch.mean((v / scale) ** 2)))


@torch.no_grad()
def starting_step(model: ODEClassifier, x: torch.Tensor, order: int, rtol: float = 0.01,
                  atol: float = 0.01) -> float:
    """The starting-step heuristic of Hairer, Norsett & Wanner (Solving ODEs I, II.4, p. 169) on
    one batch, with the weighted RMS norm sc_i = atol + rtol |y0_i| over the whole batch."""
    block = model.block
    t0, t1 = block.t_span
    y0 = model.input_map(x)
    f = block.field
    scale = atol + rtol * y0.abs()
    f0 = f(t0, y0)
    d0, d1 = _rms(y0, scale), _rms(f0, scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    y1 = y0 + h0 * f0  # one explicit Euler step
    d2 = _rms(f(t0 + h0, y1) - f0, scale) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100 * h0, h1, t1 - t0)


def _accuracy(model: ODEClassifier, x: torch.Tensor, y: torch.Tensor, spec: SolveSpec) -> tuple[float, int]:
    logits, stats = model(x, spec)
    if not bool(torch.isfinite(logits).all()):
        return 0.0, stats.nfe  # a failed solve disagrees with everything
    return float((logits.argmax(1) == y).float().mean()), stats.nfe


@dataclass
class StepController:
    """Step adaptation for a fixed-step train solver; ``spec`` is the SolveSpec in force."""

    cfg: AdaptationConfig
    solver: str
    h: float
    t_span: tuple[float, float] = (0.0, 1.0)
    max_steps: int = 10_000
    adjoint: bool = False
    decisions: list[Decision] = field(default_factory=list)

    @property
    def length(self) -> float:
        return self.t_span[1] - self.t_span[0]

    def count(self, h: float) -> int:
        # the tiny slack keeps h = T / N from rounding up to N + 1
        return max(1, min(self.cfg.max_steps_cap, math.ceil(self.length / h - 1e-9)))

    @property
    def steps(self) -> int:
        return self.count(self.h)

    @property
    def value(self) -> float:
        return self.steps

    def spec(self, steps: int | None = None) -> SolveSpec:
        return SolveSpec(self.solver, steps=steps or self.steps, max_steps=self.max_steps,
                         adjoint=self.adjoint)

    def restore(self, steps: int) -> None:
        """Continue from a step count in force (e.g. the last one logged before an interruption)."""
        self.h = self.length / steps

    def state(self) -> dict:
        """What a checkpoint keeps: the float step, not only the count in force."""
        return {"h": float(self.h)}

    def load_state(self, state: dict) -> None:
        self.h = float(state["h"])

    @torch.no_grad()
    def check(self, model: ODEClassifier, x: torch.Tensor, y: torch.Tensor, iteration: int) -> Decision:
        was_training = model.training
        model.eval()
        try:
            n = self.steps
            check = SolveSpec(self.cfg.check_solver(self.solver),
                              steps=n * self.cfg.step_factor(self.solver), max_steps=self.max_steps)
            acc_train, nfe_a = _accuracy(model, x, y, self.spec(n))
            acc_test, nfe_b = _accuracy(model, x, y, check)
            nfe, trial = nfe_a + nfe_b, None
            if abs(acc_test - acc_train) > self.cfg.threshold:
                min_h = self.length / self.cfg.max_steps_cap
                action = "halve" if self.h / 2 >= min_h * (1 - 1e-9) else "halve_capped"
                self.h = max(self.h / 2, min_h)
            else:
                h_new = min(self.cfg.growth * self.h, self.length)
                n_new = self.count(h_new)
                if n_new == n:  # same grid: the check just passed at this very step count
                    self.h, action = h_new, "grow"
                else:
                    trial, nfe_c = _accuracy(model, x, y, self.spec(n_new))
                    nfe += nfe_c
                    if abs(acc_test - trial) <= self.cfg.threshold:
                        self.h, action = h_new, "grow"
                    else:
                        action = "keep"
            decision = Decision(iteration, action, acc_train, acc_test, trial, n, self.steps, nfe)
        finally:
            model.train(was_training)
        self.decisions.append(decision)
        return decision


@dataclass
class ToleranceController:
    """Tolerance adaptation for an adaptive train solver (rtol = atol = tol)."""

    cfg: AdaptationConfig
    solver: str
    tol: float
    max_steps: int = 10_000
    adjoint: bool = False
    decisions: list[Decision] = field(default_factory=list)
    nfe_history: deque = field(default_factory=deque)

    @property
    def steps(self) -> None:
        return None

    @property
    def value(self) -> float:
        return self.tol

    def spec(self, tol: float | None = None) -> SolveSpec:
        tol = tol or self.tol
        return SolveSpec(self.solver, rtol=tol, atol=tol, max_steps=self.max_steps, adjoint=self.adjoint)

    def restore(self, tol: float) -> None:
        self.tol = tol

    def state(self) -> dict:
        return {"tol": float(self.tol), "nfe_history": [int(n) for n in self.nfe_history]}

    def load_state(self, state: dict) -> None:
        self.tol = float(state["tol"])
        self.nfe_history = deque(state["nfe_history"], maxlen=self.nfe_history.maxlen)

    def _test(self, model, x, y, nfe_train: int) -> tuple[float, int]:
        """The check solver at a tolerance tightened until it spends more NFE than the train solve."""
        ratio = SOLVERS.get(self.solver).check_tol_ratio
        solver = self.cfg.check_solver(self.solver)
        tol, spent = self.tol * ratio, 0
        while True:
            tol = max(tol, self.cfg.min_tol)
            acc, nfe = _accuracy(model, x, y, SolveSpec(solver, rtol=tol, atol=tol, max_steps=self.max_steps))
            spent += nfe
            if nfe > nfe_train or tol <= self.cfg.min_tol:
                return acc, spent
            tol *= ratio

    @torch.no_grad()
    def check(self, model: ODEClassifier, x: torch.Tensor, y: torch.Tensor, iteration: int) -> Decision:
        was_training = model.training
        model.eval()
        try:
            before = self.tol
            # The train solve of this very check gives the current iteration's NFE (the reference
            # read a stale buffer slot instead).
            acc_train, nfe_train = _accuracy(model, x, y, self.spec())
            acc_test, nfe_test = self._test(model, x, y, nfe_train)
            nfe, trial = nfe_train + nfe_test, None
            self.nfe_history.append(nfe_train)
            while len(self.nfe_history) > self.cfg.nfe_window:
                self.nfe_history.popleft()
            if abs(acc_test - acc_train) > self.cfg.threshold:
                self.tol, action = max(self.tol / 2, self.cfg.min_tol), "halve"
            else:
                tol_new = min(self.cfg.growth * self.tol, 0.5)
                trial, nfe_c = _accuracy(model, x, y, self.spec(tol_new))
                nfe += nfe_c
                flat = (len(self.nfe_history) == self.cfg.nfe_window
                        and len(set(self.nfe_history)) == 1)
                if abs(acc_test - trial) > self.cfg.threshold or flat:
                    action = "revert"
                else:
                    self.tol, action = tol_new, "grow"
            decision = Decision(iteration, action, acc_train, acc_test, trial, before, self.tol, nfe)
        finally:
            model.train(was_training)
        self.decisions.append(decision)
        return decision


Controller = StepController | ToleranceController


def make_controller(cfg: AdaptationConfig, model: ODEClassifier, x: torch.Tensor,
                    spec: SolveSpec) -> Controller:
    """The controller for a cell whose configured train solve is ``spec``; ``x`` is one batch
    (prepared input) for the starting-step heuristic."""
    if cfg.mode == "tolerance":
        tol = spec.rtol if cfg.start == "grid" and spec.rtol is not None else cfg.initial_tol
        return ToleranceController(cfg, spec.solver, tol, spec.max_steps, spec.adjoint)
    t_span = model.block.t_span
    length = t_span[1] - t_span[0]
    if cfg.start == "grid" and spec.steps is not None:
        h = length / spec.steps
    else:
        h = starting_step(model, x, SOLVERS.get(spec.solver).order, cfg.heuristic_tol, cfg.heuristic_tol)
    ctrl = StepController(cfg, spec.solver, h, t_span, spec.max_steps, spec.adjoint)
    ctrl.h = max(ctrl.h, length / cfg.max_steps_cap)  # the cap holds from the start
    return ctrl
