"""Models: ODE classifiers built by factories in the :data:`MODELS` registry."""

from .catalog import BUILTIN_MODELS, MODELS
from .classifier import AugmentChannels, ODEBlock, ODEClassifier, Reshape, SolveSpec, init_weights
from .elliptic_fan import EllipticFan, elliptic_fan
from .fields import MLP, OttConv1d, OttConv2d
from .resnet import PiecewiseField, ResNetClassifier, resnet, resnet_shared
from .trajectory import TrajectoryModel, allocate_steps, trajectory


def register_all() -> None:
    for name, (factory, description) in BUILTIN_MODELS.items():
        if name not in MODELS:
            MODELS.register(name, factory, description)
    if "elliptic_fan" not in MODELS:
        MODELS.register("elliptic_fan", elliptic_fan,
                        "2-D rotation on concentric ellipses, speed growing with radius; exact flow")
    resnets = {
        "resnet_shared": (resnet_shared, "a base model's field as N residual blocks z + f(z)/N, one "
                          "shared field (Euler at h = 1/N); tested as the ODE dz/dt = f(z)"),
        "resnet": (resnet, "a base model's field as N residual blocks with separate weights; "
                   "tested as the piecewise-constant-in-time ODE dz/dt = f_k(t)(z)"),
    }
    for name, (factory, description) in resnets.items():
        if name not in MODELS:
            MODELS.register(name, factory, description)
    if "trajectory" not in MODELS:
        MODELS.register("trajectory", trajectory,
                        "latent-free MLP field on the observed state, solved through the observation "
                        "times; time-series regression")


__all__ = ["MLP", "MODELS", "AugmentChannels", "EllipticFan", "ODEBlock", "ODEClassifier", "OttConv1d",
           "OttConv2d", "PiecewiseField", "Reshape", "ResNetClassifier", "SolveSpec", "TrajectoryModel",
           "allocate_steps", "init_weights", "register_all", "trajectory"]
