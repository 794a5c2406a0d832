"""Fingerprints of what trains a plain model family's cell (:func:`robustbench_ode.sweep`,
:class:`~.cell.FamilyCell`): the researcher's factory and training function, and their data.

**What a FamilyCell's key covers** (a change to any of them trains the cell again; nothing else does):

- ``factory`` / ``train_fn``: the fingerprint of ``make_model`` and ``train_fn``
  (:func:`code_fingerprint`): module, qualified name and a hash of their source code (of their
  byte code where the source cannot be read), their default arguments and the values of the
  variables they close over (numbers, strings, tensors, ... hashed by value; other objects by
  type), and for a ``functools.partial`` the function and its arguments. **Not** covered: the code
  they call (a model class defined elsewhere, a helper): pass ``key=`` (any JSON value, e.g. a
  version string or the hyperparameters) to key that;
- ``data``: a hash of the training and test data's content (:func:`data_fingerprint`: tensors and
  arrays by their bytes, dtype and shape; a ``DataSplits`` by every field; a DataLoader by its
  dataset's tensors and batch size), per seed where the data is a function of the seed;
- ``solver``, ``steps``, ``seed``, ``max_steps``, ``key`` and the package version.

The labels (``dataset``, ``model``) name the rows; they are part of the key too, so two families
under different labels never share a cell.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
from typing import Any

import numpy as np
import torch

from ..core.errors import SuiteError


def _digest(parts: list[Any]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _value(obj: Any, depth: int = 0) -> Any:
    """A hashable description of a value by content where it has a small one, else by type."""
    if depth > 4:
        return type(obj).__qualname__
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return obj
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        return ("tensor", str(t.dtype), tuple(t.shape), hashlib.sha256(raw).hexdigest())
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return ("array", str(a.dtype), a.shape, hashlib.sha256(a.tobytes()).hexdigest())
    if isinstance(obj, (list, tuple)):
        return tuple(_value(v, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return tuple(sorted((repr(k), _value(v, depth + 1)) for k, v in obj.items()))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return (type(obj).__qualname__, tuple((f.name, _value(getattr(obj, f.name), depth + 1))
                                              for f in dataclasses.fields(obj)))
    if callable(obj) and hasattr(obj, "__code__"):
        return code_fingerprint(obj)
    return type(obj).__qualname__


def code_fingerprint(fn: Any) -> str:
    """``module:qualname@hash`` of a function (module docstring: what the hash covers)."""
    if isinstance(fn, functools.partial):
        return f"partial({code_fingerprint(fn.func)})@" + _digest([_value(fn.args), _value(fn.keywords)])
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn)
    name = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', type(fn).__name__)}"
    try:
        source: Any = inspect.getsource(target)
    except (OSError, TypeError):  # defined at a prompt or compiled: its byte code instead
        code = getattr(getattr(target, "__func__", target), "__code__", None)
        source = (code.co_code, repr(code.co_consts)) if code is not None else name
    func = getattr(target, "__func__", target)
    closure = [c.cell_contents for c in (getattr(func, "__closure__", None) or ())
               if c.cell_contents is not fn]
    return f"{name}@" + _digest([source, _value(getattr(func, "__defaults__", None)),
                                 _value(getattr(func, "__kwdefaults__", None)), _value(closure)])


def _dataset_value(obj: Any) -> Any:
    if isinstance(obj, torch.utils.data.DataLoader):
        return ("loader", obj.batch_size, _dataset_value(obj.dataset))
    if isinstance(obj, torch.utils.data.TensorDataset):
        return ("tensors", _value(obj.tensors))
    if isinstance(obj, torch.utils.data.Dataset) and not isinstance(obj, (list, tuple)):
        raise SuiteError(f"data: cannot fingerprint a {type(obj).__name__} by its content; give "
                         "tensors, a DataSplits or a DataLoader over a TensorDataset, or pass key=")
    return _value(obj)


def data_fingerprint(train_data: Any, test_data: Any) -> str:
    """A hash of the content of the training and test data (module docstring)."""
    return _digest([_dataset_value(train_data), _dataset_value(test_data)])


def key_text(key: Any) -> str:
    """The caller's ``key=`` as canonical JSON (one line naming ``key`` if it is not JSON)."""
    try:
        return "" if key is None else json.dumps(key, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"key: must be a JSON value (a string, number, list or mapping): {exc}") from None
