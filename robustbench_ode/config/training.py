"""Every ``training:`` setting of a suite, in one place: the loop's own, the gradient method, the
speed settings, step / tolerance adaptation and regularisation.

Each field declares, beside its default, how the harness treats it (:func:`setting`):

- ``speed_only``: it changes how fast a cell computes, not the trained model, so it is not part
  of the cell key (a stored cell is reused whatever its value);
- ``stacked``: ``"any"`` if seed-stacked training (several seeds as one stacked model) honours
  every value, ``"default"`` if it implements only the default, so that a cell with another value
  trains on its own (the harness reads this; nothing else lists the settings).

Cell keys are safe by construction: a setting at its default is left out of the dump (so out of
every cell key and every run folder's record), whatever the default, so adding one leaves every
stored cell where it is. Only the settings of 0.1 are ``pinned``: in the dump whatever their
value, as the stored keys of 0.1 have them. A new setting is never pinned.

Adding a training setting is adding a field here and implementing it where it acts (usually
:mod:`robustbench_ode.training.loop`); docs/architecture.md has the checklist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.types import Bool, Float, Int, Label, NonNegInt, Tol, Weight, unique_list
from ..solvers import SOLVERS


def setting(default: Any, *, speed_only: bool = False, stacked: Literal["any", "default"] = "any",
            pinned: bool = False, **kw: Any) -> Any:
    """A training field with its harness metadata (see the module docstring)."""
    extra = {"speed_only": speed_only, "stacked": stacked, "pinned": pinned}
    return Field(default=default, json_schema_extra=extra, **kw)


def pinned(default: Any, **kw: Any) -> Any:
    """A field of 0.1 outside the ``training:`` settings proper (adaptation, regularisation):
    in the dump whatever its value (see the module docstring)."""
    return Field(default=default, json_schema_extra={"pinned": True}, **kw)


def drop_none(data: dict, keys: tuple[str, ...]) -> dict:
    # Optional fields stay out of the dump (and so out of every cell key) until set.
    for k in keys:
        if data.get(k) is None:
            data.pop(k, None)
    return data


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Settings(_Frozen):
    """Settings whose dump leaves out every field at its default unless it is pinned."""

    @pydantic.model_serializer(mode="wrap")
    def _dump_set(self, handler):
        data = handler(self)
        for name, info in type(self).model_fields.items():
            keep = info.is_required() or (info.json_schema_extra or {}).get("pinned")
            if not keep and getattr(self, name) == info.default:
                data.pop(name, None)
        return data


class AdaptationConfig(_Settings):
    """``adaptation:`` in a suite's ``training`` section (algorithms: training/adaptation.py).
    ``mode: step`` for fixed-step train solvers, ``mode: tolerance`` for adaptive ones."""

    mode: Literal["step", "tolerance"]
    check_every: Annotated[Int, Field(gt=0, le=1_000_000)] = pinned(50)
    threshold: Annotated[Float, Field(ge=0.0, le=1.0)] = pinned(0.1)
    growth: Annotated[Float, Field(gt=1.0, le=10.0)] = pinned(1.1)
    # heuristic: Hairer-Norsett-Wanner starting step (step mode) / initial_tol (tolerance mode);
    # grid: the grid's steps / tol value of the cell.
    start: Literal["heuristic", "grid"] = pinned("heuristic")
    max_steps_cap: Annotated[Int, Field(gt=0, le=1_000_000)] = pinned(500)
    # Tolerances of the weighted norm in the starting-step heuristic (sc_i = atol + rtol |y0_i|).
    heuristic_tol: Annotated[Float, Field(gt=0.0, le=1e3)] = pinned(0.01)
    initial_tol: Tol = pinned(1e-6)
    min_tol: Tol = pinned(1e-12)
    # Check solver; None: the train solver's own (its registry entry's check_solver).
    test_solver: str | None = pinned(None)
    # Test steps = factor x train steps; None: 1 if the test solver has a higher order, else 2.
    test_step_factor: Annotated[Int, Field(gt=0, le=1024)] | None = pinned(None)
    # Tolerance mode: growth is reverted when the train NFE has not changed over this many checks.
    nfe_window: Annotated[Int, Field(gt=1, le=1000)] = pinned(5)

    @field_validator("test_solver")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None and v not in SOLVERS:
            raise ValueError(SOLVERS.unknown_message(v))
        return v

    def check_solver(self, train_solver: str) -> str:
        """The solver the train solve is checked against: ``test_solver``, else the one the train
        solver declares (solvers/catalog.py)."""
        return self.test_solver or SOLVERS.get(train_solver).check_solver

    def step_factor(self, train_solver: str) -> int:
        if self.test_step_factor is not None:
            return self.test_step_factor
        higher = SOLVERS.get(self.check_solver(train_solver)).order > SOLVERS.get(train_solver).order
        return 1 if higher else 2

    def incompatibility(self, solver: str) -> str | None:
        """Why this mode cannot adapt ``solver`` (None if it can)."""
        adaptive = SOLVERS.get(solver).adaptive
        if self.mode == "step" and adaptive:
            return f"mode 'step' needs a fixed-step train solver, got adaptive {solver!r}"
        if self.mode == "tolerance" and not adaptive:
            return f"mode 'tolerance' needs an adaptive train solver, got fixed-step {solver!r}"
        check = self.check_solver(solver)
        if self.mode == "step" and SOLVERS.get(check).adaptive and self.test_solver is not None:
            return None  # an adaptive check solver on a fixed grid is allowed
        if self.mode == "tolerance" and not SOLVERS.get(check).adaptive:
            return f"test_solver {check!r} is fixed-step: tolerance mode needs an adaptive one"
        return None


class RegularizationConfig(_Settings):
    """``regularization:``: the penalties' weights, 0 switches one off (training/forward.py)."""

    kinetic: Weight = pinned(0.0)
    jacobian: Weight = pinned(0.0)


