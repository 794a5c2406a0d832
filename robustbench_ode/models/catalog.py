"""The built-in model families, registered in :data:`MODELS` with their metadata when the package
is imported. A factory is ``f(in_shape, n_classes, **params) -> ODEClassifier``; its parameters
are the entry's ``params`` model. The harness reads the metadata, never the factory: what task a
model fits, which values it provides to the factory, which parameter is a speed switch, whether
seeds can train stacked, and how the model may be trained."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.registry import Registry
from . import arithmetic as a
from . import params as p

MODELS: Registry = Registry("model")

Task = Literal["classification", "regression", "density"]
# Values the harness passes to a factory: ``times``, the dataset's observation times; ``blocks``,
# the cell's train step count when the suite leaves ``blocks`` out.
Provided = Literal["times", "blocks"]
# train_rule(params, grid, training) -> why a suite may not train the model so (one line), or None
TrainRule = Callable[[dict[str, Any], list, Any], "str | None"]
# macs(params, in_shape) -> multiply-adds of one field evaluation per sample (models/arithmetic.py)
MacsRule = Callable[[dict[str, Any], tuple[int, ...]], int]


@dataclass(frozen=True)
class ModelInfo:
    params: type[p.Params]
    task: Task = "classification"  # regression: the model fits trajectories; density: samples
    provides: frozenset[Provided] = field(default_factory=frozenset)
    speed_switch: str | None = None  # a parameter that training.fast: false sets to False
    # seeds of one configuration can train as one stacked model (training/forward.py: the field's
    # own stacked form where it has one, else torch.vmap of the model's forward); needs the speed
    # switch on where the family has one. False where the forward cannot run under vmap
    # (tests/test_stack_vmap.py checks every family's declaration either way)
    stackable: bool = False
    train_rule: TrainRule | None = None
    # what one field evaluation costs, for the cost estimate; None: a few operations per sample
    # (the estimate's floor, the smallest models' rate)
    macs: MacsRule | None = None


@dataclass(frozen=True)
class DiscreteNetworkRule:
    """The ResNet baselines train as their discrete network, which *is* Euler at h = 1/blocks: any
    other train configuration would put a solver in the train columns that never ran. A class,
    not a closure: units of work carry their cells' metadata to spawned and Ray workers by
    pickling."""

    name: str

    def __call__(self, params: dict[str, Any], grid: list, training: Any) -> str | None:
        name, blocks = self.name, params.get("blocks")
        for i, entry in enumerate(grid):
            if entry.solver != "euler":
                return (f"train.grid.{i}.solver: {name} trains as its discrete network, which is "
                        f"Euler with h = 1/blocks: give solver euler (got {entry.solver!r})")
            wrong = [s for s in entry.steps or [] if blocks is not None and s != blocks]
            if wrong:
                return (f"train.grid.{i}.steps: {name} with blocks={blocks} is Euler at {blocks} "
                        f"steps: give steps [{blocks}], or leave blocks out to take it from each step "
                        f"count (got {wrong[0]})")
        if training.adaptation is not None:
            return f"training.adaptation: {name} has a fixed number of blocks; its steps cannot adapt"
        if training.regularization is not None:
            return (f"training.regularization: {name} trains as discrete blocks; there is no flow "
                    "to regularise")
        if training.gradient != "autograd":
            return f"training.gradient: {name} trains by autograd through its blocks (no solve, no adjoint)"
        return base_size_error(params)


def base_size_error(params: dict[str, Any]) -> str | None:
    """A size parameter the base family does not take, named (one line), or None."""
    base = params.get("base", "ott_conv1d")
    takes = set(p.BASE_PARAMS[base].model_fields)
    for name in ("width", "hidden", "depth", "activation", "augment", "time_input"):
        if params.get(name) is not None and name not in takes:
            return (f"model.{name}: not a parameter of base {base!r} "
                    f"(it takes {', '.join(sorted(takes))})")
    return None


_M = "robustbench_ode.models"
BUILTIN = {
    "ott_conv1d": (f"{_M}.families:ott_conv1d",
                   ModelInfo(p.OttConv1dParams, speed_switch="fast",
                                stackable=True,
                             macs=a.ott_conv1d),
                   "Conv1d field 1->32 (k1), 32->32 (k3), 32->1 (k1) on points; Sphere2"),
    "ott_conv2d": (f"{_M}.families:ott_conv2d",
                   ModelInfo(p.OttConv2dParams, stackable=True, macs=a.ott_conv2d),
                   "Conv2d field C->128 (k1), 128->128 (k3), 128->C (k1); images"),
    "mlp": (f"{_M}.families:mlp", ModelInfo(p.MLPParams, stackable=True, macs=a.mlp),
            "fully connected field on flattened input; 2-D toys"),
    "elliptic_fan": (f"{_M}.elliptic_fan:elliptic_fan", ModelInfo(p.EllipticFanParams, stackable=True),
                     "2-D rotation on concentric ellipses, speed growing with radius; exact flow"),
    "resnet_shared": (f"{_M}.resnet:resnet_shared",
                      ModelInfo(p.ResNetParams, provides=frozenset({"blocks"}), speed_switch="fast",
                                stackable=True,
                                train_rule=DiscreteNetworkRule("resnet_shared"), macs=a.Residual()),
                      "a base model's field as N residual blocks z + f(z)/N, one shared field "
                      "(Euler at h = 1/N); tested as the ODE dz/dt = f(z)"),
    "resnet": (f"{_M}.resnet:resnet",
               ModelInfo(p.ResNetParams, provides=frozenset({"blocks"}), speed_switch="fast",
                                stackable=True,
                         train_rule=DiscreteNetworkRule("resnet"), macs=a.Residual()),
               "a base model's field as N residual blocks with separate weights; tested as the "
               "piecewise-constant-in-time ODE dz/dt = f_k(t)(z)"),
    "trajectory": (f"{_M}.trajectory:trajectory",
                   ModelInfo(p.TrajectoryParams, task="regression", provides=frozenset({"times"}),
                             stackable=True,
                             macs=a.trajectory),
                   "latent-free MLP field on the observed state, solved through the observation "
                   "times; time-series regression"),
    "augmented_trajectory": (f"{_M}.trajectory:augmented_trajectory",
                             ModelInfo(p.AugmentedTrajectoryParams, task="regression",
                                       provides=frozenset({"times"}), stackable=True,
                                       macs=a.augmented_trajectory),
                             "the trajectory model with `augment` zero dimensions appended to the "
                             "state (ANODE, Dupont et al. 2019), read off at the first d "
                             "coordinates (a fixed readout); regression"),
    # not stackable: its trace term calls torch.autograd.grad inside the forward, which vmap refuses
    "cnf": (f"{_M}.cnf:cnf", ModelInfo(p.CNFParams, task="density", stackable=False, macs=a.cnf),
            "continuous normalising flow: MLP field on (z, t), log-density by the trace integral "
            "(exact or Hutchinson), solved data -> N(0, I); density datasets"),
}


def register_all() -> None:
    for name, (target, info, description) in BUILTIN.items():
        if name not in MODELS:
            MODELS.register(name, target, description, meta=info)
