"""A plain or interface model's train configuration, given (validated as a suite's train entry)
or read from its first odeint call, and the one-sample checks benchmark() and sweep() make
before testing (:mod:`robustbench_ode.benchmarking`)."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from ..config import TrainEntry
from ..config.messages import format_validation_error
from ..core.errors import SuiteError
from ..core.status import Status
from ..datasets.base import DataSplits
from ..models.classifier import ODEClassifier
from ..models.spec import SolveSpec
from .plain_density import plain_nll
from .substitution import substituted


def validated(what: str, build):
    """``build()``, its validation error one line naming ``what`` (a SuiteError)."""
    try:
        return build()
    except ValidationError as exc:
        raise SuiteError(format_validation_error(exc, prefix=what)) from None
    except TypeError as exc:
        raise SuiteError(f"{what}: {exc}") from None


def spec_entry(spec: SolveSpec) -> dict[str, Any]:
    if spec.steps is not None:
        return {"solver": spec.solver, "steps": spec.steps}
    atol = {"atol": spec.atol} if spec.atol != spec.rtol else {}
    return {"solver": spec.solver, "tol": spec.rtol, **atol}


def train_spec(train: dict[str, Any], max_steps: int) -> SolveSpec:
    """How the model was trained, ``{"solver", "steps"}`` or ``{"solver", "tol"}``, validated as a
    suite's train grid entry is (one-line errors naming the key)."""
    if not isinstance(train, dict):
        raise SuiteError(f"train: give a mapping such as {{'solver': 'euler', 'steps': 4}}, got "
                         f"{type(train).__name__}")
    lists = {k: [v] if k in ("steps", "tol") else v for k, v in train.items()}
    entry = validated("train", lambda: TrainEntry(**lists))
    steps = entry.steps[0] if entry.steps else None
    tol = entry.tol[0] if entry.tol else None
    return SolveSpec(entry.solver, steps=steps, rtol=tol, atol=tol, max_steps=max_steps)


def is_plain(model: nn.Module) -> bool:
    """Whether ``model`` is tested as a plain torchdiffeq model (under solver substitution):
    neither a package ODEClassifier nor a model with ``input_map``, ``field`` and ``head``."""
    return not isinstance(model, ODEClassifier) and not all(
        hasattr(model, a) for a in ("input_map", "field", "head"))


def inferred_train(model: nn.Module, data: DataSplits, device: str, max_steps: int) -> SolveSpec:
    """The train configuration of a plain torchdiffeq model, read from the first odeint call of
    one forward pass on one test sample (run under substitution with one Euler step: cheap, and
    the model's own solver never runs)."""
    x = data.prepare(data.x_test[:1].to(device))
    with torch.no_grad(), substituted(SolveSpec("euler", steps=1)) as probe:
        _probe(lambda: _output(model.eval(), x, data), model)
    if probe.requested is None:
        raise SuiteError(f"model: {type(model).__name__} has neither input_map, field and head nor a "
                         "torchdiffeq odeint (or torchode solve_ivp) call in its forward: nothing to test")
    try:
        spec = probe.requested.train_spec()
    except (ValueError, ArithmeticError) as exc:  # step_size=0 divides by zero
        raise SuiteError(f"train: not given, and not inferable from the model's first odeint call "
                         f"({exc}); pass train={{'solver': ..., 'steps': ...}}") from None
    # validated as a given train entry is: steps capped as grid steps are (core/types.py Steps),
    # rtol and atol each a tolerance
    asked = ([{"solver": spec.solver, "steps": spec.steps}] if spec.steps is not None else
             [{"solver": spec.solver, "tol": spec.rtol}, {"solver": spec.solver, "tol": spec.atol}])
    for entry in asked:
        try:
            train_spec(entry, max_steps)
        except SuiteError as exc:
            raise SuiteError(f"{exc} (inferred from the model's first odeint call: {spec_entry(spec)}); "
                             "pass train={'solver': ..., 'steps': ...}") from None
    return SolveSpec(spec.solver, steps=spec.steps, rtol=spec.rtol, atol=spec.atol, max_steps=max_steps)


def _output(model: nn.Module, x: torch.Tensor, data: DataSplits) -> torch.Tensor:
    """A plain model's output: its log-likelihood for density data (harness/plain_density.py)."""
    return plain_nll(model, x) if data.task == "density" else model(x)


def _probe(forward, model: nn.Module):
    """One probe forward pass (one sample, one Euler step); what it raises is one line naming the
    model (the user's code may raise anything)."""
    try:
        return forward()
    except SuiteError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model
        _, message = Status.from_exception(exc)
        raise SuiteError(f"model: {type(model).__name__} raised on one test sample (one Euler step): "
                         f"{message[:200]}") from None


def check_width(net: nn.Module, data: DataSplits, spec: SolveSpec, plain: bool, device: str) -> None:
    """The model's output on one test sample (one Euler step: cheap) has one logit per class of
    ``data`` (classification), or one log-likelihood (a plain density model); another width is a
    one-line error, not a misleading score."""
    if data.task == "density" and plain:
        with torch.no_grad(), substituted(SolveSpec("euler", steps=1)):
            _probe(lambda: plain_nll(net.eval(), data.prepare(data.x_test[:2].to(device))), net)
    if data.task != "classification":
        return
    x = data.prepare(data.x_test[:1].to(device))
    with torch.no_grad():
        if plain:
            with substituted(SolveSpec("euler", steps=1)):
                out = _probe(lambda: net.eval()(x), net)
        else:
            out = _probe(lambda: net.eval().logits(net.final_state(x, SolveSpec("euler", steps=1))[0]), net)
    shape = tuple(out.shape) if torch.is_tensor(out) else None
    if shape != (1, data.n_classes):
        raise SuiteError(f"model: its output for 1 sample has shape {shape}, not (1, {data.n_classes}): one "
                         f"logit per class of test_data ({data.n_classes}; a DataSplits with n_classes= "
                         "gives classes the test set lacks)")
