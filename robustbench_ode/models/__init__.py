"""Models: ODE classifiers built by factories in the :data:`MODELS` registry.

Importable without torch: the registry loads a factory's module on first use; the classes live
in :mod:`.classifier`, :mod:`.fields`, :mod:`.families`, :mod:`.resnet`, :mod:`.trajectory`,
:mod:`.elliptic_fan` and :mod:`.stacked`.
"""

from typing import Any

from ..core.registry import load
from .catalog import MODELS, ModelInfo, register_all
from .spec import SolveSpec

# The classes, imported on first access (they need torch; the registry and specs do not).
_LAZY = {
    "ODEBlock": "classifier", "ODEClassifier": "classifier", "AugmentChannels": "classifier",
    "Reshape": "classifier", "init_weights": "classifier",
    "MLP": "fields", "OttConv1d": "fields", "OttConv2d": "fields",
    "EllipticFan": "elliptic_fan", "PiecewiseField": "resnet", "ResNetClassifier": "resnet",
    "TrajectoryModel": "trajectory", "allocate_steps": "trajectory",
    "StackedClassifier": "stacked",
}

__all__ = ["MODELS", "ModelInfo", "SolveSpec", "register_all", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return load(f"robustbench_ode.models.{_LAZY[name]}:{name}")
    raise AttributeError(f"module 'robustbench_ode.models' has no attribute {name!r}")
