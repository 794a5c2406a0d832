"""robustbench_ode: a solver-robustness benchmark suite for neural ODEs.

Importing the package registers every built-in solver, model and dataset (their metadata; the
implementations load on first use, so the command line lists and validates without torch). The
public names below are resolved on first access; ``dir(robustbench_ode)`` and ``__all__`` list them
all (``tests/test_public_api.py``).
"""

from __future__ import annotations

from typing import Any

from .core import clock as _clock  # noqa: F401 - first: the run's wall-time breakdown starts here
from .core.registry import load as _load
from .core.version import __version__
from .datasets import DATASETS
from .datasets import register_all as _register_datasets
from .models import MODELS
from .models import register_all as _register_models
from .solvers import SOLVERS
from .solvers import register_all as _register_solvers

_register_solvers()
_register_models()
_register_datasets()

# name -> import path: the heavy parts of the public API, imported when first used
_LAZY = {
    "solve": "robustbench_ode.solvers.solve:solve",
    "Solution": "robustbench_ode.solvers.solution:Solution",
    "SolveStats": "robustbench_ode.solvers.solution:SolveStats",
    "SolveSpec": "robustbench_ode.models.spec:SolveSpec",
    "Status": "robustbench_ode.core.status:Status",
    "SuiteError": "robustbench_ode.core.errors:SuiteError",
    "DataSplits": "robustbench_ode.datasets.base:DataSplits",
    "ODEClassifier": "robustbench_ode.models.classifier:ODEClassifier",
    "benchmark": "robustbench_ode.benchmarking:benchmark",
    "BenchmarkResult": "robustbench_ode.benchmarking:BenchmarkResult",
    "assert_is_ode": "robustbench_ode.assertion:assert_is_ode",
    "Monitor": "robustbench_ode.monitor:Monitor",
    "lightning_callback": "robustbench_ode.monitor:lightning_callback",
    "load_suite": "robustbench_ode.config:load_suite",
    "run_suite": "robustbench_ode.run.runner:run_suite",
    "sweep": "robustbench_ode.sweeping:sweep",
    "SweepResult": "robustbench_ode.sweeping:SweepResult",
}

__all__ = ["DATASETS", "MODELS", "SOLVERS", "__version__", *sorted(_LAZY)]


def __dir__() -> list[str]:
    # the lazy names are not in globals() until first used: list them, so that dir(rb) and
    # tab completion show the public API before anything heavy is imported
    return sorted(set(globals()) | set(_LAZY))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = _load(_LAZY[name])
        globals()[name] = value
        return value
    raise AttributeError(f"module 'robustbench_ode' has no attribute {name!r}")
