"""The diagnosis of one trained model (why it breaks; :mod:`robustbench_ode.diagnostics`), reduced
to what a run keeps: one row of scalars (``diagnostics.csv``), the distribution of the transported
local errors over time (``contributions.csv``) and, for 2-D states, the transported points of a few
samples (``fan.csv``). Computed once per trained model, on its first ``samples`` test samples,
and stored with the cell with the settings it was computed with."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config import DiagnosticsConfig, ReferenceConfig
from ..core.schema import DIAGNOSTIC_NAMES
from ..core.status import Status
from ..datasets.base import DataSplits
from ..diagnostics import METHOD, NOT_COMPUTED, diagnose
from ..models.spec import SolveSpec
from ..models.trajectory import TrajectoryModel
from .capture import CapturedODE, Undiagnosable, captured

TIME_BINS = 16  # contributions.csv: the transported local errors summed over this many time bins
FAN_POINTS = 33  # fan.csv: at most this many transported points per sample (evenly spaced blocks)


def settings(cfg: DiagnosticsConfig, reference: ReferenceConfig) -> dict[str, Any]:
    """What a stored diagnosis was computed with: a different value means it is recomputed. The
    method version is part of it, so a diagnosis made by an earlier method is made again."""
    return {**cfg.model_dump(mode="json"), "reference": reference.model_dump(mode="json"),
            "method": METHOD}


def _record(status: Status, message: str, cfg, reference, train: SolveSpec) -> dict[str, Any]:
    scalars = dict.fromkeys(DIAGNOSTIC_NAMES)
    scalars.update(diagnostics_status=status.value, diagnostics_message=message[:300], effect="undetermined",
                   diagnostics_method=METHOD,
                   train_config=train.label())
    return {"settings": settings(cfg, reference), "scalars": scalars, "contributions": [], "fan": []}


def analyse(model, data: DataSplits, train: SolveSpec, cfg: DiagnosticsConfig, reference: ReferenceConfig,
            device: str = "cpu", *, plain: bool = False) -> dict[str, Any]:
    """The diagnosis record of a trained model at its train configuration ``train``. ``plain``: a
    model that calls torchdiffeq itself, whose ODE is captured under substitution (harness/capture.py);
    otherwise an ODEClassifier's input map, field and head."""
    if isinstance(model, TrajectoryModel) or data.task == "regression":
        why = "a time-series model has no classes to flip"
        return _record(Status.NOT_COMPUTED, why, cfg, reference, train)
    if data.task == "density":  # its discrete map's log-det: diagnostics/discrete_map.py (docs/cnf.md)
        why = "a density model has no classes to flip"
        return _record(Status.NOT_COMPUTED, why, cfg, reference, train)
    n = min(cfg.samples, len(data.y_test))
    x = data.prepare(data.x_test[:n].to(device))
    y = data.y_test[:n].to(device)
    was_training = model.training
    model.eval()
    try:
        ode = _pieces(model, x, train, plain)
        diagnosis = diagnose(ode.field, ode.z0, ode.head, y, solver=train.solver, steps=train.steps,
                             tol=train.rtol if train.steps is None else None, reference=reference.solver,
                             ref_rtol=reference.tol, t_span=ode.t_span, max_dim=cfg.max_dim,
                             max_transport=cfg.max_transport, max_steps=train.max_steps,
                             population=len(data.y_test))
    except Undiagnosable as exc:  # a plain model whose solve is not one field, state and head
        return _record(Status.NOT_COMPUTED, f"{NOT_COMPUTED}: {exc}", cfg, reference, train)
    except Exception as exc:  # noqa: BLE001 - a diagnosis that cannot be made is a status
        status, message = Status.from_exception(exc)
        return _record(Status.FAILED if status is Status.FAILED else status, message, cfg, reference, train)
    finally:
        model.train(was_training)
    scalars = {k: _plain(diagnosis.scalars.get(k)) for k in DIAGNOSTIC_NAMES}
    return {"settings": settings(cfg, reference), "scalars": scalars,
            "contributions": _contributions(diagnosis), "fan": _fan(diagnosis, y, cfg.fan_samples)}


def _pieces(model, x: torch.Tensor, train: SolveSpec, plain: bool) -> CapturedODE:
    """The ODE block in pieces: captured from a plain model's solve, or an ODEClassifier's own."""
    if plain:
        return captured(model, x, train)
    with torch.no_grad():
        z0 = model.input_map(x)
    return CapturedODE(model.block.field, z0, model.block.t_span, model.logits)


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _contributions(diagnosis) -> list[dict[str, Any]]:
    """Per time bin: quantiles over samples of the bin's share of the sample's sum of term norms."""
    c, samples = diagnosis.contributions, diagnosis.per_sample
    grid = np.asarray(diagnosis.arrays.get("grid"))
    if c.empty or grid.size < 2:
        return []
    t0, t1 = float(grid[0]), float(grid[-1])
    mid = (grid[c["step_start"].to_numpy()] + grid[c["step_end"].to_numpy()]) / 2
    bins = np.minimum(((mid - t0) / (t1 - t0) * TIME_BINS).astype(int), TIME_BINS - 1)
    norms = c["contribution_norm"].to_numpy()
    total = c.assign(n=norms).groupby("sample")["n"].transform("sum").to_numpy()
    share = np.where(total > 0, norms / np.where(total > 0, total, 1), np.nan)
    used = set(samples.loc[samples["used"].astype(bool), "sample"])
    flipped = set(samples.loc[samples["flipped"].astype(bool), "sample"])
    per = c.assign(bin=bins, share=share).groupby(["sample", "bin"], as_index=False)["share"].sum()
    per = per[per["sample"].isin(used)]
    rows = []
    for b in range(TIME_BINS):
        part = per[per["bin"] == b]
        if part.empty:
            continue
        q = part["share"].quantile([0.1, 0.5, 0.9]).to_numpy()
        fl = part[part["sample"].isin(flipped)]["share"]
        rows.append({"t": t0 + (b + 0.5) * (t1 - t0) / TIME_BINS, "share_q10": float(q[0]),
                     "share_median": float(q[1]), "share_q90": float(q[2]),
                     "flipped_share_median": float(fl.median()) if len(fl) else None})
    return rows


def _fan(diagnosis, y: torch.Tensor, samples: int) -> list[dict[str, Any]]:
    """2-D states: the transported points w_k of the first ``samples`` samples."""
    w = diagnosis.arrays.get("transported")
    if w is None or w.ndim != 3 or w.shape[2] != 2 or samples == 0:
        return []
    grid, index = diagnosis.arrays["grid"], diagnosis.arrays["transport_index"]
    keep = np.unique(np.linspace(0, w.shape[1] - 1, min(FAN_POINTS, w.shape[1])).round().astype(int))
    flipped = diagnosis.per_sample["flipped"].to_numpy().astype(bool)
    labels = y.cpu().numpy()
    rows = []
    for s in range(min(samples, w.shape[0])):
        for k in keep:
            x, yy = (float(v) for v in w[s, k])
            if not (np.isfinite(x) and np.isfinite(yy)):
                continue
            rows.append({"sample": s, "block": int(k), "t": float(grid[index[k]]), "x": x, "y": yy,
                         "label": int(labels[s]), "flipped": bool(flipped[s])})
    return rows
