"""Suite files validated into frozen, typed configs.

A suite is the product of its axes: dataset x model x training x (train solver, steps or tol)
x seed, each trained model tested on the suite's test grid. Unknown keys and out-of-range values
are errors naming the key path (:class:`~robustbench_ode.core.errors.SuiteError`, one line).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator

from ..core.errors import SuiteError
from ..core.files import show_path
from ..core.preview import preview
from ..core.registry import UnknownNameError
from ..core.types import Bool, Factor, Name, Seed, Steps, Tol, unique_list
from ..datasets import DATASETS
from ..models import MODELS
from ..solvers import SOLVERS
from .entries import DatasetConfig, ModelConfig
from .loader import load_yaml_text
from .messages import format_validation_error, loc_text
from .overrides import apply_overrides, overridden_text
from .strictness import coerced, repeated_point
from .training import TrainingConfig

MAX_CELLS, MAX_TESTS = 10_000, 1_000


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SolverEntry(_Frozen):
    solver: str = Field(max_length=200)

    @field_validator("solver")
    @classmethod
    def _known(cls, v: str) -> str:
        return _runnable_solver(v)


def _runnable_solver(name: str) -> str:
    """A registered solver whose backend is installed here (looked up, not imported)."""
    if name not in SOLVERS:
        raise ValueError(SOLVERS.unknown_message(name))
    why = SOLVERS.get(name).missing()
    if why is not None:
        raise ValueError(why)
    return name


class TrainEntry(_SolverEntry):
    """One train solver with the step counts (fixed-step) or tolerances (adaptive) to sweep."""

    steps: unique_list(Steps) | None = None
    tol: unique_list(Tol) | None = None

    @model_validator(mode="after")
    def _one_of(self):
        solver = SOLVERS.get(self.solver)
        if solver.gridless:
            raise ValueError(f"solver {self.solver!r} is a test reference only, not a train solver")
        if (self.steps is None) == (self.tol is None):
            raise ValueError("give exactly one of steps, tol")
        if self.tol is not None and not solver.adaptive:
            raise ValueError(f"solver {self.solver!r} is fixed-step: give steps, not tol")
        return self


class TrainGrid(_Frozen):
    seeds: unique_list(Seed, max_length=10_000) = [0]
    grid: list[TrainEntry] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _distinct_points(self):  # strictness.py: no train configuration twice
        why = repeated_point(self.grid, ("steps", "tol"), "grid")
        if why:
            raise ValueError(why)
        return self


Control = Literal["batch", "per_sample"]


class TestEntry(_SolverEntry):
    """Test one solver at absolute ``steps``, at ``step_factors`` x the train steps, at absolute
    ``tol``, or at ``tol_factors`` x the train tolerance. Factor entries skip cells that have no
    train steps (resp. tolerance). A gridless reference solver (``exact``) is given alone:
    ``{solver: exact}``, one row. ``control``: the step-size control of the entry's adaptive
    solves, ``batch`` (one step for the whole batch; the default, every backend) or
    ``per_sample`` (one step size per sample: solvers whose ``controls`` offer it, torchode's)."""

    __test__ = False  # not a pytest class, despite its name

    steps: unique_list(Steps) | None = None
    step_factors: unique_list(Factor) | None = None
    tol: unique_list(Tol) | None = None
    tol_factors: unique_list(Factor) | None = None
    control: Control = "batch"

    @field_validator("control")
    @classmethod
    def _offered(cls, v: str, info) -> str:
        name = info.data.get("solver")
        if v == "batch" or name is None:
            return v
        solver = SOLVERS.get(name)
        if v not in solver.controls:
            raise ValueError(f"solver {name!r} ({solver.backend}) supports only "
                             f"{' and '.join(solver.controls)} step control, not {v!r}")
        if info.data.get("steps") or info.data.get("step_factors"):
            raise ValueError(f"{v} applies to tolerance entries (tol, tol_factors): a fixed grid "
                             "has no step-size control")
        return v

    @model_validator(mode="after")
    def _one_of(self):
        given = [k for k in ("steps", "step_factors", "tol", "tol_factors") if getattr(self, k)]
        solver = SOLVERS.get(self.solver)
        if solver.gridless:  # e.g. exact: one row, no grid
            if given:
                raise ValueError(f"solver {self.solver!r} takes no {given[0]}: "
                                 f"write {{solver: {self.solver}}}")
            return self
        if len(given) != 1:
            raise ValueError("give exactly one of steps, step_factors, tol, tol_factors")
        if given[0].startswith("tol") and not solver.adaptive:
            raise ValueError(f"solver {self.solver!r} is fixed-step: give steps or step_factors")
        return self

    @property
    def size(self) -> int:
        return len(self.steps or self.step_factors or self.tol or self.tol_factors or [None])


class ReferenceConfig(_Frozen):
    """The reference solve every trained model is also tested with (the robustness metrics'
    "true ODE" answer): an adaptive solver at a tight tolerance."""

    solver: str = "dopri5"
    tol: Tol = 1e-7

    @field_validator("solver")
    @classmethod
    def _adaptive(cls, v: str) -> str:
        _runnable_solver(v)
        if not SOLVERS.get(v).adaptive:
            raise ValueError(f"solver {v!r} is fixed-step: the reference needs an adaptive solver")
        return v


class DiagnosticsConfig(_Frozen):
    """Why a trained model breaks (docs/diagnostics.md): folds of the train solver's one-step map
    and the Windermere decomposition of its global error, on the first ``samples`` test samples,
    against the suite's reference solve. Not part of any cell key: changing these recomputes the
    diagnostics of stored models, never their training."""

    enabled: Bool = True
    samples: Annotated[int, Strict(), Field(gt=0, le=100_000)] = 256
    # fold diagnostics need a (D x D) Jacobian per sample and step: not computed above this state size
    max_dim: Annotated[int, Strict(), Field(gt=0, le=4096)] = 64
    # the Windermere sum's terms: one per step up to this many, evenly spaced blocks of steps above
    max_transport: Annotated[int, Strict(), Field(gt=0, le=10_000)] = 128
    # 2-D states: samples whose transported points go into fan.csv (the fan figure)
    fan_samples: Annotated[int, Strict(), Field(ge=0, le=1000)] = 32


AXES = ("dataset", "model", "training")  # each one entry or a list of entries: the grid's product


class SuiteConfig(_Frozen):
    """``dataset``, ``model`` and ``training`` each take one entry or a list; the suite's cells are
    the product of the lists (a model's or training's ``datasets`` narrows its pairs) x train grid
    x seeds."""

    name: Name
    description: str = Field(default="", max_length=2000)
    dataset: list[DatasetConfig] = Field(min_length=1, max_length=100)
    model: list[ModelConfig] = Field(min_length=1, max_length=100)
    training: list[TrainingConfig] = Field(default=[TrainingConfig()], min_length=1, max_length=100)
    train: TrainGrid
    test: list[TestEntry] = Field(min_length=1, max_length=100)
    reference: ReferenceConfig = ReferenceConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()

    @field_validator(*AXES, mode="before")
    @classmethod
    def _one_or_list(cls, v):
        return [v] if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _distinct_tests(self):  # strictness.py: no test configuration twice
        why = repeated_point(self.test, ("steps", "step_factors", "tol", "tol_factors"), "test")
        if why:
            raise ValueError(why)
        return self

    @model_validator(mode="after")
    def _distinct_names(self):
        for axis in AXES:
            names = [e.display for e in getattr(self, axis)]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{axis}: {len(names)} entries, {twice[0]!r} names more than one: "
                                 f"give each a distinct label")
        known = [d.display for d in self.dataset]
        for axis in ("model", "training"):
            for i, entry in enumerate(getattr(self, axis)):
                for d in entry.datasets or []:
                    if d not in known:
                        raise ValueError(f"{axis}.{i}.datasets: unknown dataset {preview(d, 40)} "
                                         f"(this suite's: {', '.join(known)})")
        if not self.pairs():
            raise ValueError("model.datasets / training.datasets: no dataset is left with both a "
                             "model and a training")
        return self

    def pairs(self) -> list[tuple[DatasetConfig, ModelConfig, TrainingConfig]]:
        """The (dataset, model, training) combinations this suite trains, in file order."""
        return [(d, m, t) for d in self.dataset for m in self.model for t in self.training
                if (m.datasets is None or d.display in m.datasets)
                and (t.datasets is None or d.display in t.datasets)]

    @model_validator(mode="after")
    def _not_absurd(self):
        # every list is bounded on its own, their product is not: a typo can ask for a year of work
        n_cells = len(self.pairs()) * len(self.train.seeds) * sum(
            len(e.steps or e.tol or []) for e in self.train.grid)
        if n_cells > MAX_CELLS:
            raise ValueError(f"train: {n_cells} cells (seeds x grid values), at most {MAX_CELLS}")
        n_tests = sum(e.size for e in self.test)
        if n_tests > MAX_TESTS:
            raise ValueError(f"test: {n_tests} test configurations per cell, at most {MAX_TESTS}")
        return self

    @model_validator(mode="after")
    def _differentiable(self):
        for training in self.training:
            for i, entry in enumerate(self.train.grid if training.gradient == "adjoint" else []):
                solver = SOLVERS.get(entry.solver)
                if not solver.adjoint:  # the solver's metadata: its backend has an adjoint
                    twin = " (rk4_38 is torchdiffeq's rk4)" if entry.solver == "rk4" else ""
                    raise ValueError(f"training.gradient (train.grid.{i}.solver): adjoint needs a "
                                     f"method torchdiffeq or torchode has; {entry.solver!r} has none{twin}")
        return self

    @model_validator(mode="after")
    def _adaptable(self):
        for training in self.training:
            adaptation = training.adaptation
            for i, entry in enumerate(self.train.grid if adaptation else []):
                why = adaptation.incompatibility(entry.solver)
                if why:
                    raise ValueError(f"training.adaptation.mode (train.grid.{i}): {why}")
        return self


