"""``diagnose``: fold and error-accumulation diagnostics of one model under one train configuration.

Pure functions on plain values: a vector field, initial states, a head, a train configuration and
a reference. The diagnosis is a composition of named steps, each a function below: the train run,
the fold test of its map, the reference (Liouville), the crossings, the Windermere decomposition,
the flips and the verdict. How to read every number: docs/diagnostics.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np
import pandas as pd
import torch

from ..core.status import Status
from ..models.fields import prepared
from . import crossing as cr
from . import jacobians as jac
from . import windermere as wm
from .arguments import check_inputs, check_reference, check_train, one_line, positive_int
from .folds import FoldTest, fold_test
from .pieces import Failed, accepted_grid, head_classes, reference_steps, train_points, transport
from .tables import FLIP_SCALARS, Fan, Flips, arrays, flip_scalars, tables

NOT_COMPUTED = "not_computed"
METHOD = "fold-map/1"  # the diagnosis method: a stored diagnosis of another method is recomputed
NAN = float("nan")

SCALAR_KEYS = (
    "diagnostics_status", "diagnostics_message", "diagnostics_method", "effect", "train_config",
    "reference_config", "n_samples", "state_dim", "steps", "transport_blocks", "non_finite_fraction",
    "ref_failed_fraction", "fold_fraction", "fold_step_fraction", "min_log_det", "fold_near_fraction",
    "fold_segments", "fold_probes", "fold_segment_fraction", "fold_map_first_step", "fold_map_steps",
    "crossing_fraction", "crossing_pairs", "ref_fold_fraction", "ref_min_log_det",
    "ref_crossing_fraction", *FLIP_SCALARS, "flip_time_median", "accuracy_train", "accuracy_ref",
    "global_error_median", "top1_share_median", "cancellation_median",
    "cost_s", "cost_train_s", "cost_fold_s", "cost_ref_fold_s", "cost_transport_s",
)


@dataclass
class Diagnosis:
    """What :func:`diagnose` returns.

    ``scalars``: one flat dict per model (floats, NaN where not applicable, and strings), ready to
    be one row of a results table. ``per_sample``: one row per sample. ``per_step``: one row per
    sample and train step (fold numbers). ``contributions``: one row per sample and transport block
    (a block is one step unless the step count exceeds ``max_transport``). The arrays keep the
    vectors behind the tables (flattened states, the state's dtype): ``grid`` (N + 1,) times,
    ``train_points`` (B, N + 1, D), ``ref_points`` (B, N + 1, D) or None, ``transport_index``
    (M + 1,) grid indices of the w's, ``transported`` (B, M + 1, D) the w's, ``contribution``
    (B, M, D), ``global_error`` (B, D) = z_N - z_ref(T), ``fold_pairs`` (S, 2) and
    ``fold_segments`` (S, N) the fold test's segments and the steps at which each folds.
    """

    scalars: dict
    per_sample: pd.DataFrame
    per_step: pd.DataFrame
    contributions: pd.DataFrame
    arrays: dict = dc_field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.scalars["diagnostics_status"]

    @property
    def effect(self) -> str:
        return self.scalars["effect"]


@dataclass(frozen=True)
class Request:
    """The validated arguments of one diagnosis."""

    field: Callable
    z0: torch.Tensor
    head: Callable
    y: torch.Tensor | None
    train: object
    steps: int | None
    tol: float | None
    ref: object
    rtol: float | None
    atol: float | None
    t_span: tuple[float, float]
    max_dim: int
    max_pairs: int
    max_transport: int
    seed: int
    max_steps: int
    chunk: int
    reach: float
    per_segment: int
    max_probes: int
    population: int | None

    @property
    def state_shape(self) -> tuple[int, ...]:
        return tuple(self.z0.shape[1:])

    @property
    def folds_computed(self) -> bool:
        return jac.state_dim(self.z0) <= self.max_dim


@dataclass
class TrainRun:
    """The train configuration's grid and points: ``spans`` (one per step), ``grid`` (N + 1,),
    ``points`` (B, N + 1, D), ``finite`` (B,) and the messages collected on the way."""

    spans: list
    grid: np.ndarray
    points: torch.Tensor
    finite: np.ndarray
    messages: list


def _share(mask: np.ndarray, among: np.ndarray) -> float:
    return float(mask[among].mean()) if among.any() else NAN


def _median(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else NAN


def _empty_scalars() -> dict:
    out = {k: NAN for k in SCALAR_KEYS}
    out.update(diagnostics_status="ok", diagnostics_message="", diagnostics_method=METHOD,
               effect="undetermined", train_config="", reference_config="")
    return out


class _Clock:
    """Seconds per named part, into ``cost_<part>_s``."""

    def __init__(self, out: dict) -> None:
        self.out, self.tic = out, time.perf_counter()

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.out[f"cost_{part}_s"] = now - self.tic
        self.tic = now


# --------------------------------------------------------------------------- entry point

def diagnose(field, z0: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
             y: torch.Tensor | None = None, *, solver: str = "euler", steps: int | None = None,
             tol: float | None = None, reference: str = "dopri5", ref_rtol: float = 1e-7,
             ref_atol: float | None = None, t_span: tuple[float, float] = (0.0, 1.0),
             max_dim: int = 64, max_pairs: int = 20_000, max_transport: int = 256, seed: int = 0,
             max_steps: int = 10_000, chunk: int = 256, reach: float = 0.125, per_segment: int = 4,
             max_probes: int = 8192, population: int | None = None) -> Diagnosis:
    """Fold and Windermere diagnostics of ``field`` from ``z0`` under the train configuration.

    ``field``: f(t, z) on batched states (B, *state); ``z0``: initial states after the model's
    input map; ``head``: final states -> logits (B, classes); ``y``: labels, for the accuracies.
    Train configuration: ``solver`` with ``steps`` (a fixed grid), or an adaptive ``solver`` with
    ``tol`` (rtol = atol; its accepted step grid on this batch is replayed as fixed steps).
    Reference: an adaptive solver at ``ref_rtol``/``ref_atol`` (default dopri5 at 1e-7), or
    ``'exact'`` for a field with ``exact_flow``. Runs in z0's dtype (give float64 for the
    telescoping checks) under ``torch.no_grad`` (the Jacobians use torch.func, which ignores it).

    The fold test (``folds.py``) probes the train map on segments from each sample to neighbours
    at every scale up to the ``reach`` share of the samples, ``per_segment`` points each (at most
    ``max_probes``); it needs a (D x D) Jacobian per point and
    step, so above ``max_dim`` (flattened state size D) it is ``not_computed`` (NaN, the reason in
    ``diagnostics_message``) and the Windermere decomposition is still computed. ``max_pairs``
    caps the crossing pairs (2-D states), ``max_transport`` the number of transport blocks.
    ``population``: how many test points the samples stand for; when the used samples are all of
    them the verdict's counts are exact, not estimates. Bad arguments raise ValueError with a
    one-line message.
    """
    y, t_span = check_inputs(field, z0, head, y, t_span)
    train, steps, tol = check_train(solver, steps, tol)
    ref, rtol, atol = check_reference(reference, ref_rtol, ref_atol, field)
    counts = {name: positive_int(name, v) for name, v in (
        ("max_dim", max_dim), ("max_pairs", max_pairs), ("max_transport", max_transport),
        ("max_steps", max_steps), ("chunk", chunk), ("max_probes", max_probes))}
    if isinstance(reach, bool) or not isinstance(reach, (int, float)) or not 0 < reach <= 1:
        raise one_line(f"reach must be a share of the samples in (0, 1], got {reach!r}")
    per_segment, seed = positive_int("per_segment", per_segment, 0), positive_int("seed", seed, 0)
    if population is not None:
        population = positive_int("population", population)
    req = Request(field, z0, head, y, train, steps, tol, ref, rtol, atol, t_span, seed=seed,
                  reach=float(reach), per_segment=per_segment, population=population, **counts)
    out = _empty_scalars()
    out["train_config"] = f"{train.name}@{steps}" if steps is not None else f"{train.name}@tol{tol:g}"
    out["reference_config"] = ref.name if rtol is None else f"{ref.name}@rtol{rtol:g},atol{atol:g}"
    out.update(n_samples=float(z0.shape[0]), state_dim=float(jac.state_dim(z0)))
    start = time.perf_counter()
    try:
        with torch.no_grad(), prepared(field, z0):
            diagnosis = _diagnose(req, out)
    except Failed as exc:
        out.update(diagnostics_status=Status.FAILED.value, diagnostics_message=str(exc),
                   effect="undetermined", cost_s=time.perf_counter() - start)
        return Diagnosis(out, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    out["cost_s"] = time.perf_counter() - start
    return diagnosis


def _diagnose(req: Request, out: dict) -> Diagnosis:
    """The named steps, in order; each fills its part of ``out``."""
    clock = _Clock(out)
    run = train_run(req, out)
    clock.lap("train")
    folds = fold_section(req, run, out)
    clock.lap("fold")
    ref_points, ref_log_det = reference_section(req, run, out)
    clock.lap("ref_fold")
    fan = windermere_section(req, run, out)
    clock.lap("transport")
    flips = flip_section(req, run, fan, folds, out)
    accuracy_section(req, run, fan, out)
    if not run.finite.all():
        run.messages.append(f"{int((~run.finite).sum())} samples with a non-finite train solve left out")
    if fan.failed.any():
        run.messages.append(f"{int(fan.failed.sum())} samples whose reference transport failed left "
                            f"out of the decomposition")
    out["diagnostics_message"] = "; ".join(run.messages)
    per_sample, per_step, contributions = tables(req.y, run.grid, run.finite, fan, flips, folds, ref_log_det)
    return Diagnosis(out, per_sample, per_step, contributions,
                     arrays(run.grid, run.points, ref_points, fan, folds))


# --------------------------------------------------------------------------- the steps

def train_run(req: Request, out: dict) -> TrainRun:
    """The train grid (a fixed one, or a tolerance-controlled solve's accepted steps replayed) and
    the train points z_0 ... z_N on it."""
    t0, t1 = req.t_span
    messages = []
    if req.steps is not None:
        h = (t1 - t0) / req.steps
        spans = [(t0 + k * h, t0 + k * h + h) for k in range(req.steps)]  # the loop's steps
    else:
        grid_list = accepted_grid(req.field, req.z0, req.train, req.tol, req.t_span, req.max_steps)
        spans = list(zip(grid_list[:-1], grid_list[1:]))
        messages.append(f"tolerance-trained: replayed the {len(spans)} accepted steps of this batch")
    grid = np.array([a for a, _ in spans] + [t1])
    points = train_points(req.field, req.z0, req.train, spans)
    finite = torch.isfinite(points.flatten(1)).all(1).cpu().numpy()
    out.update(steps=float(len(spans)), non_finite_fraction=float(1.0 - finite.mean()))
    return TrainRun(spans, grid, points, finite, messages)


def fold_section(req: Request, run: TrainRun, out: dict) -> FoldTest | None:
    """The fold test of the train map (``folds.py``) and its map-level numbers; None above
    ``max_dim``."""
    d = jac.state_dim(req.z0)
    if not req.folds_computed:
        run.messages.append(f"{NOT_COMPUTED}: fold diagnostics need a {d}x{d} Jacobian per sample and "
                            f"step; state dim {d} > max_dim {req.max_dim}")
        out["diagnostics_status"] = NOT_COMPUTED
        return None
    folds = fold_test(req.field, req.z0, run.points, req.train, run.spans, run.finite,
                      reach=req.reach, per_segment=req.per_segment,
                      max_probes=req.max_probes, seed=req.seed, chunk=req.chunk)
    finite = run.finite
    anywhere = folds.near.any(0) | folds.segment.any(0)
    some = finite.any() and folds.own.size
    out.update(fold_fraction=_share(folds.own.any(1), finite),
               fold_step_fraction=float(folds.own[finite].mean()) if finite.any() else NAN,
               min_log_det=float(np.nanmin(folds.log_det[finite])) if some else NAN,
               fold_near_fraction=_share(folds.near.any(1), finite),
               fold_segments=float(len(folds.pairs)), fold_probes=float(folds.probes),
               fold_segment_fraction=float(folds.segment.any(1).mean()) if len(folds.pairs) else NAN,
               fold_map_first_step=float(np.argmax(anywhere)) if anywhere.any() else NAN,
               fold_map_steps=float(anywhere.sum()))
    return folds


def reference_section(req: Request, run: TrainRun, out: dict):
    """The reference trajectory on the train grid and its per-step log det by Liouville's formula
    (so ``ref_fold_fraction`` is 0 wherever the reference finished: a flow's det is exp of a real
    number), and for 2-D states the crossings of train and reference chords."""
    if not req.folds_computed:
        return None, None
    ref_points, ref_log = reference_steps(req.field, req.z0, req.ref, req.rtol, req.atol, run.spans,
                                          req.max_steps, req.chunk)
    ref_log = ref_log.cpu().numpy()
    ref_ok = torch.isfinite(ref_points.flatten(1)).all(1).cpu().numpy()
    if not ref_ok.all():
        run.messages.append(f"{int((~ref_ok).sum())} samples whose reference steps failed left out "
                            f"of the ref_ columns")
    out.update(ref_fold_fraction=_share(np.zeros(len(ref_ok), dtype=bool), ref_ok),
               ref_min_log_det=float(np.nanmin(ref_log[ref_ok])) if ref_ok.any() and ref_log.size else NAN)
    if jac.state_dim(req.z0) == 2:
        dev = run.points.device
        frac, pairs, sub = cr.crossing_fraction(run.points[torch.as_tensor(run.finite, device=dev)],
                                                req.max_pairs, req.seed)
        ref_frac, _, _ = cr.crossing_fraction(ref_points[torch.as_tensor(ref_ok, device=dev)],
                                              req.max_pairs, req.seed)
        out.update(crossing_fraction=frac, crossing_pairs=float(pairs), ref_crossing_fraction=ref_frac)
        if sub:
            run.messages.append(f"crossing: {pairs} random pairs (seed {req.seed})")
    return ref_points, ref_log


def windermere_section(req: Request, run: TrainRun, out: dict) -> Fan:
    """Lady Windermere's fan: the transported points w_k, their differences (the transported local
    errors), their concentration and the head's class of every w_k."""
    n = len(run.spans)
    index = wm.transport_indices(n, req.max_transport)
    if len(index) - 1 < n:
        run.messages.append(f"transport over {len(index) - 1} blocks of steps (max_transport "
                            f"{req.max_transport})")
    w = transport(req.field, run.points, req.state_shape, run.grid, index, req.ref, req.rtol, req.atol,
                  req.max_steps)
    contrib = w[:, 1:] - w[:, :-1]
    norms = torch.linalg.vector_norm(contrib, dim=2)
    top1, total = wm.concentration(norms)
    used = run.finite & torch.isfinite(w.flatten(1)).all(1).cpu().numpy()
    failed = run.finite & ~used
    out["ref_failed_fraction"] = _share(failed, run.finite)
    fan = Fan(index=index, w=w, contribution=contrib, global_error=run.points[:, -1] - w[:, 0],
              norms=norms, top1=top1.cpu().numpy(), total=total.cpu().numpy(),
              classes=head_classes(req.head, w, req.state_shape), used=used, failed=failed)
    g = torch.linalg.vector_norm(fan.global_error, dim=1).cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):  # no error at all: a NaN ratio
        cancellation = g / fan.total
    out.update(transport_blocks=float(len(index) - 1),
               global_error_median=_median(np.where(used, g, np.nan)),
               top1_share_median=_median(np.where(used, fan.top1, np.nan)),
               cancellation_median=_median(np.where(used, cancellation, np.nan)))
    return fan


