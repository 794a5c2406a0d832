"""Suite files validated into frozen, typed configs (importable without torch)."""

from .entries import DatasetConfig, ModelConfig
from .suite import (
    AXES,
    DiagnosticsConfig,
    ReferenceConfig,
    SuiteConfig,
    TestEntry,
    TrainEntry,
    TrainGrid,
    load_suite,
    parse_suite,
    read_suite,
)
from .training import SPEED_ONLY, AdaptationConfig, RegularizationConfig, TrainingConfig

__all__ = ["AXES", "SPEED_ONLY", "AdaptationConfig", "DatasetConfig", "DiagnosticsConfig", "ModelConfig",
           "ReferenceConfig", "RegularizationConfig", "SuiteConfig", "TestEntry", "TrainEntry",
           "TrainGrid", "TrainingConfig", "load_suite", "parse_suite", "read_suite"]