def _check_train_rule(suite: SuiteConfig, single: tuple[str, ...]) -> None:
    """A model may constrain how it is trained (its registry entry's ``train_rule``): the ResNet
    baselines train only as Euler at h = 1/blocks."""
    for i, model in enumerate(suite.model):
        rule = model.info.train_rule if model.info is not None else None
        for training in suite.training if rule is not None else []:
            why = rule(model.params, suite.train.grid, training)
            if why:
                where = "" if "model" in single else f" (model.{i})"
                raise SuiteError(f"{why}{where}")


def _check_task(suite: SuiteConfig, single: tuple[str, ...] = ()) -> None:
    """A classifier on trajectories or a trajectory model on labels cannot run: say so up front,
    for every (dataset, model, training) the suite pairs."""
    for dataset, model, training in suite.pairs():
        i = next(k for k, m in enumerate(suite.model) if m is model)
        where = "model.name" if "model" in single else f"model.{i}.name"
        task, data, name = dataset.task, dataset.display, model.name
        _check_density(task, model.task, training, where, data, name)
        if model.task == "regression" and task != "regression":
            given = [n for n in DATASETS.names() if DATASETS.meta(n).task == "regression"]
            raise SuiteError(f"{where}: model {name!r} fits trajectories; dataset {data!r} is a "
                             f"classification dataset (use a regression dataset: {', '.join(given)})")
        if model.task != "regression" and task == "regression":
            fitting = [n for n in MODELS.names() if MODELS.meta(n).task == "regression"]
            raise SuiteError(f"{where}: model {name!r} is a classifier; dataset {data!r} is a "
                             f"time-series regression dataset (use model {', '.join(map(repr, fitting))})")
        if task == "regression" and training.adaptation is not None:
            raise SuiteError("training.adaptation: adaptation compares accuracies; not available for "
                             f"the regression dataset {data!r}")
        if task == "regression" and training.regularization is not None:
            # its penalties ride along one solve over the whole span, not the interval solves
            raise SuiteError("training.regularization: not available for the regression dataset "
                             f"{data!r}")


