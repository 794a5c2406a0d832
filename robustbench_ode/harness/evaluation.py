"""Testing a trained model: one solve configuration on the whole test split (:func:`evaluate`; a
model that calls torchdiffeq itself, under solver substitution: :func:`evaluate_plain`), and
every point of a test grid with the drift between the train configuration and the reference
(:func:`evaluate_points`).

Drift: the mean over test samples of ``||z_train(T) - z_ref(T)|| / ||z_ref(T)||``, where
``z_train`` is the ODE block's final state under the train configuration and ``z_ref`` under the
reference solve. A model that learned an ODE has drift near 0; one that learned the discrete map
(a ResNet) has drift of order 1. It needs the final states, so it is measured here, from the
states the two evaluations keep, and stored on the train-configuration row.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import replace as dataclass_replace
from typing import Any

import torch
import torch.nn.functional as F

from ..core.status import Status
from ..datasets.base import DataSplits
from ..diagnostics.density import sample_energy_distance
from ..models.classifier import ODEClassifier
from ..models.spec import SolveSpec
from ..models.stacked import StackedClassifier
from ..solvers import SolveStats
from .grid import TestPoint
from .plain_density import plain_energy_distance, plain_nll
from .substitution import substituted

# Guards the relative distance against a final state of (near) zero norm.
_EPS = 1e-12


class Score:
    """One test configuration's outcome over the test split, accumulated batch by batch (what every
    evaluation here shares, so their rows mean the same): accuracy and mean loss over every sample
    (the last partial batch counts its own size), NFE and steps per batch solve (mean over
    batches) and the worst status seen. For a regression dataset: ``mse``, the mean squared
    trajectory error over samples, observation times and state dimensions (also the ``loss``),
    and ``accuracy`` NaN. For a density dataset: ``nll``, the mean over samples of the model's
    negative log-likelihood in nats per dimension (the model's ``logits``; also the ``loss``),
    ``bpd`` where the data was quantised (:attr:`DataSplits.bin_log_width`), ``accuracy`` NaN.
    ``keep``: also keep the final states z(T) (flattened, on the CPU), so
    drift needs no second solve."""

    def __init__(self, spec: SolveSpec, data: DataSplits, keep: bool = False) -> None:
        self.spec, self.data = spec, data
        self.regression = data.task == "regression"
        self.density = data.task == "density"
        self.correct, self.loss_sum, self.batches = 0, 0.0, 0
        self.nfe, self.steps, self.acc, self.rej = 0, 0, 0, 0
        self.status, self.message = Status.OK, ""
        self.states: list[torch.Tensor] | None = [] if keep else None
        self.hits: list[torch.Tensor] | None = [] if keep else None  # per-sample correctness
        self.seconds = 0.0

    def add(self, stats: SolveStats, y: torch.Tensor, logits, final) -> bool:
        """One batch: its solve's counters, and (when the solve is ok; ``logits()`` and
        ``final()`` are then called) its scores and the final states kept. Returns whether ok."""
        self.batches += 1
        self.nfe, self.steps = self.nfe + stats.nfe, self.steps + stats.steps
        self.acc, self.rej = self.acc + (stats.accepted or 0), self.rej + (stats.rejected or 0)
        if stats.status is not Status.OK:
            if self.status.combine(stats.status) is not self.status:
                self.status, self.message = stats.status, stats.message
            return False
        out = logits()
        if not bool(torch.isfinite(out).all()):  # a finite solve, a broken head: not a robust model
            self.stop(Status.NON_FINITE, "the model's output (logits) contains NaN or inf")
            return False
        if self.states is not None:
            self.states.append(final().flatten(1).cpu())
        if self.regression:  # summed here, divided by the element count below
            self.loss_sum += float(F.mse_loss(out.double(), y.double(), reduction="sum"))
        elif self.density:  # each sample's NLL per dimension, summed here
            self.loss_sum += float(out.double().sum())
        else:
            hit = out.argmax(-1) == y
            self.correct += int(hit.sum())
            if self.hits is not None:
                self.hits.append(hit.cpu())
            self.loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
        return True

    def stop(self, status: Status, message: str) -> None:
        """Record an outcome found outside the solve (the output, the time limit): kept if worse."""
        if self.status.combine(status) is not self.status:
            self.status, self.message = status, message

    def over(self, time_limit: float | None) -> bool:
        """Whether the point has run past ``time_limit`` seconds (checked between batches: a batch
        that started is finished); if so its status says so and no further batch is evaluated."""
        if time_limit is None or self.seconds <= time_limit:
            return False
        self.stop(Status.TIME_LIMIT, f"stopped after {self.batches} batch(es), {self.seconds:.3g} s: over "
                                     f"the time limit of {time_limit:g} s per test point")
        return True

    def final_states(self) -> torch.Tensor | None:
        return torch.cat(self.states) if self.status is Status.OK and self.states else None

    def sample_hits(self) -> torch.Tensor | None:
        """Kept classification scores: each test sample's correctness (None if any batch failed)."""
        return torch.cat(self.hits) if self.status is Status.OK and self.hits else None

    def row(self) -> dict[str, Any]:
        data, n = self.data, len(self.data.y_test)
        ok, batches = self.status is Status.OK, max(self.batches, 1)
        if self.regression:
            mse = self.loss_sum / data.y_test.numel() if ok else float("nan")
            scores = {"accuracy": float("nan"), "mse": mse, "loss": mse}
        elif self.density:
            nll = self.loss_sum / n if ok else float("nan")
            width = data.bin_log_width
            bpd = (nll - width) / math.log(2) if width is not None else None
            scores = {"accuracy": float("nan"), "nll": nll, "bpd": bpd, "loss": nll}
        else:
            scores = {"accuracy": self.correct / n if ok else float("nan"),
                      "loss": self.loss_sum / n if ok else float("nan"),
                      "chance": float(torch.bincount(data.y_test).max()) / n if n else float("nan")}
        adaptive = self.spec.adaptive
        return {**scores, "nfe": self.nfe / batches, "steps_taken": self.steps / batches,
                "accepted": self.acc / batches if adaptive else None,
                "rejected": self.rej / batches if adaptive else None,
                "status": self.status.value, "message": self.message, "n_test": n,
                "eval_seconds": round(self.seconds, 4)}


