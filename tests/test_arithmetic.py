"""The size metadata the cost estimate reads (harness/cost.py): every model family's declared
multiply-adds per field evaluation (models/arithmetic.py) against torch's FLOP counter on the
built field, and every dataset's declared sample shape against the data it makes. Both are
parametrized over the registries, so a new entry is checked here or fails for want of a case."""

from __future__ import annotations

import pytest
import torch
from image_files import trust, write_cifar10, write_idx, write_svhn
from torch.utils.flop_counter import FlopCounterMode

from robustbench_ode import DATASETS, MODELS
from robustbench_ode.datasets import images

# One small model per registered name, on a dataset of its kind; ott_conv1d with its Conv1d calls
# (fast: false), the arithmetic the rule declares (the dense speed path computes the same function).
CASES = {
    "ott_conv1d": ("spheres", {"dim": 5}, {"width": 6, "augment": 1, "time_input": True, "fast": False}),
    "ott_conv2d": ("digits", {}, {"width": 5, "augment": 2, "time_input": True}),
    "mlp": ("moons", {}, {"hidden": 7, "depth": 3, "augment": 1, "time_input": True}),
    "elliptic_fan": ("xor", {}, {}),
    "resnet_shared": ("sphere2", {}, {"blocks": 3, "width": 6, "fast": False}),
    "resnet": ("moons", {}, {"blocks": 2, "base": "mlp", "hidden": 9}),
    "trajectory": ("lotka_volterra", {"n_points": 4}, {"hidden": 8, "depth": 2, "time_input": True}),
    "augmented_trajectory": ("reflection", {}, {"hidden": 8, "depth": 2, "augment": 2,
                                                "time_input": True}),
    "cnf": ("two_moons", {}, {"hidden": 7, "depth": 3}),  # exact trace: D backward passes
}
# the strided input map changes the state the field sees: a second image case
EXTRA = [("ott_conv2d", "digits", {}, {"width": 4, "input_map": "strided_conv", "map_channels": 3,
                                      "map_stride": 3}),
         # Hutchinson's trace: one backward pass per probe
         ("cnf", "digits_density", {}, {"hidden": 6, "depth": 2, "probes": 3, "time_input": False})]


def _case_ids():
    return [(name, *CASES.get(name, (None, None, None))) for name in MODELS.names()] + EXTRA


def _params(registry, name: str, given: dict) -> dict:
    """What the suite's entry hands the rule: the validated parameters, defaults included."""
    return registry.meta(name).params(**given).model_dump()


@pytest.mark.parametrize("name, dataset, data_params, params", _case_ids(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_declared_macs_equal_the_counted_flops_of_one_field_evaluation(name, dataset, data_params, params):
    if dataset is None:
        pytest.fail(f"model {name!r} is registered but has no case here: add one to CASES")
    splits = DATASETS.get(dataset)(0, **data_params)
    kwargs = {"times": splits.times} if "times" in MODELS.meta(name).provides else {}
    model = MODELS.get(name)(splits.in_shape, splits.n_classes, **params, **kwargs)
    batch = 5
    with torch.no_grad():
        z = model.input_map(splits.prepare(splits.x_train[:batch]))
        with FlopCounterMode(display=False) as counter:
            model.block.field(torch.tensor(0.25), z)
    flops = counter.get_total_flops()
    rule = MODELS.meta(name).macs
    declared = rule(_params(MODELS, name, params), DATASETS.meta(dataset).shape(
        _params(DATASETS, dataset, data_params))) if rule is not None else None
    if declared is None:  # no rule: the estimate counts the smallest model's rate, so it must be small
        assert flops < 2 * batch * 100, flops
    else:
        assert flops == 2 * batch * declared, (flops, declared)


def _file_dataset(name: str, root, monkeypatch) -> dict:
    """Small files in the real on-disk format (tests/image_files.py); the loader's params."""
    if name in ("mnist", "fashion_mnist"):
        write_idx(root / {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[name] / "raw", 6, 4)
    elif name == "cifar10":
        write_cifar10(root, 2, 4)
        trust(monkeypatch, root)
    elif name == "svhn":
        write_svhn(root, 6, 4)
        trust(monkeypatch, root)
    else:
        pytest.fail(f"file dataset {name!r} has no writer here: add one")
    return {"root": str(root)}


@pytest.mark.parametrize("name", DATASETS.names())
def test_declared_sample_shape_is_the_datas(name, tmp_path, monkeypatch):
    monkeypatch.delenv(images.ENV_VAR, raising=False)
    info = DATASETS.meta(name)
    if info.files:
        given = _file_dataset(name, tmp_path, monkeypatch)
    elif info.task == "regression":
        given = {"n_train": 4, "n_test": 2}
        given.update({"n_points": 3} if "n_points" in info.params.model_fields else {})
    elif name == "spheres":
        given = {"dim": 7, "n_train": 8, "n_test": 4}
    else:
        given = {"n_train": 8, "n_test": 4} if "n_train" in info.params.model_fields else {}
    splits = DATASETS.get(name)(0, **given)
    assert info.shape(_params(DATASETS, name, given)) == tuple(splits.x_train.shape[1:])