def _check_density(task: str, model_task: str, training: TrainingConfig, where: str, data: str,
                   name: str) -> None:
    """A density model (a CNF) fits samples of a density dataset, and nothing else does."""
    if (model_task == "density") == (task == "density"):
        if task == "density" and training.adaptation is not None:
            raise SuiteError("training.adaptation: adaptation compares accuracies; not available for "
                             f"the density dataset {data!r}")
        return
    densities = [n for n in DATASETS.names() if DATASETS.meta(n).task == "density"]
    if model_task == "density":
        raise SuiteError(f"{where}: model {name!r} is a density model (a flow); dataset {data!r} is "
                         f"a {task} dataset (use a density dataset: {', '.join(densities)})")
    fitting = [n for n in MODELS.names() if MODELS.meta(n).task == "density"]
    raise SuiteError(f"{where}: model {name!r} is not a density model; dataset {data!r} is a density "
                     f"dataset (use model {', '.join(map(repr, fitting))})")


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (through Optional, list and Annotated), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def allowed_keys(loc: tuple) -> list[str] | None:
    """The keys allowed in the suite's mapping at ``loc`` (a pydantic error location)."""
    model: type[BaseModel] | None = SuiteConfig
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int) or str(part).isdigit():
            continue  # an index into a list of the current model
        info = model.model_fields.get(str(part))
        model = _model_in(info.annotation) if info is not None else None
    return list(model.model_fields) if model is not None else None  # in declaration order


