"""``benchmark()``'s arguments, validated as the suite settings they stand for (the same types,
limits and checks): ``grid`` as a suite's ``test`` list, ``reference`` and ``diagnostics`` as
its sections, ``batch_size`` as ``training.eval_batch_size``, ``max_steps`` as
``training.max_steps``, ``name`` as the suite name, ``model_label`` as a model label. A bad
argument is one line naming it (``benchmark.batch_size: ...``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import SuiteError
from ..core.types import Float, Label, Name
from .messages import format_validation_error
from .strictness import repeated_point
from .suite import MAX_TESTS, DiagnosticsConfig, ReferenceConfig, TestEntry
from .training import Large

Seconds = Annotated[Float, Field(gt=0.0, le=1e6)]


class BenchmarkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    grid: list[TestEntry] = Field(min_length=1, max_length=100)
    reference: ReferenceConfig = ReferenceConfig()
    diagnostics: DiagnosticsConfig | None = DiagnosticsConfig()  # None: no diagnosis
    batch_size: Large = 1000  # the type of training.eval_batch_size
    max_steps: Large = 10_000  # the type of training.max_steps
    name: Name = "custom"
    model_label: Label | None = None
    time_limit: Seconds | None = None  # per test point (harness/evaluation.py Score.over)
    # the deployment recommendation's accuracy tolerance (outputs/summary.py DEPLOY_TOLERANCE)
    deploy_tolerance: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.01

    @field_validator("grid", mode="before")
    @classmethod
    def _entries(cls, v):
        if not isinstance(v, list) or not all(isinstance(e, dict) for e in v):
            raise ValueError(f"a list of test entries such as {{'solver': 'euler', 'steps': [4, 8]}}, got "
                             f"{type(v).__name__}")
        return v

    @field_validator("diagnostics", mode="before")
    @classmethod
    def _switch(cls, v):
        if v is True:
            return {}
        if v is False:
            return None
        if not isinstance(v, dict):
            raise ValueError(f"True, False, or a mapping of a suite's diagnostics: settings, got "
                             f"{type(v).__name__}")
        return v

    @field_validator("reference", mode="before")
    @classmethod
    def _reference(cls, v):
        return {} if v is None else v

    @model_validator(mode="after")
    def _distinct_and_bounded(self):  # as SuiteConfig's test list
        why = repeated_point(self.grid, ("steps", "step_factors", "tol", "tol_factors"), "grid")
        if why:
            raise ValueError(why)
        n_tests = sum(e.size for e in self.grid)
        if n_tests > MAX_TESTS:
            raise ValueError(f"grid: {n_tests} test configurations, at most {MAX_TESTS}")
        return self


def benchmark_config(**arguments: Any) -> BenchmarkConfig:
    """The validated arguments; a SuiteError of one line naming the bad one."""
    try:
        return BenchmarkConfig(**arguments)
    except ValidationError as exc:
        keys = sorted(BenchmarkConfig.model_fields)
        raise SuiteError(format_validation_error(exc, prefix="benchmark", allowed=lambda loc: keys)) from None
