"""robustbench_ode: a solver-robustness benchmark suite for neural ODEs.

Importing the package registers every built-in solver, model and dataset.
"""

from __future__ import annotations

from . import datasets as _datasets
from . import models as _models
from . import solvers as _solvers

_solvers.register_all()
_models.register_all()
_datasets.register_all()

from .datasets import DATASETS, DataSplits  # noqa: E402
from .models import MODELS, ODEClassifier, SolveSpec  # noqa: E402
from .solve import solve  # noqa: E402
from .solvers import SOLVERS, Solution, SolveStats  # noqa: E402
from .status import Status  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DATASETS", "MODELS", "SOLVERS", "DataSplits", "ODEClassifier", "Solution",
           "SolveSpec", "SolveStats", "Status", "__version__", "solve"]

# After __version__: the benchmark imports the cell module, which reads it.
from .benchmark import BenchmarkResult, benchmark  # noqa: E402

__all__ += ["BenchmarkResult", "benchmark"]