def parse_suite(data: Any, source: str = "suite") -> SuiteConfig:
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: the suite must be a YAML mapping, got {type(data).__name__}")
    single = tuple(k for k in AXES if isinstance(data.get(k), dict))
    try:
        suite = SuiteConfig.model_validate(data)
        for axis in ("dataset", "model"):
            for i, entry in enumerate(getattr(suite, axis)):
                entry.check_params(axis if axis in single else f"{axis}.{i}")
        _check_train_rule(suite, single)
        _check_task(suite, single)
        _check_nothing_coerced(data, suite)
    except ValidationError as exc:
        raise SuiteError(f"{source}: {format_validation_error(exc, single=single, allowed=allowed_keys)}") \
            from None
    except (SuiteError, UnknownNameError) as exc:
        raise SuiteError(f"{source}: {exc}") from None
    return suite


def _check_nothing_coerced(data: dict, suite: SuiteConfig) -> None:
    """strictness.py: ``true``/``false`` where a number belongs is an error, not 1/0; so is
    ``"4"``, not 4."""
    for kind, dump, what in ((bool, suite.model_dump(), "a boolean"),
                             (str, suite.model_dump(mode="json"), "text")):
        path = coerced(data, dump, kind)
        if path is None:
            continue
        value = data
        for p in path:  # the path indexes the file's data
            value = value[p]
        shown = str(value).lower() if kind is bool else preview(value, 40)
        hint = " (no quotes)" if kind is str else ""
        raise SuiteError(f"{loc_text(path)}: {shown} is {what}; a number belongs here{hint}")


def read_suite(path: str | Path, overrides: Sequence[str] = ()) -> tuple[SuiteConfig, str]:
    """The suite as run and its YAML text: the file at ``path`` (config/loader.py's bounded
    reader, read once) with each ``--set KEY.PATH=VALUE`` of ``overrides`` applied to its mapping
    before validation (:mod:`.overrides`), validated exactly as the file is. The text is the file's
    own without overrides, else the overridden mapping (what a run folder's ``suite.yaml``
    records; the cell keys come from the same mapping)."""
    data, text = load_yaml_text(path)
    if not overrides:
        return parse_suite(data, show_path(path)), text
    data = apply_overrides(data, overrides, show_path(path))
    source = f"{show_path(path)} with --set {', '.join(overrides)}"
    source = source if len(source) <= 160 else source[:157] + "..."
    return parse_suite(data, source), overridden_text(data, show_path(path), overrides)


def load_suite(path: str | Path, overrides: Sequence[str] = ()) -> SuiteConfig:
    return read_suite(path, overrides)[0]
