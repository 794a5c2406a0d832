"""A suite's ``dataset:`` and ``model:`` entries: ``{name: X, **params}``, the params validated
against the registered entry's params model (or, for a factory named by import path, against
its signature), with every default filled in so hashes and tables see every setting."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from ..core import imports
from ..core.errors import SuiteError
from ..core.registry import Registry, import_factory, is_import_path
from ..core.types import Label, Seed, unique_list
from ..datasets import DATASETS
from ..models import MODELS
from .messages import format_validation_error
from .training import drop_none


def _signature_params(factory, skip: int) -> type[BaseModel]:
    """A pydantic model of an imported factory's keyword parameters (after its ``skip`` leading ones)."""
    try:
        hints = typing.get_type_hints(factory, include_extras=True)
        parameters = list(inspect.signature(factory).parameters.values())[skip:]
    except (TypeError, ValueError, NameError):
        return create_model("params", __config__=ConfigDict(extra="forbid", frozen=True))
    fields = {p.name: (hints.get(p.name, Any), p.default if p.default is not inspect.Parameter.empty else ...)
              for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return create_model("params", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


class _Named(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(max_length=200)
    _registry: Registry
    _skip: int

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        registry = cls.__private_attributes__["_registry"].default
        if is_import_path(name):  # package.module:factory
            if not imports.is_deferred():  # a stored cell is read without importing anything
                import_factory(name)
            return name
        if name not in registry:
            raise ValueError(registry.unknown_message(name))
        return name

    def params_model(self) -> type[BaseModel]:
        if is_import_path(self.name):
            return _signature_params(import_factory(self.name), self._skip)
        return self._registry.meta(self.name).params

    def check_params(self, path: str) -> None:
        """Validate the params; fill in the defaults. Done once, by :func:`parse_suite`, before
        anything reads the entry."""
        model = self.params_model()
        try:
            validated = model(**self.params)
        except ValidationError as exc:
            keys = sorted(model.model_fields)
            raise SuiteError(format_validation_error(exc, prefix=path, allowed=lambda loc: keys)) from None
        except TypeError as exc:  # a non-string key
            raise SuiteError(f"{path}: {exc}") from None
        self.model_extra.update(validated.model_dump())

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DatasetConfig(_Named):
    _registry = DATASETS
    _skip = 1  # seed
    # Which seed generates the data: the cell's seed (default) or a fixed one for every cell.
    data_seed: Seed | None = None
    # The name in the tables' ``dataset`` column (default: ``name``); needed when a suite lists the
    # same dataset twice with different parameters.
    label: Label | None = None

    @pydantic.model_serializer(mode="wrap")
    def _dump(self, handler):
        return drop_none(handler(self), ("label",))

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def task(self) -> str:
        return "classification" if is_import_path(self.name) else DATASETS.meta(self.name).task

    @property
    def sizes(self) -> tuple[int | None, int | None]:
        """(train, test) samples: the params' ``n_train`` / ``n_test``, else the registry's full
        split sizes; None where neither says (an imported factory)."""
        info = None if is_import_path(self.name) else DATASETS.meta(self.name)
        full = (info.sizes if info is not None else None) or (None, None)
        given = [self.params.get(k) for k in ("n_train", "n_test")]
        return tuple(g if isinstance(g, int) and not isinstance(g, bool) else f
                     for g, f in zip(given, full))

    @property
    def shape(self) -> tuple[int, ...] | None:
        """One sample's shape as the registry declares it; None for an imported factory."""
        return None if is_import_path(self.name) else DATASETS.meta(self.name).shape(self.params)


class ModelConfig(_Named):
    _registry = MODELS
    _skip = 2  # in_shape, n_classes
    # A state_dict file (torch.save): test this trained model on the grid instead of training one.
    checkpoint: str | None = Field(default=None, max_length=4096)
    # The name in the tables' ``model`` column (default: ``name``), e.g. node / anode for two
    # entries of the same family.
    label: Label | None = None
    # Pair this model only with these datasets (their labels or names); default: every dataset.
    datasets: unique_list(Label, max_length=100) | None = None

    @pydantic.model_serializer(mode="wrap")
    def _dump(self, handler):
        return drop_none(handler(self), ("label", "datasets"))

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def info(self):
        """The registry's metadata (models/catalog.py ModelInfo); None for an imported factory."""
        return None if is_import_path(self.name) else MODELS.meta(self.name)

    @property
    def task(self) -> str:
        return self.info.task if self.info is not None else "classification"

    def macs(self, in_shape: tuple[int, ...] | None) -> int | None:
        """Multiply-adds of one field evaluation per sample on ``in_shape`` (models/arithmetic.py);
        None where the family declares none or the shape is unknown."""
        info = self.info
        if info is None or info.macs is None or in_shape is None:
            return None
        return info.macs(self.params, in_shape)
