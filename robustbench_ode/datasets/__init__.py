"""Datasets: factories ``f(seed, **params) -> DataSplits`` in the :data:`DATASETS` registry."""

from .base import DATASETS, DataSplits, split_rng
from .images import IMAGE_DATASETS
from .timeseries import TIMESERIES_DATASETS
from .toy import TOY_DATASETS
from .xor import xor


def register_all() -> None:
    for name, (factory, description) in {**TOY_DATASETS, **IMAGE_DATASETS, **TIMESERIES_DATASETS}.items():
        if name not in DATASETS:
            DATASETS.register(name, factory, description)
    if "xor" not in DATASETS:
        DATASETS.register("xor", xor, "XOR on the unit square's corners, classes 0/1/1/0, optional noise")


__all__ = ["DATASETS", "DataSplits", "register_all", "split_rng"]