def _batches(data: DataSplits, batch_size: int, device: str):
    """(model input, targets) per batch of the test split, moved to ``device`` and prepared."""
    for start in range(0, len(data.y_test), batch_size):
        x = data.prepare(data.x_test[start:start + batch_size].to(device, non_blocking=True))
        yield x, data.y_test[start:start + batch_size].to(device, non_blocking=True)


Tick = Callable[[float], None]  # told the test rows just evaluated (fractions: one batch of a row)


def _no_tick(rows: float) -> None:
    pass


def _share(data: DataSplits, batch_size: int) -> float:
    """The part of a test row one test batch is."""
    return 1.0 / max(1, math.ceil(len(data.y_test) / batch_size))


def _keep(score: Score, states: list[torch.Tensor] | None) -> None:
    if states is not None:
        z = score.final_states()
        states.extend([z] if z is not None else [])


@torch.no_grad()
def evaluate(model: ODEClassifier, data: DataSplits, spec: SolveSpec, batch_size: int,
             device: str = "cpu", states: list[torch.Tensor] | None = None) -> dict[str, Any]:
    """One test configuration over the test split (see :class:`Score`). ``states``: if given, the
    final states of every test sample are appended to it; left empty if any batch failed."""
    model.eval()
    score = Score(spec, data, keep=states is not None)
    t0 = time.perf_counter()
    for x, y in _batches(data, batch_size, device):
        z, stats = model.final_state(x, spec)
        score.add(stats, y, lambda z=z: model.logits(z), lambda z=z: z)
    score.seconds = time.perf_counter() - t0
    _keep(score, states)
    return score.row()


@torch.no_grad()
def evaluate_plain(model: torch.nn.Module, data: DataSplits, spec: SolveSpec, batch_size: int,
                   device: str = "cpu", states: list[torch.Tensor] | None = None, *,
                   strict: bool = False, time_limit: float | None = None,
                   hits: list[torch.Tensor] | None = None) -> dict[str, Any]:
    """:func:`evaluate` for a model that calls torchdiffeq itself: ``model(x) -> logits`` run
    under :func:`~.substitution.substituted` with ``spec``, batch by batch. The row has the same
    keys and meaning; ``nfe``/``steps_taken`` are per batch forward pass, the counters of all its
    odeint calls summed (several ODE blocks: the cost of the whole forward pass). ``states``:
    each batch's :meth:`~.substitution.SubstitutionProbe.drift_states` (z(T) for one block, the
    blocks' concatenated for several); ``hits``: each sample's correctness. The model must make
    at least one odeint call per batch and return one tensor, else ValueError / TypeError.
    ``time_limit``: see :meth:`Score.over`. Density data: the model's log-likelihood
    (:func:`~.plain_density.plain_nll`) stands for the logits."""
    model.eval()
    score = Score(spec, data, keep=states is not None)
    t0 = time.perf_counter()
    with substituted(spec, strict=strict) as probe:
        for x, y in _batches(data, batch_size, device):
            score.seconds = time.perf_counter() - t0
            if score.over(time_limit):
                break
            probe.reset()
            logits = plain_nll(model, x) if score.density else model(x)
            if probe.n_calls == 0:
                raise ValueError(f"{type(model).__name__} made no torchdiffeq odeint call in forward "
                                 "(nor a torchode solve_ivp call): nothing to substitute")
            if not torch.is_tensor(logits):
                raise TypeError(f"{type(model).__name__}(x) returned {type(logits).__name__}: a plain "
                                "torchdiffeq model must return one tensor of logits")
            score.add(probe.stats, y, lambda out=logits: out, probe.drift_states)
    score.seconds = time.perf_counter() - t0
    _keep(score, states)
    if hits is not None and score.sample_hits() is not None:
        hits.append(score.sample_hits())
    return score.row()


