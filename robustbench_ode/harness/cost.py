"""What a suite will cost, before it runs: counted from the config and the registries' metadata
alone (a solver's ``stages``, a dataset's sizes), without torch, for ``validate`` and ``run``.

- **Training**: per cell, iterations x field evaluations (FE) per iteration; a fixed-step solve
  takes steps x stages FE (its forward pass; autograd's backward pass evaluates no field, the
  adjoint's roughly doubles it). An adaptive solve's count is known only when it runs: such a
  cell counts its lower bound, one step per iteration, and is reported as adaptive.
- **Test grid**: per cell, the sum over its test points of steps x stages x test batches
  (``ceil(n_test / eval_batch_size)``); adaptive and gridless points are counted as unknown rows.
- **Work**: FE times the samples each evaluation carries (the batch size in training, the test
  batch in testing), in sample-evaluations, each weighted by the model's size: the multiply-adds
  of one field evaluation (models/arithmetic.py, declared per family in the registry, on the
  sample shape the dataset's entry declares) over :data:`REFERENCE_MACS`, those of the model the
  rate was measured with; never below 1, since small models cost their call overheads. With the
  training iterations it gives an estimate of the time on two CPU cores (:data:`RATE`
  sample-evaluations per second, :data:`PER_ITERATION` seconds per iteration, measured on
  ``suites/quick.yaml``: 16 000 iterations, 1.2e8 sample-evaluations, 132 s of training):
  beyond :data:`WARN_SECONDS` (a day) a warning, beyond :data:`REFUSE_SECONDS` (100 days) refused
  unless ``--force``. These limits are a CPU's: a run on a GPU (``--device cuda``) is not held to
  them. Checked against measured runs in tests/test_cost.py (the estimate within a few times of
  the wall time, from Sphere2's 6e3 to 900-D spheres' 2.8e6 multiply-adds per evaluation).

Around the counted work: :data:`STARTUP_SECONDS` (imports), :data:`PER_CELL_SECONDS` (model
build, diagnostics, store writes) and :data:`REPORT_SECONDS` (figures and report), measured
constants (see their comment); :attr:`Cost.total_seconds` is the whole command, checked within
2x of measured runs in tests/test_cost.py.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from ..config import SuiteConfig
from ..core.errors import SuiteError
from ..core.preview import clip
from ..models import arithmetic
from ..solvers import SOLVERS
from .cell import CellConfig, CellRecord, cells
from .grid import TestPoint

RATE = 6e5  # sample-evaluations per second, two CPU cores, the smallest models
# multiply-adds of one field evaluation of the model RATE was measured with (quick.yaml's)
REFERENCE_MACS = arithmetic.ott_conv1d({"width": 32}, (2,))
PER_ITERATION = 1e-3  # seconds of every training iteration beyond its evaluations
# The fixed costs around the counted work, so that ``validate`` estimates the whole command.
# Measured 2026-12-07 on the shared 2-core machine at load 16-19, as CPU time (user + sys) since
# the wall time there measures the load; one thread on an idle core takes about its CPU time.
# - STARTUP_SECONDS: Python, torch and the package imported for ``run``: 3.7 s CPU for
#   `python -c "import robustbench_ode.commands, robustbench_ode.run.runner, robustbench_ode.outputs.report"`.
# - REPORT_SECONDS: summary, figures and report.html at the end of ``run``: `report DIR` on copies
#   of results/demo and results/xor_fan took 5.5 and 6.7 s CPU, less the 3.7 s of imports.
# - PER_CELL_SECONDS: the work per cell the counts leave out (model build, diagnostics, adaptive
#   and gridless test rows, store writes). A fit, not a model: the residual (meta.json wall time -
#   counted seconds) / cells is 5.8 s on results/xor_fan and 5.0 s on results/gradient_memory
#   (their walls measured with the other core busy), while a smoke run (3 cells) takes 8.2 s CPU
#   in all and results/demo's counted work alone is 1.5x its wall; 2.9 s keeps all four within
#   2x (tests/test_cost.py), none with much margin.
STARTUP_SECONDS = 4.0
PER_CELL_SECONDS = 2.9
REPORT_SECONDS = 2.5
WARN_SECONDS = 86_400.0  # a day: a warning
REFUSE_SECONDS = 100 * 86_400.0  # refused unless --force


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86_400), ("hours", 3600), ("minutes", 60), ("seconds", 1)):
        if seconds >= size or unit == "seconds":
            value = seconds / size
            text = f"{value:.2g}" if value < 100 else f"{value:.0f}" if value < 1e5 else _short(value)
            return f"{text} {unit}"
    return ""


def _short(n: float) -> str:
    """1234567 -> 1.2e6; small numbers as they are."""
    return str(int(round(n))) if n < 1e4 else f"{n:.2g}".replace("e+0", "e").replace("e+", "e")


@dataclass
class Cost:
    cells: int = 0
    train_fe: int = 0  # training field evaluations (adaptive cells: their lower bound)
    adaptive_cells: int = 0  # cells whose training solves adaptively
    test_fe: int = 0  # test-grid field evaluations of the fixed-step points
    test_rows: int = 0
    unknown_rows: int = 0  # adaptive and gridless test points: counted when they run
    work: float = 0.0  # sample-evaluations, training and testing
    iterations: int = 0  # training iterations, all cells
    largest: list[tuple[float, str]] = field(default_factory=list)  # the costliest cells
    warnings: list[str] = field(default_factory=list)  # settings that are likely mistakes

    def summary(self) -> str:
        """One line for ``validate``."""
        train = f"{_short(self.train_fe)} training FE"
        if self.adaptive_cells:
            many = "s train" if self.adaptive_cells > 1 else " trains"
            train += f" (at least: {self.adaptive_cells} cell{many} adaptively)"
        test = f"{_short(self.test_fe)} test-grid FE"
        if self.unknown_rows:
            test += f" (+{self.unknown_rows} adaptive or gridless rows)"
        return f"{self.cells} cells, {self.test_rows} test rows; {train}; {test}; " \
               f"about {_short(self.work)} sample-evaluations, about {_duration(self.total_seconds)} " \
               f"on 2 CPU cores (start-up and report included)"

    @property
    def seconds(self) -> float:
        """The cells' time on two CPU cores (module docstring): what ``meta.json`` measures
        between ``started`` and ``finished``; the sum of the units' weights."""
        return self.work / RATE + self.iterations * PER_ITERATION + self.cells * PER_CELL_SECONDS

    @property
    def total_seconds(self) -> float:
        """The whole ``run`` command: start-up, the cells, the report."""
        return STARTUP_SECONDS + self.seconds + REPORT_SECONDS

    def verdict(self) -> tuple[str, str] | None:
        """("warning" or "refused", one line) when the suite is beyond the limits, else None."""
        if self.total_seconds < WARN_SECONDS:
            return None
        worst = max(self.largest)[1] if self.largest else ""
        refused = self.total_seconds >= REFUSE_SECONDS
        limit = (f", beyond the limit of {_duration(REFUSE_SECONDS)} (give --device cuda for a GPU, "
                 "or --force to run it anyway)" if refused else "")
        what = (f"about {_duration(self.total_seconds)} on 2 CPU cores{limit} ({_short(self.work)} "
                f"sample-evaluations, {_short(self.iterations)} iterations)"
                f"{'; the costliest cell: ' + worst if worst else ''}")
        return ("refused" if refused else "warning"), what


