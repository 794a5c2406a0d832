"""Bring your own model: the robustness verdict for a model trained outside this package.

Two kinds of model are accepted:

- **a plain torchdiffeq model**, whose ``forward(x)`` calls ``torchdiffeq.odeint`` (or
  ``odeint_adjoint``) and returns logits, unmodified: it is tested under solver substitution
  (:mod:`robustbench_ode.harness.substitution`), every odeint call of its forward pass solved with
  the test configuration; so is a model calling torchode's ``solve_ivp``, where torchode is
  installed. A model with several ODE blocks (several odeint calls per forward pass)
  has each block substituted with the same configuration; ``nfe`` and the step counts are those
  of the whole forward pass (the blocks' counters summed), and drift compares the blocks' final
  states concatenated.
- **a plain density model** (a CNF written FFJORD's way, ``odeint`` on ``(z, delta_logp)``) on
  density data (a density DataSplits, or one tensor of samples): its ``log_prob(x)`` (else its
  forward) gives the rows' ``nll``, its optional ``sample(z)`` the ``energy_distance``, both under
  substitution (:mod:`robustbench_ode.harness.plain_density`; docs/cnf.md, "Plain models").
- **the interface** (:mod:`robustbench_ode.models.interface`): the ODE block in pieces,
  ``input_map`` (``x -> z0``), ``field`` (``f(t, z)``), ``head`` (``z(T) -> logits``), optionally
  ``t_span``; or a package :class:`~robustbench_ode.models.classifier.ODEClassifier` as it is.

A plain model is diagnosed (``diagnostics``) from its solve, captured under the train
configuration (:mod:`robustbench_ode.harness.capture`: its field, initial states, and its own
forward replayed as the head): the same columns as a suite's cell; ``not_computed``, with the
reason, where that solve is not one torchdiffeq solve of a tensor state over ``[t0, T]``.

The summary also has ``ode_gap_lo`` / ``ode_gap_hi``, a 95 % bootstrap interval of ode_gap over
the test set (2000 resamples, :mod:`robustbench_ode.outputs.intervals`), and the deployment
recommendation ``deploy_*``: the cheapest test configuration (fewest NFE) within
``deploy_tolerance`` (default 0.01) of acc_ref (:mod:`robustbench_ode.outputs.summary`).

A model with all three of ``input_map``, ``field`` and ``head`` (or an ODEClassifier) takes the
interface path; any other is a plain torchdiffeq model. Either way it is tested with every
solver configuration of ``grid`` plus its train configuration and the reference solve, exactly as
a suite tests the models it trains (the same grid function, the same evaluation, the same row
builder).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from .config.benchmark import BenchmarkConfig, benchmark_config
from .core.context import resolve
from .core.errors import SuiteError
from .core.files import write_text
from .core.schema import DIAGNOSTICS
from .core.status import Status
from .datasets.base import DataSplits
from .harness.analysis import analyse
from .harness.evaluation import evaluate_points
from .harness.grid import grid_points
from .harness.inference import check_width, inferred_train, is_plain, spec_entry, train_spec
from .harness.rows import identity, result_row
from .models.interface import as_classifier
from .models.spec import SolveSpec
from .outputs.intervals import gap_interval
from .outputs.leaderboard import leaderboard
from .outputs.report import write_report
from .outputs.summary import DEPLOY_TOLERANCE, summarize
from .outputs.tables import frame as table_frame
from .outputs.tables import results_frame, write_csv
from .run.meta import environment, now, write_json
from .run.ownership import WRITER, report_folder
from .run.threads import apply as apply_threads
from .run.threads import budget

# Used when no grid is given: the protocol's fixed-step solvers over a range of steps, and dopri5.
DEFAULT_GRID: list[dict[str, Any]] = [
    {"solver": "euler", "steps": [1, 2, 4, 8, 16, 32, 64]},
    {"solver": "midpoint", "steps": [1, 2, 4, 8, 16, 32, 64]},
    {"solver": "rk4", "steps": [1, 2, 4, 8, 16, 32, 64]},
    {"solver": "dopri5", "tol": [1e-3, 1e-5]},
]


@dataclass
class BenchmarkResult:
    table: pd.DataFrame  # one row per test configuration, the columns of results.csv
    summary: pd.DataFrame  # one row: the robustness metrics (see robustbench_ode.outputs.summary)
    report: Path | None = None  # report.html, when asked for
    train: SolveSpec | None = None  # the train configuration used (given, or inferred)
    inferred: bool = False  # whether ``train`` was read from the model's first odeint call
    # why it breaks (docs/diagnostics.md): the diagnosis' scalars, ``effect`` the verdict
    diagnostics: dict[str, Any] | None = None
    leaderboard: pd.DataFrame | None = None  # several models: ranked per dataset (outputs/leaderboard.py)
    frame: pd.DataFrame | None = None  # diagnostics.csv's row (the diagnosis with the row key)


def _pair(test_data) -> tuple[Any, Any]:
    """``(x, y)`` from a pair of tensors, or from a DataLoader or any iterable of ``(x, y)``
    batches (concatenated: the evaluation batches by ``batch_size`` itself)."""
    if isinstance(test_data, (tuple, list)) and len(test_data) == 2 and not (
            isinstance(test_data[0], (tuple, list)) and len(test_data[0]) == 2):
        return test_data
    try:
        batches = list(iter(test_data))
    except TypeError:
        raise SuiteError(f"test_data: must be a DataSplits, a pair (x, y) of tensors, or a DataLoader "
                         f"or iterable of (x, y) batches, got {type(test_data).__name__}") from None
    if not batches or not all(isinstance(b, (tuple, list)) and len(b) == 2 for b in batches):
        raise SuiteError("test_data: an iterable of batches must yield at least one (x, y) pair, and "
                         "only (x, y) pairs")
    return (torch.cat([torch.as_tensor(b[0]) for b in batches]),
            torch.cat([torch.as_tensor(b[1]) for b in batches]))


def as_data(test_data) -> DataSplits:
    """``test_data`` as a DataSplits whose test split it is (benchmark() and sweep() take it so);
    one tensor of samples (N, D), without labels, is density data."""
    if isinstance(test_data, DataSplits):
        return test_data
    if torch.is_tensor(test_data):  # samples alone, no labels: a density (docs/cnf.md)
        x = test_data.flatten(1).float()
        return DataSplits(x[:0], x.new_zeros(0, 0), x, x.new_zeros(len(x), 0), n_classes=0, task="density")
    x, y = _pair(test_data)
    x, y = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)
    if len(y) == 0 or len(x) != len(y):
        raise SuiteError(f"test_data: need as many labels as inputs, at least one (got {len(x)} "
                         f"inputs, {len(y)} labels)")
    # Only the test split is used; the train split is left empty.
    return DataSplits(x[:0], y[:0], x, y, n_classes=int(y.max()) + 1)


def diagnostics_frame(rows):
    return table_frame(rows, DIAGNOSTICS)


def _diagnosis(net, data: DataSplits, spec: SolveSpec, args: BenchmarkConfig, plain: bool,
               device: str) -> dict[str, Any] | None:
    cfg = args.diagnostics
    if cfg is None or not cfg.enabled:
        return None
    # a plain model: its field, initial states and head captured from its solve (harness/capture.py)
    return analyse(net, data, spec, cfg, args.reference, device, plain=plain)["scalars"]


def benchmark(model: nn.Module, test_data, grid: list[dict[str, Any]] | None = None, *,
              train: dict[str, Any] | None = None, reference: dict[str, Any] | None = None,
              batch_size: int = 1000, max_steps: int = 10_000, device: str = "cpu",
              report: str | Path | None = None, name: str = "custom",
              model_label: str | None = None, diagnostics: dict[str, Any] | bool = True,
              threads: int | None = None, time_limit: float | None = None,
              deploy_tolerance: float = DEPLOY_TOLERANCE) -> BenchmarkResult:
    """Test ``model`` on ``test_data`` with every solver configuration of ``grid``.

    ``model``: a plain torchdiffeq model (``forward(x)`` calls ``torchdiffeq.odeint`` and returns
    logits; tested under solver substitution) or a model with the interface (``input_map``,
    ``field``, ``head``); see the module docstring. ``test_data``: a :class:`DataSplits` (its test
    split) or a pair ``(x, y)`` of tensors. ``grid``: entries as in a suite's ``test`` list
    (``{"solver": "euler", "steps": [4, 8]}``, ``step_factors``, ``tol``, ``tol_factors``,
    ``control``); default :data:`DEFAULT_GRID`.

    ``train``: how the model was trained, ``{"solver": "euler", "steps": 8}`` or
    ``{"solver": "dopri5", "tol": 1e-3}``, validated as a suite's train grid entry (it labels the
    rows and places the factor entries: ``benchmark`` trains nothing). Required for a model with
    the interface. Omitted for a plain torchdiffeq model, it is **inferred from the model's first
    odeint call** (one forward pass on one test sample): its ``method`` mapped to this package's
    solver (torchdiffeq's ``rk4`` is ``rk4_38``, ``heun2`` is ``heun``) with the steps of its
    ``step_size`` over ``t`` (``ceil(span / step_size)``; without step_size, ``len(t) - 1``), or
    for an adaptive method its ``rtol``/``atol`` (torchdiffeq's defaults when not passed). A call
    it cannot read (a ``grid_constructor``, a method this package lacks) is a one-line error
    asking for ``train``. The result's ``train`` and ``inferred`` say what was used.

    ``reference``: ``{"solver", "tol"}``, default dopri5 at 1e-7. ``report``: a directory to write
    results.csv, summary.csv and report.html into: new, empty, or one ``benchmark`` wrote before
    (never a run folder or a folder holding other files). ``model_label``: the ``model`` column
    (default the model's class name). Every argument is validated as the suite setting it stands
    for (:mod:`robustbench_ode.config.benchmark`: ``grid`` as ``test``, ``batch_size`` as
    ``training.eval_batch_size``, ...); bad arguments raise
    :class:`~robustbench_ode.core.errors.SuiteError` with a one-line message naming the argument.
    The model's output must have one logit per class of ``test_data`` (else a SuiteError);
    NaN or inf logits make the test point ``non_finite``. ``time_limit``: seconds per test point,
    checked between batches; a point past it stops with status ``time_limit``. A plain model's
    torchdiffeq functions are restored when ``benchmark`` returns, also when the model raises
    (a model that raises on a test point gets a ``failed`` row).

    ``device``: ``cpu``, ``cuda`` (``cuda:N``) or ``auto`` (CUDA where there is one), resolved once.

    ``diagnostics``: the fold and Windermere diagnostics at the train configuration (``True``, the
    suite defaults; a mapping of a suite's ``diagnostics:`` settings; ``False``: none). The
    verdict is ``result.diagnostics["effect"]`` and a column of ``result.summary`` (a plain model:
    from its captured solve; ``deploy_tolerance``: the module docstring).

    ``model`` may also be a dict ``{label: model}`` (all on ``test_data``) or a list of
    ``(label, model, data)`` (``test_data`` unused): :func:`benchmark_many`.

    ``test_data`` may also be a DataLoader or any iterable of ``(x, y)`` batches (concatenated).
    ``threads``: torch's intra-op threads, set for the process as the command line sets them
    (:func:`robustbench_ode.run.threads.budget`: ``threads``, else ``OMP_NUM_THREADS``, else the
    free cores).
    """
    if isinstance(model, (dict, list)):  # many models, one call
        return benchmark_many(model, test_data, grid, train=train, reference=reference,
                              batch_size=batch_size, max_steps=max_steps, device=device, report=report,
                              name=name, diagnostics=diagnostics, threads=threads, time_limit=time_limit,
                              deploy_tolerance=deploy_tolerance)
    _check_tolerance(deploy_tolerance)
    args = benchmark_config(grid=DEFAULT_GRID if grid is None else grid, reference=reference,
                            diagnostics=diagnostics, batch_size=batch_size, max_steps=max_steps, name=name,
                            model_label=model_label, time_limit=time_limit, deploy_tolerance=deploy_tolerance)
    out = report_folder(report)
    result = _benchmark_one(model, test_data, args, train, device, threads, name)
    if out is not None:
        result.report = _write_outputs(out, result, args, train, result.train, device)
    return result


def _benchmark_one(model: nn.Module, test_data, args: BenchmarkConfig, train: dict[str, Any] | None,
                   device: str, threads: int | None, name: str) -> BenchmarkResult:
    """One model, the arguments validated; ``name`` the dataset column (benchmark_many's
    ``name/<index>``)."""
    apply_threads(budget(1, threads))  # the CLI's thread budget (run/threads.py), process-wide as there
    try:  # once: a bad device is one line; auto is CUDA where there is one
        device = resolve(device).device
    except SuiteError as exc:  # core/context.py words it for the command line
        raise SuiteError(str(exc).replace("--device ", "device=", 1)) from None
    if not isinstance(model, nn.Module):
        raise SuiteError(f"model: a torch.nn.Module (or a dict or list of them), got {type(model).__name__}")
    plain = is_plain(model)
    if train is None and not plain:
        raise SuiteError(f"train: required for a model with input_map, field and head "
                         f"({type(model).__name__}); e.g. train={{'solver': 'euler', 'steps': 4}}")
    spec = train_spec(train, args.max_steps) if train is not None else None
    data = as_data(test_data)
    net = model.to(device) if plain else as_classifier(model).to(device)
    if spec is None:
        spec = inferred_train(net, data, device, args.max_steps)
    check_width(net, data, spec, plain, device)
    points = grid_points(list(args.grid), args.reference, spec, args.max_steps)
    label = args.model_label or type(model).__name__
    ident = identity(f"{name}:{label}", name, label, "default", 0, spec)  # cell: one model's row key
    table, interval = _tested(net, data, points, ident, args, device, plain)
    verdict = _diagnosis(net, data, spec, args, plain, device)
    frame = (diagnostics_frame([{**ident, **verdict}]) if verdict is not None else None)
    summary = summarize(table, frame, tolerance=args.deploy_tolerance, intervals=interval)
    return BenchmarkResult(table, summary, train=spec, inferred=train is None,
                           diagnostics=verdict, frame=frame)


def _check_tolerance(tolerance: Any) -> None:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance <= 1:
        raise SuiteError(f"deploy_tolerance: an accuracy tolerance in [0, 1], got {tolerance!r}")


def _tested(net, data: DataSplits, points, ident: dict[str, Any], args: BenchmarkConfig, device: str,
            plain: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of every test point, and the bootstrap interval of ode_gap over the test set from
    the train and reference points' per-sample correctness (outputs/intervals.py)."""
    paired: list = []
    outcomes = evaluate_points(net, data, points, args.batch_size, device, plain=plain,
                               time_limit=args.time_limit, paired=paired)
    table = results_frame(result_row(ident, p, o, train_status=Status.OK) for p, o in zip(points, outcomes))
    return table, pd.DataFrame([{"cell": ident["cell"], **gap_interval(*paired[0])}])


def _write_outputs(out: Path, result: BenchmarkResult, args: BenchmarkConfig, train: dict[str, Any] | None,
                   spec: SolveSpec, device: str) -> Path:
    """``benchmark(report=DIR)``: the tables, what was asked (suite.yaml), meta.json and the report."""
    suite = {"name": args.name, "train": train if train is not None else spec_entry(spec),
             "train_inferred": train is None, "test": [e.model_dump(exclude_none=True) for e in args.grid]}
    out.mkdir(parents=True, exist_ok=True)
    write_csv(result.table, out / "results.csv")
    if result.frame is not None:
        write_csv(result.frame, out / "diagnostics.csv")
    write_text(out / "suite.yaml", json.dumps(suite, indent=2))
    write_json(out / "meta.json", {"suite": args.name, "writer": WRITER, "started": now(),
                                   **environment(device)})
    return write_report(out)


def benchmark_many(models, test_data, grid=None, *, report: str | Path | None = None,
                   name: str = "custom", train: dict[str, Any] | None = None, device: str = "cpu",
                   threads: int | None = None, **settings: Any) -> BenchmarkResult:
    """Several models in one call: ``{label: model}`` on ``test_data``, or a list of
    ``(label, model, data)``. One table (``model`` the label, ``dataset`` the data's label: ``name``
    for a dict, ``name/<index>`` of each distinct data in a list), one summary (a row per model),
    one report, and the leaderboard across them (:func:`~.outputs.leaderboard.leaderboard`).
    ``settings``: benchmark()'s (``reference``, ``batch_size``, ``max_steps``, ``diagnostics``,
    ``time_limit``), validated once; each label as a ``model_label``."""
    runs = _runs(models, test_data, name)
    given = {"grid": DEFAULT_GRID if grid is None else grid, "name": name, **settings}
    args = [benchmark_config(**given, model_label=label) for label, *_ in runs]
    folder = report_folder(report)
    results = [_benchmark_one(m, data, a, train, device, threads, dataset)
               for a, (label, m, data, dataset) in zip(args, runs)]
    table = pd.concat([r.table for r in results], ignore_index=True)
    summary = pd.concat([r.summary for r in results], ignore_index=True)
    with tempfile.TemporaryDirectory() as tmp:  # leaderboard() reads run folders
        dirs = []
        for i, r in enumerate(results):
            d = Path(tmp) / f"run{i}"
            d.mkdir()
            write_csv(r.table, d / "results.csv")
            dirs.append(d)
        board = leaderboard(dirs).drop(columns=["run"])
    out = BenchmarkResult(table, summary, leaderboard=board)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_csv(table, folder / "results.csv")
        write_csv(board, folder / "leaderboard.csv")
        write_json(folder / "meta.json", {"suite": name, "writer": WRITER, "started": now(),
                                          **environment(device)})
        out.report = write_report(folder)
    return out


def _runs(models, test_data, name: str) -> list[tuple[str, Any, Any, str]]:
    """(label, model, data, dataset column) per model of a dict or a list of triples."""
    if isinstance(models, dict):
        runs = [(str(label), m, test_data, name) for label, m in models.items()]
    else:
        if not all(isinstance(r, (tuple, list)) and len(r) == 3 for r in models):
            raise SuiteError("model: a list must hold (label, model, data) triples")
        seen: list[Any] = []
        runs = []
        for label, m, data in models:
            index = next((i for i, d in enumerate(seen) if d is data), None)
            if index is None:
                seen.append(data)
                index = len(seen) - 1
            runs.append((str(label), m, data, f"{name}/{index}"))
    if not runs or len({r[0] for r in runs}) != len(runs):
        raise SuiteError("model: need at least one model, each with its own label")
    return runs