Large = Annotated[Int, Field(gt=0, le=10_000_000)]


class TrainingConfig(_Settings):
    iterations: Large = setting(1000, pinned=True)
    batch_size: Annotated[Int, Field(gt=0, le=1_000_000)] = setting(128, pinned=True)
    lr: Annotated[Float, Field(gt=0.0, le=10.0)] = setting(1e-3, pinned=True)
    weight_decay: Annotated[Float, Field(ge=0.0, le=10.0)] = setting(0.0, pinned=True)
    # autograd: backpropagate through the solver's operations; adjoint: torchdiffeq's adjoint ODE
    # (memory independent of the step count, more field evaluations; training/probes.py measures both)
    gradient: Literal["autograd", "adjoint"] = setting("autograd", stacked="default", pinned=True)
    max_steps: Large = setting(10_000, pinned=True)  # for adaptive solves (stacked cells are fixed-step)
    eval_batch_size: Large = setting(1000, pinned=True)
    # The fast GPU path (training/acceleration.py); all off by default. Testing always runs in fp32.
    amp: Bool = setting(False, stacked="default", pinned=True)  # bf16 autocast for the training forward pass
    channels_last: Bool = setting(False, speed_only=True, stacked="default", pinned=True)
    compile: Bool = setting(False, speed_only=True, stacked="default", pinned=True)  # torch.compile the field
    # "reduce-overhead" captures the compiled field in CUDA graphs: launch overhead stops dominating
    # small models on a GPU.
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = setting("default", speed_only=True,
                                                                                  pinned=True)
    # Save model, optimizer and batch-stream state this often (0: never), so a killed run resumes
    # where it stopped; a seed-stacked group saves one checkpoint per cell.
    checkpoint_every: NonNegInt = setting(1000, speed_only=True, pinned=True)
    # The CPU fast paths (docs/performance.md): models with a speed switch evaluate their field as
    # matrix products, and cells that differ only by seed train together as one stacked model.
    # ``false`` runs the plain path (for debugging; results differ by float rounding). One switch
    # with one key behaviour: off is recorded as the model's speed switch too, which is part of the
    # key (harness/cell.py one_fast_switch), so ``model.fast: false`` is the same cell.
    fast: Bool = setting(True, speed_only=True, stacked="default", pinned=True)
    # Log the memory autograd keeps for the backward pass (training/probes.py), every
    # ``memory_every`` iterations (and the first); the other rows leave saved_mb empty.
    record_memory: Bool = setting(True, speed_only=True, pinned=True)
    memory_every: Annotated[Int, Field(gt=0, le=10_000_000)] = setting(10, speed_only=True, pinned=True)
    adaptation: AdaptationConfig | None = setting(None, stacked="default")
    # kinetic-energy and Jacobian-Frobenius penalties (Finlay et al. 2020)
    regularization: RegularizationConfig | None = setting(None, stacked="default")
    # The name in the tables' ``training`` column when a suite lists several trainings.
    label: Label | None = None
    # Train only these datasets (labels or names) this way; default: every dataset.
    datasets: unique_list(Label, max_length=100) | None = None

    @field_validator("gradient", mode="before")
    @classmethod
    def _old_name(cls, v):
        return "autograd" if v == "backprop" else v  # the name suites used before 0.2

    @property
    def display(self) -> str:
        return self.label or "default"

    @classmethod
    def speed_only(cls) -> frozenset[str]:
        """The settings that are not part of the cell key: the same model comes out whatever their
        values (declared with ``setting(..., speed_only=True)``)."""
        return frozenset(name for name, info in cls.model_fields.items()
                         if (info.json_schema_extra or {}).get("speed_only"))

    def stacked_exceptions(self) -> list[str]:
        """The settings this training sets to a value seed-stacked training does not implement."""
        out = []
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra or {}
            if extra.get("stacked") == "default" and getattr(self, name) != info.default:
                out.append(name)
        return out


# Not part of the cell key: the same model comes out whatever their values.
SPEED_ONLY = TrainingConfig.speed_only()
