"""The test grid of one trained model, as a pure function of plain values, and the one identity
of a test point.

:func:`grid_points` is shared by ``run_suite`` (per cell) and ``benchmark()``: the suite's test
entries, the reference solve and the train configuration in; the points to test, the train
configuration first and the reference flagged, out. An adapted cell's factor points follow its
final step count (or tolerance): :func:`grid_points` is called again with ``trained_at`` set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from ..config import ReferenceConfig, TestEntry
from ..models.spec import SolveSpec

PointKey = tuple[str, "int | None", "float | None", "str | None"]


def _given(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v) not in ("<NA>", "")


def point_key(solver: str, steps: Any, tol: Any, control: Any = None) -> PointKey:
    """The identity of a test configuration: (solver, steps, tol, control), steps and tol
    exclusive; control only for tolerance points (batch when not given: rows stored before the
    ``test_control`` column was filled are batch-controlled solves). The same whether it comes
    from a :class:`TestPoint`, a result row or a table read back from CSV (NaN, None and the empty
    string are "not given")."""
    steps = int(steps) if _given(steps) else None
    tol = float(tol) if steps is None and _given(tol) else None
    control = (str(control) if _given(control) else "batch") if tol is not None else None
    return str(solver), steps, tol, control


def row_key(row: dict[str, Any]) -> PointKey:
    return point_key(row["test_solver"], row.get("test_steps"), row.get("test_tol"),
                     row.get("test_control"))


@dataclass(frozen=True)
class TestPoint:
    __test__ = False  # not a pytest class, despite its name

    spec: SolveSpec
    factor: float | None = None  # the step or tol factor it came from, if any
    is_train: bool = False  # the train configuration itself
    is_reference: bool = False  # the reference solve of the robustness metrics

    @property
    def key(self) -> PointKey:
        return point_key(self.spec.solver, self.spec.steps, self.spec.rtol, self.spec.control)

    def columns(self) -> dict[str, Any]:
        """The test-configuration columns of this point's result row."""
        spec = self.spec
        return {"test_solver": spec.solver, "test_steps": spec.steps,
                "test_tol": spec.rtol if spec.steps is None else None,
                "test_control": spec.control if spec.adaptive else None, "test_factor": self.factor,
                "is_train_config": self.is_train, "is_reference": self.is_reference}


def reference_spec(reference: ReferenceConfig, max_steps: int) -> SolveSpec:
    return SolveSpec(reference.solver, rtol=reference.tol, atol=reference.tol, max_steps=max_steps)


def grid_points(entries: list[TestEntry], reference: ReferenceConfig, train: SolveSpec,
                max_steps: int = 10_000) -> list[TestPoint]:
    """The grid resolved for a model trained at ``train`` (its final steps / tolerance if it was
    adapted): the train configuration first, each entry's points in order (two factors that round
    to one step count are tested once), the reference flagged (appended if the grid lacks it)."""
    steps, tol = train.steps, train.rtol
    points = [TestPoint(replace(train, adjoint=False, max_steps=max_steps), None, True)]
    for entry in entries:
        if entry.steps:
            points += [TestPoint(SolveSpec(entry.solver, steps=n, max_steps=max_steps)) for n in entry.steps]
        elif entry.step_factors and steps is not None:
            points += [TestPoint(SolveSpec(entry.solver, steps=max(1, round(f * steps)),
                                           max_steps=max_steps), f) for f in entry.step_factors]
        elif entry.tol:
            points += [TestPoint(SolveSpec(entry.solver, rtol=t, atol=t, max_steps=max_steps,
                                           control=entry.control)) for t in entry.tol]
        elif entry.tol_factors and tol is not None:
            points += [TestPoint(SolveSpec(entry.solver, rtol=f * tol, atol=f * tol, max_steps=max_steps,
                                           control=entry.control), f) for f in entry.tol_factors]
        elif not (entry.steps or entry.step_factors or entry.tol or entry.tol_factors):
            points.append(TestPoint(SolveSpec(entry.solver, max_steps=max_steps)))  # gridless: exact
    seen: set[PointKey] = set()
    unique = []
    for p in points:
        if p.key not in seen:
            seen.add(p.key)
            unique.append(p)
    ref = reference_spec(reference, max_steps)
    ref_key = point_key(ref.solver, ref.steps, ref.rtol, ref.control)
    for i, p in enumerate(unique):
        if p.key == ref_key:
            unique[i] = replace(p, is_reference=True)
            break
    else:
        unique.append(TestPoint(ref, None, False, True))
    return unique