@dataclass(frozen=True)
class CellCost:
    """One cell's share of :class:`Cost` (module docstring)."""

    train_fe: int  # training FE (an adaptive cell: its lower bound)
    adaptive: bool
    test_fe: int  # the fixed-step test points' FE
    unknown_rows: int
    rows: int
    train_work: float  # sample-evaluations
    test_work: float
    iterations: int
    detail: str  # what dominates it, for the costliest-cell line

    @property
    def seconds(self) -> float:
        return (self.train_work + self.test_work) / RATE + self.iterations * PER_ITERATION \
            + PER_CELL_SECONDS

    @property
    def test_seconds(self) -> float:
        """The test grid alone (what a re-test of a stored model costs)."""
        return self.test_work / RATE


def size_factor(cell: CellConfig) -> float:
    """How many times the reference model's work one of ``cell``'s sample-evaluations is (>= 1;
    1 where the family or the dataset declares no size)."""
    macs = cell.model.macs(cell.dataset.shape)
    return max(1.0, macs / REFERENCE_MACS) if macs else 1.0


def cell_cost(cell: CellConfig, points: list[TestPoint]) -> CellCost:
    """The cost of training ``cell`` and testing it at ``points``."""
    training = cell.training
    size = size_factor(cell)
    solver = SOLVERS.get(cell.solver)
    n_train, n_test = cell.dataset.sizes
    if cell.steps is not None:
        fe = training.iterations * cell.steps * solver.stages
    else:
        fe = training.iterations * solver.stages  # at least one step per iteration
    fe *= 2 if training.gradient == "adjoint" else 1
    batch = min(training.batch_size, n_train) if n_train else training.batch_size
    test_batch = min(training.eval_batch_size, n_test) if n_test else training.eval_batch_size
    batches = math.ceil(n_test / training.eval_batch_size) if n_test else 1
    test_fe = sum(p.spec.steps * SOLVERS.get(p.spec.solver).stages * batches
                  for p in points if p.spec.steps is not None)
    unknown = sum(p.spec.steps is None for p in points)
    detail = f"training.iterations {training.iterations} x {cell.solver} steps {cell.steps}" \
        if cell.steps is not None else f"training.iterations {training.iterations} ({cell.solver})"
    if test_fe * test_batch > fe * batch:
        top = max((p for p in points if p.spec.steps), key=lambda p: p.spec.steps)
        detail = f"test {top.spec.solver} steps {top.spec.steps} on {n_test or '?'} samples"
    if size > 1:
        detail += f", batch {batch}, a model {_short(size)}x the smallest's work"
    else:
        detail += f", batch {batch}"
    return CellCost(fe, cell.steps is None, test_fe, unknown, len(points), fe * batch * size,
                    test_fe * test_batch * size, training.iterations, detail)