def relative_distance(z: torch.Tensor, z_ref: torch.Tensor) -> float:
    """Mean over rows of ``||z - z_ref|| / ||z_ref||`` (rows flattened)."""
    z, z_ref = z.flatten(1).double(), z_ref.flatten(1).double()
    dist = (z - z_ref).norm(dim=1) / z_ref.norm(dim=1).clamp_min(_EPS)
    return float(dist.mean())


def drift_between(z: torch.Tensor | None, z_ref: torch.Tensor | None) -> float:
    """The drift from final states already computed; NaN when either is missing."""
    if z is None or z_ref is None:
        return float("nan")
    return relative_distance(z, z_ref)


@torch.no_grad()
def evaluate_points(model: torch.nn.Module, data: DataSplits, points: list[TestPoint], batch_size: int,
                    device: str = "cpu", *, plain: bool = False,
                    tick: Tick | None = None, time_limit: float | None = None,
                    paired: list | None = None) -> list[dict[str, Any] | Exception]:
    """Each test point evaluated, one data pass for all of them (each batch is loaded and
    prepared once and solved at every point; ``plain``: a model that calls torchdiffeq itself,
    point by point with :func:`evaluate_plain`); the train point's row also gets the drift to the
    reference point, from the states the two evaluations kept. A point whose evaluation raises
    gets the exception in place of its row. ``tick``: told the rows done, a row's share per batch
    (the progress display's test bar). ``time_limit``: seconds per point, checked between
    batches (:meth:`Score.over`): a point past it stops with status ``time_limit``. ``paired``:
    appended with the per-sample correctness at the train point and at the reference point
    (``(train, reference)``, None where missing), for the bootstrap of ode_gap
    (outputs/intervals.py)."""
    scores = [Score(p.spec, data, keep=p.is_train or p.is_reference) for p in points]
    errors: dict[int, Exception] = {}
    share = _share(data, batch_size)
    tick = tick or _no_tick
    if plain:
        for i, (point, score) in enumerate(zip(points, scores)):
            keep, hits = ([], []) if score.states is not None else (None, None)
            try:
                row = evaluate_plain(model, data, point.spec, batch_size, device, states=keep,
                                     time_limit=time_limit, hits=hits)
            except Exception as exc:  # noqa: BLE001 - the caller turns it into a status
                errors[i] = exc
                continue
            finally:
                tick(1.0)
            scores[i] = _Done(row, torch.cat(keep) if keep else None, hits[0] if hits else None)
        rows = _paired(points, scores, errors, paired)
        if data.task == "density":
            _with_samples(model, data, points, rows, device, plain=True)
        return rows
    model.eval()
    for x, y in _batches(data, batch_size, device):
        for i, (point, score) in enumerate(zip(points, scores)):
            if i in errors or score.status is Status.TIME_LIMIT or score.over(time_limit):
                tick(share)  # the bar counts the point's batches whether or not they are solved
                continue
            t0 = time.perf_counter()
            try:
                z, stats = model.final_state(x, point.spec)
                score.add(stats, y, lambda z=z: model.logits(z), lambda z=z: z)
            except Exception as exc:  # noqa: BLE001 - the caller turns it into a status
                errors[i] = exc
            score.seconds += time.perf_counter() - t0
            tick(share)
    rows = _paired(points, scores, errors, paired)
    if data.task == "density" and hasattr(model, "sample"):
        _with_samples(model, data, points, rows, device)
    return rows


def _paired(points: list[TestPoint], scores: list, errors: dict[int, Exception], paired: list | None) -> list:
    """The rows (:func:`_rows`), and into ``paired`` the train and reference points' hits."""
    if paired is not None:
        def hits(flag: str):
            i = next((i for i, p in enumerate(points) if getattr(p, flag) and i not in errors), None)
            return scores[i].sample_hits() if i is not None else None
        paired.append((hits("is_train"), hits("is_reference")))
    return _rows(points, scores, errors)


# The sample count of the energy distance: its O(n^2) pair distances stay cheap at this size.
SAMPLES = 1000
SAMPLE_SEED = 0  # the same base draws at every test configuration (common random numbers)


