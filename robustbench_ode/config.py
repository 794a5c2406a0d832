"""Suite files validated into frozen, typed configs.

A suite is the product of its axes: dataset x model x training x (train solver, steps or tol)
x seed, each trained model tested on the suite's test grid. Unknown keys and out-of-range values
are errors naming the key path (:class:`SuiteError`, one line).
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .adaptation import AdaptationConfig
from .datasets import DATASETS
from .factory import import_factory, is_import_path, resolve
from .models import MODELS
from .registry import Registry, UnknownNameError
from .regularization import RegularizationConfig
from .solvers import SOLVERS


class SuiteError(ValueError):
    """A bad suite or option: one line naming the key path and what is allowed."""


PosInt = Annotated[int, Field(gt=0)]
Steps = Annotated[int, Field(gt=0, le=1_000_000)]
Tol = Annotated[float, Field(gt=0.0, lt=1.0)]
Factor = Annotated[float, Field(gt=0.0, le=1e4)]
MAX_CELLS, MAX_TESTS = 10_000, 1_000


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Factory parameters the harness fills in from the data, never the suite (cell.build_model).
PROVIDED = frozenset({"times"})


def _params_model(registry: Registry, name: str, skip: int):
    """A pydantic model of a factory's keyword parameters (after its ``skip`` leading ones and
    those in :data:`PROVIDED`)."""
    factory = resolve(registry, name)
    hints = typing.get_type_hints(factory, include_extras=True)
    fields = {}
    for p in list(inspect.signature(factory).parameters.values())[skip:]:
        if p.name in PROVIDED:
            continue
        ann = hints.get(p.name, Any)
        fields[p.name] = (ann, p.default if p.default is not inspect.Parameter.empty else ...)
    return create_model(f"{name}_params", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


class _Named(BaseModel):
    """``{name: X, **params}``: params are checked against the registered factory's signature."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    _registry: Registry
    _skip: int

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        registry = cls.__private_attributes__["_registry"].default
        if is_import_path(name):  # package.module:factory
            import_factory(name)
            return name
        if name not in registry:
            raise ValueError(registry.unknown_message(name))
        return name

    def check_params(self, path: str) -> None:
        """Validate the params against the factory's signature; fill in the defaults."""
        model = _params_model(self._registry, self.name, self._skip)
        try:
            validated = model(**self.params_given())
        except ValidationError as exc:
            raise SuiteError(format_validation_error(exc, prefix=path)) from None
        # stored with defaults filled in, so hashes and tables see every setting
        self.model_extra.update(validated.model_dump())

    def params_given(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items()}

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]+$", max_length=60)]


def _drop_none(data: dict, keys: tuple[str, ...]) -> dict:
    # Optional naming fields stay out of the dump (and so out of every cell key) until set.
    for k in keys:
        if data.get(k) is None:
            data.pop(k, None)
    return data


class DatasetConfig(_Named):
    _registry = DATASETS
    _skip = 1  # seed
    # Which seed generates the data: the cell's seed (default) or a fixed one for every cell.
    data_seed: int | None = Field(default=None, ge=0)
    # The name in the tables' ``dataset`` column (default: ``name``); needed when a suite lists the
    # same dataset twice with different parameters.
    label: Label | None = None

    @pydantic.model_serializer(mode="wrap")
    def _dump(self, handler):
        return _drop_none(handler(self), ("label",))

    @property
    def display(self) -> str:
        return self.label or self.name


class ModelConfig(_Named):
    _registry = MODELS
    _skip = 2  # in_shape, n_classes
    # A state_dict file (torch.save): test this trained model on the grid instead of training one.
    checkpoint: str | None = None
    # The name in the tables' ``model`` column (default: ``name``), e.g. node / anode for two
    # entries of the same family.
    label: Label | None = None
    # Pair this model only with these datasets (their labels or names); default: every dataset.
    datasets: list[str] | None = Field(default=None, min_length=1)

    @pydantic.model_serializer(mode="wrap")
    def _dump(self, handler):
        return _drop_none(handler(self), ("label", "datasets"))

    @property
    def display(self) -> str:
        return self.label or self.name