def estimate(suite: SuiteConfig) -> Cost:
    cost = Cost()
    per_cell: list[tuple[float, str]] = []
    for cell in cells(suite):
        one = cell_cost(cell, CellRecord.planned(cell).grid(suite.test, suite.reference))
        cost.cells += 1
        cost.adaptive_cells += one.adaptive
        cost.unknown_rows += one.unknown_rows
        cost.test_rows += one.rows
        cost.train_fe += one.train_fe
        cost.test_fe += one.test_fe
        cost.work += one.train_work + one.test_work
        cost.iterations += one.iterations
        per_cell.append((one.train_work + one.test_work, f"{cell.label()}: {one.detail}"))
    cost.largest = sorted(per_cell, reverse=True)[:1]
    cost.warnings = _batch_warnings(suite)
    return cost


def _batch_warnings(suite: SuiteConfig) -> list[str]:
    """A training batch larger than the training set repeats samples within every batch."""
    out = []
    for dataset, _, training in suite.pairs():
        n_train = dataset.sizes[0]
        if n_train is not None and training.batch_size > n_train:
            d = next(i for i, e in enumerate(suite.dataset) if e is dataset)
            t = next(i for i, e in enumerate(suite.training) if e is training)
            where_t = "training" if len(suite.training) == 1 else f"training.{t}"
            where_d = "dataset" if len(suite.dataset) == 1 else f"dataset.{d}"
            out.append(f"{where_t}.batch_size {training.batch_size} is more than {where_d}.n_train "
                       f"{n_train} ({clip(dataset.display, 30)}): every batch repeats training samples")
    return list(dict.fromkeys(out))


def admit(suite: SuiteConfig, force: bool, source: str, gpu: bool = False) -> str:
    """The cost line of a suite (for ``validate``). On a CPU: beyond :data:`REFUSE_SECONDS` a
    one-line SuiteError unless ``force``, beyond :data:`WARN_SECONDS` a warning on stderr. On a GPU
    (``gpu``) neither: the estimate is a CPU's."""
    cost = estimate(suite)
    verdict = None if gpu else cost.verdict()
    if verdict is not None and verdict[0] == "refused" and not force:
        raise SuiteError(f"{source}: {verdict[1]}")  # one line, before any warning
    for warning in cost.warnings + ([verdict[1]] if verdict is not None else []):
        print(clip(f"robustbench-ode: warning: {source}: {warning}", 299), file=sys.stderr)
    return cost.summary()