def _with_samples(model, data: DataSplits, points: list[TestPoint], rows: list, device: str,
                  plain: bool = False) -> None:
    """Each ok density row's ``energy_distance``: :data:`SAMPLES` samples of the flow solved back
    from the base under the row's own solve, against as many held-out test samples (prepared as
    the model sees them); NaN when the sampling solve failed. A flow that is a density only under
    its train solver shows it here as a distance that grows under accurate solves. ``plain``: a
    plain flow's ``sample(z)`` under substitution (:func:`~.plain_density.plain_energy_distance`;
    NaN without one)."""
    held_out = data.prepare(data.x_test[:SAMPLES].to(device)).flatten(1)
    for point, row in zip(points, rows):
        if isinstance(row, dict) and row.get("status") == Status.OK.value and len(held_out) > 1:
            if plain:
                row["energy_distance"] = plain_energy_distance(model, point.spec, held_out,
                                                               seed=SAMPLE_SEED, device=device)
            else:
                row["energy_distance"], _ = sample_energy_distance(model, point.spec, held_out,
                                                                   seed=SAMPLE_SEED, device=device)


class _Done:
    """A point already evaluated as a whole (the plain path): its row and kept final states."""

    def __init__(self, row: dict[str, Any], states: torch.Tensor | None, hits: torch.Tensor | None) -> None:
        self._row, self._states, self._hits = row, states, hits

    def row(self) -> dict[str, Any]:
        return self._row

    def final_states(self) -> torch.Tensor | None:
        return self._states

    def sample_hits(self) -> torch.Tensor | None:
        return self._hits


def _rows(points: list[TestPoint], scores: list, errors: dict[int, Exception]) -> list:
    rows: list = [errors.get(i) or s.row() for i, s in enumerate(scores)]
    train = next((i for i, p in enumerate(points) if p.is_train and i not in errors), None)
    ref = next((i for i, p in enumerate(points) if p.is_reference and i not in errors), None)
    if train is not None and ref is not None:
        rows[train]["drift"] = drift_between(scores[train].final_states(), scores[ref].final_states())
    return rows


@torch.no_grad()
def evaluate_stacked(models: list[torch.nn.Module], datas: list[DataSplits], points: list[TestPoint],
                     batch_size: int, device: str = "cpu",
                     tick: Tick | None = None) -> list[list[dict[str, Any] | Exception]]:
    """The rows of several seeds' models (one configuration, one grid) at once: the fixed-step
    points of all seeds as one stacked model (one batched solve per batch instead of one per
    seed), the adaptive and gridless ones seed by seed (their step control would see all seeds'
    errors at once, which changes what it does). Each seed's rows equal its own
    :func:`evaluate_points` up to float rounding (tests/test_fast_paths.py). ``tick``: as
    :func:`evaluate_points`'s, every seed's rows counted."""
    n = len(models)
    share, tick = _share(datas[0], batch_size), tick or _no_tick
    fixed = [i for i, p in enumerate(points) if p.spec.steps is not None]
    rest = [i for i in range(len(points)) if i not in fixed]
    scores = [[Score(p.spec, d, keep=p.is_train or p.is_reference) for p in points] for d in datas]
    errors: list[dict[int, Exception]] = [{} for _ in models]
    if fixed:
        stack = StackedClassifier(models).to(device).eval()
        for batch in zip(*(_batches(d, batch_size, device) for d in datas)):
            x = torch.stack([b[0] for b in batch])
            for i in fixed:
                t0 = time.perf_counter()
                try:
                    z, stats, finite = stack.final_state(x, points[i].spec)
                    for m, ok in enumerate(finite.tolist()):
                        status = stats.status if ok else Status.NON_FINITE
                        member = dataclass_replace(stats, status=status)
                        head = functools.partial(stack.member_logits, z[m], m)
                        scores[m][i].add(member, batch[m][1], head, functools.partial(z.__getitem__, m))
                except Exception as exc:  # noqa: BLE001 - the caller turns it into a status
                    for m in range(n):
                        errors[m][i] = exc
                for m in range(n):
                    scores[m][i].seconds += (time.perf_counter() - t0) / n
                tick(n * share)
    for m, (model, data) in enumerate(zip(models, datas)):
        if rest:
            model.eval()
            for x, y in _batches(data, batch_size, device):
                for i in rest:
                    t0 = time.perf_counter()
                    try:
                        z, stats = model.final_state(x, points[i].spec)
                        scores[m][i].add(stats, y, lambda z=z, model=model: model.logits(z), lambda z=z: z)
                    except Exception as exc:  # noqa: BLE001
                        errors[m][i] = exc
                    scores[m][i].seconds += time.perf_counter() - t0
                    tick(share)
    return [_rows(points, scores[m], errors[m]) for m in range(n)]
