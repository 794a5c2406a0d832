"""Models: ODE classifiers built by factories in the :data:`MODELS` registry."""

from .catalog import BUILTIN_MODELS, MODELS
from .classifier import AugmentChannels, ODEBlock, ODEClassifier, Reshape, SolveSpec, init_weights
from .fields import MLP, OttConv1d, OttConv2d


def register_all() -> None:
    for name, (factory, description) in BUILTIN_MODELS.items():
        if name not in MODELS:
            MODELS.register(name, factory, description)


__all__ = ["MLP", "MODELS", "AugmentChannels", "ODEBlock", "ODEClassifier", "OttConv1d",
           "OttConv2d", "Reshape", "SolveSpec", "init_weights", "register_all"]
