"""``diagnose_model``: the pieces of an :class:`~robustbench_ode.models.ODEClassifier` handed to
:func:`~robustbench_ode.diagnostics.diagnose`."""

from __future__ import annotations

import copy

import torch

from ..models.classifier import ODEClassifier
from ..models.trajectory import TrajectoryModel
from .core import Diagnosis, diagnose


def diagnose_model(model: ODEClassifier, x: torch.Tensor, y: torch.Tensor | None = None,
                   solver: str = "euler", steps: int | None = None, tol: float | None = None, *,
                   dtype: torch.dtype | None = None, **kwargs) -> Diagnosis:
    """:func:`diagnose` of ``model``'s ODE block on inputs ``x`` (already prepared, e.g.
    ``splits.prepare(splits.x_test)``): ``z0 = model.input_map(x)``, the field
    ``model.block.field``, the head ``model.logits``, ``t_span = model.block.t_span``.

    ``dtype`` (e.g. ``torch.float64``) runs on a cast copy of the model; the model itself is left
    untouched. The model is put in eval mode for the call and restored. A ResNet baseline
    (``resnet``, ``resnet_shared``) is diagnosed as the ODE it is tested as; its discrete network
    is ``solver='euler', steps=blocks``. Further keyword arguments go to :func:`diagnose`.
    """
    if isinstance(model, TrajectoryModel):
        raise ValueError("diagnose_model: a trajectory model is a regression model with no classes "
                         "to flip; use diagnose with a head of your own")
    if not isinstance(model, ODEClassifier):
        raise ValueError(f"diagnose_model needs an ODEClassifier, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a tensor, got {type(x).__name__}")
    if "t_span" in kwargs:
        raise ValueError("diagnose_model takes t_span from model.block.t_span; do not pass it")
    if dtype is not None:
        model = copy.deepcopy(model).to(dtype)
        x = x.to(dtype)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            z0 = model.input_map(x)
        return diagnose(model.block.field, z0, model.logits, y, solver=solver, steps=steps, tol=tol,
                        t_span=model.block.t_span, **kwargs)
    finally:
        model.train(training)