def flip_section(req: Request, run: TrainRun, fan: Fan, folds: FoldTest | None, out: dict) -> Flips:
    """Which samples flip, at which step, whether the map folds there, and the verdict."""
    cls_ref, cls_train = fan.classes[:, 0], fan.classes[:, -1]
    flipped = fan.used & (cls_ref != cls_train)
    block = np.where(flipped, wm.first_change(fan.classes), -1)
    start = np.where(block >= 0, fan.index[np.maximum(block, 0)], -1)
    end = np.where(block >= 0, fan.index[np.maximum(block, 0) + 1], -1)
    at_fold = with_fold = None
    if folds is not None:
        at_fold = np.array([bool(folds.near[i, start[i]:end[i]].any()) if start[i] >= 0 else False
                            for i in range(len(flipped))])
        with_fold = folds.near.any(1) & flipped
    flips = Flips(flipped=flipped, start=start, end=end, at_fold=at_fold, with_fold=with_fold,
                  concentrated=flipped & (fan.top1 >= 0.5))
    exact = req.population is not None and int(fan.used.sum()) >= req.population
    out.update(flip_scalars(flips, fan.used, exact, folds is not None))
    out["flip_time_median"] = _median(np.where(flipped, run.grid[np.maximum(start, 0)], np.nan))
    return flips


def accuracy_section(req: Request, run: TrainRun, fan: Fan, out: dict) -> None:
    """With labels: the accuracy of the diagnosed samples under each configuration (a non-finite
    train solve counts as wrong)."""
    if req.y is None:
        return
    yy = req.y.cpu().numpy()
    out.update(accuracy_train=float(((fan.classes[:, -1] == yy) & run.finite).mean()),
               accuracy_ref=float((fan.classes[:, 0] == yy).mean()))