class TrainingConfig(_Frozen):
    iterations: Annotated[int, Field(gt=0, le=10_000_000)] = 1000
    batch_size: Annotated[int, Field(gt=0, le=1_000_000)] = 128
    lr: Annotated[float, Field(gt=0.0, le=10.0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    # autograd: backpropagate through the solver's operations; adjoint: torchdiffeq's adjoint ODE
    # (memory independent of the step count, more field evaluations; gradient.py measures both)
    gradient: Literal["autograd", "adjoint"] = "autograd"
    max_steps: Annotated[int, Field(gt=0, le=10_000_000)] = 10_000  # for adaptive solves
    eval_batch_size: Annotated[int, Field(gt=0, le=10_000_000)] = 1000
    # The fast GPU path (acceleration.py); all off by default. Testing always runs in fp32.
    amp: bool = False  # bf16 autocast for the training forward pass
    channels_last: bool = False
    compile: bool = False  # torch.compile the vector field
    # "reduce-overhead" captures the compiled field in CUDA graphs: launch overhead stops dominating
    # small models on a GPU (not measured here: no GPU was available).
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "default"
    # Save model, optimizer and batch-stream state this often (0: never), so a killed run resumes
    # where it stopped. Not part of the cell key: it does not change the result.
    checkpoint_every: Annotated[int, Field(ge=0, le=10_000_000)] = 1000
    # The CPU fast paths (docs/performance.md): models whose factory takes ``fast`` evaluate their
    # field as matrix products, and cells that differ only by seed train together as one stacked
    # model. ``false`` runs the plain path (for debugging); results differ only by float rounding,
    # so it is not part of the cell key.
    fast: bool = True
    # Log the memory autograd keeps for each iteration's backward pass (gradient.py). It costs
    # about a tenth of a small model's CPU iteration (BENCHMARKS.md); not part of the cell key.
    record_memory: bool = True
    adaptation: AdaptationConfig | None = None  # step / tolerance adaptation (adaptation.py)
    # kinetic-energy and Jacobian-Frobenius penalties (regularization.py, Finlay et al. 2020)
    regularization: RegularizationConfig | None = None
    # The name in the tables' ``training`` column when a suite lists several trainings.
    label: Label | None = None
    # Train only these datasets (labels or names) this way; default: every dataset.
    datasets: list[str] | None = Field(default=None, min_length=1)

    @field_validator("gradient", mode="before")
    @classmethod
    def _old_name(cls, v):
        return "autograd" if v == "backprop" else v  # the name suites used before 0.2

    @pydantic.model_serializer(mode="wrap")
    def _drop_unset(self, handler):
        # Unset optional fields stay out of the dump, so every cell key stays what it was before
        # the field existed.
        return _drop_none(handler(self), ("adaptation", "label", "regularization", "datasets"))

    @property
    def display(self) -> str:
        return self.label or "default"


class _SolverEntry(_Frozen):
    solver: str

    @field_validator("solver")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SOLVERS:
            raise ValueError(SOLVERS.unknown_message(v))
        return v


class TrainEntry(_SolverEntry):
    """One train solver with the step counts (fixed-step) or tolerances (adaptive) to sweep."""

    steps: list[Steps] | None = Field(default=None, min_length=1)
    tol: list[Tol] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_of(self):
        adaptive = SOLVERS.get(self.solver).adaptive
        if getattr(SOLVERS.get(self.solver), "gridless", False):
            raise ValueError(f"solver {self.solver!r} is a test reference only, not a train solver")
        if (self.steps is None) == (self.tol is None):
            raise ValueError("give exactly one of steps, tol")
        if self.tol is not None and not adaptive:
            raise ValueError(f"solver {self.solver!r} is fixed-step: give steps, not tol")
        return self


class TrainGrid(_Frozen):
    seeds: list[Annotated[int, Field(ge=0, lt=2**31)]] = Field(default=[0], min_length=1)
    grid: list[TrainEntry] = Field(min_length=1)


class TestEntry(_SolverEntry):
    """Test one solver at absolute ``steps``, at ``step_factors`` x the train steps, at absolute
    ``tol``, or at ``tol_factors`` x the train tolerance. Factor entries skip cells that have no
    train steps (resp. tolerance). A gridless reference solver (``exact``) is given alone:
    ``{solver: exact}``, one row."""

    steps: list[Steps] | None = Field(default=None, min_length=1)
    step_factors: list[Factor] | None = Field(default=None, min_length=1)
    tol: list[Tol] | None = Field(default=None, min_length=1)
    tol_factors: list[Factor] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_of(self):
        given = [k for k in ("steps", "step_factors", "tol", "tol_factors") if getattr(self, k)]
        if getattr(SOLVERS.get(self.solver), "gridless", False):  # e.g. exact: one row, no grid
            if given:
                raise ValueError(f"solver {self.solver!r} takes no {given[0]}: "
                                 f"write {{solver: {self.solver}}}")
            return self
        if len(given) != 1:
            raise ValueError("give exactly one of steps, step_factors, tol, tol_factors")
        if given[0].startswith("tol") and not SOLVERS.get(self.solver).adaptive:
            raise ValueError(f"solver {self.solver!r} is fixed-step: give steps or step_factors")
        return self


class ReferenceConfig(_Frozen):
    """The reference solve every trained model is also tested with (the robustness metrics'
    "true ODE" answer): an adaptive solver at a tight tolerance."""

    solver: str = "dopri5"
    tol: Tol = 1e-7

    @field_validator("solver")
    @classmethod
    def _adaptive(cls, v: str) -> str:
        if v not in SOLVERS:
            raise ValueError(SOLVERS.unknown_message(v))
        if not SOLVERS.get(v).adaptive:
            raise ValueError(f"solver {v!r} is fixed-step: the reference needs an adaptive solver")
        return v


AXES = ("dataset", "model", "training")  # each one entry or a list of entries: the grid's product


class SuiteConfig(_Frozen):
    """``dataset``, ``model`` and ``training`` each take one entry or a list; the suite's cells are
    the product of the lists (a model's or training's ``datasets`` narrows its pairs) x train grid
    x seeds."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)]
    description: str = ""
    dataset: list[DatasetConfig] = Field(min_length=1, max_length=100)
    model: list[ModelConfig] = Field(min_length=1, max_length=100)
    training: list[TrainingConfig] = Field(default=[TrainingConfig()], min_length=1, max_length=100)
    train: TrainGrid
    test: list[TestEntry] = Field(min_length=1)
    reference: ReferenceConfig = ReferenceConfig()

    @field_validator(*AXES, mode="before")
    @classmethod
    def _one_or_list(cls, v):
        return [v] if isinstance(v, dict) else v

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
                        raise ValueError(f"{axis}.{i}.datasets: unknown dataset {d!r} "
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
        n_tests = sum(len(e.steps or e.step_factors or e.tol or e.tol_factors or []) for e in self.test)
        if n_tests > MAX_TESTS:
            raise ValueError(f"test: {n_tests} test configurations per cell, at most {MAX_TESTS}")
        return self

    @model_validator(mode="after")
    def _differentiable(self):
        for training in self.training:
            for i, entry in enumerate(self.train.grid if training.gradient == "adjoint" else []):
                solver = SOLVERS.get(entry.solver)
                if solver.torchdiffeq_method is None:
                    twin = " (rk4_38 is torchdiffeq's rk4)" if entry.solver == "rk4" else ""
                    raise ValueError(f"training.gradient (train.grid.{i}.solver): adjoint needs a "
                                     f"method torchdiffeq has; {entry.solver!r} has none{twin}")
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


def _loc(err: dict) -> str:
    return ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))


def format_validation_error(exc: ValidationError, prefix: str = "",
                            single: tuple[str, ...] = ()) -> str:
    """One line for all of ``exc``'s errors. ``single``: axes the file gave as one mapping, which
    the config holds as a one-entry list: their errors say ``model.name``, not ``model.0.name``."""
    parts = []
    for err in exc.errors():
        if err["loc"][:1] and err["loc"][0] in single and err["loc"][1:2] == (0,):
            err = {**err, "loc": err["loc"][:1] + err["loc"][2:]}
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif "input" in err and err["type"] not in ("value_error",):
            msg = f"{msg} (got {err['input']!r})"[:200]
        loc = ".".join(p for p in (prefix, _loc(err)) if p)
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _check_train_rule(suite: SuiteConfig, single: tuple[str, ...]) -> None:
    """A model factory may constrain how it is trained (``factory.train_rule(params, grid,
    training)`` returns why not, or None): the ResNet baselines train only as Euler at h = 1/blocks."""
    for i, model in enumerate(suite.model):
        rule = getattr(resolve(MODELS, model.name), "train_rule", None)
        for training in suite.training if rule is not None else []:
            why = rule(model.params, suite.train.grid, training)
            if why:
                where = "" if "model" in single else f" (model.{i})"
                raise SuiteError(f"{why}{where}")


def dataset_task(name: str) -> str:
    """``classification`` or ``regression``, read off the factory (no data is generated)."""
    return getattr(resolve(DATASETS, name), "task", "classification")


def fits_trajectories(name: str) -> bool:
    """A model whose factory takes the observation times fits trajectories (models/trajectory.py)."""
    try:
        return "times" in inspect.signature(resolve(MODELS, name)).parameters
    except (TypeError, ValueError):
        return False


def _check_task(suite: SuiteConfig, single: tuple[str, ...] = ()) -> None:
    """A classifier on trajectories or a trajectory model on labels cannot run: say so up front,
    for every (dataset, model, training) the suite pairs."""
    for dataset, model, training in suite.pairs():
        i = next(k for k, m in enumerate(suite.model) if m is model)
        where = "model.name" if "model" in single else f"model.{i}.name"
        task, data, name = dataset_task(dataset.name), dataset.display, model.name
        if fits_trajectories(name) and task != "regression":
            raise SuiteError(f"{where}: model {name!r} fits trajectories; dataset {data!r} is a "
                             "classification dataset (use a time-series dataset: lotka_volterra, "
                             "van_der_pol)")
        if not fits_trajectories(name) and task == "regression":
            raise SuiteError(f"{where}: model {name!r} is a classifier; dataset {data!r} is a "
                             "time-series regression dataset (use model 'trajectory')")
        if task == "regression" and training.adaptation is not None:
            raise SuiteError("training.adaptation: adaptation compares accuracies; not available for "
                             f"the regression dataset {data!r}")
        if task == "regression" and training.regularization is not None:
            # its penalties ride along one solve over the whole span, not the interval solves
            raise SuiteError("training.regularization: not available for the regression dataset "
                             f"{data!r}")


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
    except ValidationError as exc:
        raise SuiteError(f"{source}: {format_validation_error(exc, single=single)}") from None
    except (SuiteError, UnknownNameError) as exc:
        raise SuiteError(f"{source}: {exc}") from None
    return suite


def load_suite(path: str | Path) -> SuiteConfig:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SuiteError(f"{path}: not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not a text file") from None
    return parse_suite(data, str(path))
