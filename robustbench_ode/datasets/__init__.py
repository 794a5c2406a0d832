"""Datasets: factories ``f(seed, **params) -> DataSplits`` in the :data:`DATASETS` registry.

Importable without torch: the registry loads a factory's module on first use.
"""

from typing import Any

from ..core.registry import load
from .catalog import DATASETS, DatasetInfo, register_all

__all__ = ["DATASETS", "DataSplits", "DatasetInfo", "register_all"]


def __getattr__(name: str) -> Any:
    if name == "DataSplits":  # needs torch; the registry does not
        return load("robustbench_ode.datasets.base:DataSplits")
    raise AttributeError(f"module 'robustbench_ode.datasets' has no attribute {name!r}")
