"""``assert_is_ode``: a pytest-friendly assertion that a model trained outside this package behaves
as an ODE (its accuracy does not depend on the solver), whose failure message is the evidence.

    import robustbench_ode as rb

    def test_my_model_is_an_ode():
        rb.assert_is_ode(model, (x_test, y_test), max_gap=0.02)

It runs :func:`robustbench_ode.benchmark` on the model and the data and raises ``AssertionError``
when ``|ode_gap| > max_gap`` (``ode_gap = acc_train - acc_ref``: the test accuracy at the train
configuration minus the accuracy under the reference solve); the message reads like
``torch.testing.assert_close``'s: what failed, the two accuracies and the configurations that gave
them, then the whole solver grid (accuracy, NFE, status of every test configuration) and the
verdict. It returns the :class:`~robustbench_ode.benchmarking.BenchmarkResult` when it passes.

The verdict comes from one function, :func:`ode_verdict` (the gap and a word for it), so that a
richer verdict can replace it without touching the assertion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .benchmarking import BenchmarkResult, benchmark
from .core.errors import SuiteError

DEFAULT_MAX_GAP = 0.02  # two points of accuracy: a larger gap is more than test noise at n ~ 1000
GRID_COLUMNS = ["test_solver", "test_steps", "test_tol", "accuracy", "nfe", "status"]


@dataclass(frozen=True)
class OdeVerdict:
    """What the assertion and the monitor decide from: ``ode_gap`` and the accuracies it is the
    difference of, and ``verdict``: ``ode`` (``|ode_gap| <= max_gap``), ``resnet`` (the accuracy
    depends on the solver: the model is a ResNet of its training grid) or ``unknown`` (no gap)."""

    ode_gap: float
    acc_train: float
    acc_ref: float
    max_gap: float
    verdict: str

    @property
    def is_ode(self) -> bool:
        return self.verdict == "ode"


def ode_verdict(summary: pd.DataFrame, max_gap: float) -> OdeVerdict:
    """The verdict of a benchmark summary (its first row): the one function that decides."""
    row = summary.iloc[0]
    gap, acc_train, acc_ref = (float(row.get(k, math.nan)) for k in ("ode_gap", "acc_train", "acc_ref"))
    if math.isnan(gap):
        word = "unknown"
    else:
        word = "ode" if abs(gap) <= max_gap else "resnet"
    return OdeVerdict(gap, acc_train, acc_ref, float(max_gap), word)


def check_max_gap(max_gap: Any) -> float:
    if isinstance(max_gap, bool) or not isinstance(max_gap, (int, float)) or not 0 <= max_gap < 1:
        raise SuiteError(f"max_gap: must be a number in [0, 1) (an accuracy difference), got {max_gap!r}")
    return float(max_gap)


def _configuration(row: pd.Series) -> str:
    if not pd.isna(row.get("test_steps")):
        return f"{row['test_solver']} {int(row['test_steps'])} steps"
    return f"{row['test_solver']} tol {row['test_tol']:g}"


def evidence(result: BenchmarkResult, verdict: OdeVerdict) -> str:
    """The failure message: the verdict, the two accuracies with their configurations, the grid."""
    table = result.table
    train = table[table["is_train_config"].astype(bool)] if "is_train_config" in table else table[:0]
    ref = table[table["is_reference"].astype(bool)] if "is_reference" in table else table[:0]
    where_train = _configuration(train.iloc[0]) if len(train) else "the train configuration"
    where_ref = _configuration(ref.iloc[0]) if len(ref) else "the reference"
    if verdict.verdict == "unknown":
        head = ("The model's ODE gap could not be computed (no ok row at the train or reference "
                "configuration).")
    else:
        head = (f"The model is not an ODE: its accuracy depends on the solver "
                f"(|ode_gap| {abs(verdict.ode_gap):.4f} > max_gap {verdict.max_gap:g}).")
    cols = [c for c in GRID_COLUMNS if c in table.columns]
    grid = table[cols].to_string(index=False, na_rep="-")
    return "\n".join([
        head,
        f"Accuracy at the train configuration ({where_train}): {verdict.acc_train:.4f}",
        f"Accuracy under the reference solve ({where_ref}): {verdict.acc_ref:.4f}",
        f"ode_gap = acc_train - acc_ref = {verdict.ode_gap:.4f}",
        "Solver grid:",
        grid,
        f"Verdict: {verdict.verdict}",
    ])


def assert_is_ode(model, test_data, *, max_gap: float = DEFAULT_MAX_GAP,
                  grid: list[dict[str, Any]] | None = None, train: dict[str, Any] | None = None,
                  reference: dict[str, Any] | None = None, batch_size: int = 1000,
                  device: str = "cpu", **kwargs: Any) -> BenchmarkResult:
    """Raise ``AssertionError`` with the evidence (module docstring) unless
    ``|ode_gap| <= max_gap``; the other arguments are :func:`~robustbench_ode.benchmark`'s
    (``diagnostics`` off by default: the gap decides). Returns the benchmark result."""
    max_gap = check_max_gap(max_gap)
    kwargs.setdefault("diagnostics", False)
    result = benchmark(model, test_data, grid, train=train, reference=reference,
                       batch_size=batch_size, device=device, **kwargs)
    verdict = ode_verdict(result.summary, max_gap)
    if not verdict.is_ode:
        raise AssertionError(evidence(result, verdict))
    return result
