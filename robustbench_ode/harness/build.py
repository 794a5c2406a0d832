"""Building a cell's data and model from its config: the registries' factories called with the
validated parameters and the values the entries' metadata say the harness provides."""

from __future__ import annotations

import functools
import json

import torch
from torch import nn

from ..core.files import MAX_BLOB_BYTES, open_regular
from ..core.registry import import_factory, is_import_path
from ..datasets import DATASETS
from ..datasets.base import DataSplits
from ..models import MODELS
from ..models.interface import as_classifier
from .cell import CellConfig


@functools.lru_cache(maxsize=8)
def _load(dataset_json: str, seed: int) -> DataSplits:
    params = json.loads(dataset_json)
    name, data_seed = params.pop("name"), params.pop("data_seed")
    factory = import_factory(name) if is_import_path(name) else DATASETS.get(name)
    return factory(seed if data_seed is None else data_seed, **params)


def load_data(cell: CellConfig) -> DataSplits:
    """The cell's data (cached: the seeds of a suite share few distinct datasets)."""
    cfg = cell.dataset
    dump = cfg.model_dump(mode="json")
    dump.pop("label", None)  # the table name does not change the data
    return _load(json.dumps(dump, sort_keys=True), cell.seed)


def build_model(cell: CellConfig, data: DataSplits) -> nn.Module:
    """The cell's model, initialised from its seed (set before the model is built, so it fixes
    the initialisation; the released prototype set it afterwards), as evaluation calls it."""
    torch.manual_seed(cell.seed)
    params = dict(cell.model.params)
    info = cell.model.info
    if info is None:  # a factory named by import path: called with the suite's parameters only
        factory = import_factory(cell.model.name)
    else:
        factory = MODELS.get(cell.model.name)
        if info.speed_switch is not None and not cell.training.fast:
            params[info.speed_switch] = False  # training.fast: false switches every fast path off
        if "blocks" in info.provides and params.get("blocks") is None:
            # a discrete network (the ResNet baselines) left unsized is as deep as its train
            # steps: N blocks are Euler with N steps
            params["blocks"] = cell.steps
        if "times" in info.provides:  # a trajectory model solves through the observation times
            params["times"] = data.times
    model = factory(data.in_shape, data.n_classes, **params)
    if cell.model.checkpoint:
        with open_regular(cell.model.checkpoint, MAX_BLOB_BYTES, "model checkpoint") as f:
            model.load_state_dict(torch.load(f, map_location="cpu", weights_only=True))
    return as_classifier(model)
