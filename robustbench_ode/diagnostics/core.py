"""``diagnose``: fold and error-accumulation diagnostics of one model under one train configuration.

Pure functions on plain values: a vector field, initial states, a head, a train configuration and
a reference. How to read every number: docs/diagnostics.md.
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
from .arguments import check_inputs, check_reference, check_train, positive_int
from .pieces import (
    Failed,
    accepted_grid,
    head_classes,
    reference_steps,
    train_jacobians,
    train_points,
    transport,
)
from .verdict import verdict

NOT_COMPUTED = "not_computed"
NAN = float("nan")


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
    (B, M, D), ``global_error`` (B, D) = z_N - z_ref(T).
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


def _share(mask: np.ndarray, among: np.ndarray) -> float:
    return float(mask[among].mean()) if among.any() else NAN


def _median(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else NAN


# --------------------------------------------------------------------------- entry point

SCALAR_KEYS = (
    "diagnostics_status", "diagnostics_message", "effect", "train_config", "reference_config",
    "n_samples", "state_dim", "steps", "transport_blocks", "non_finite_fraction", "ref_failed_fraction",
    "fold_fraction", "fold_step_fraction", "min_log_det", "crossing_fraction", "crossing_pairs",
    "ref_fold_fraction", "ref_min_log_det", "ref_crossing_fraction",
    "flips", "flip_fraction", "flips_at_fold_share", "flips_with_fold_share", "flip_time_median",
    "accuracy_train", "accuracy_ref", "global_error_median", "top1_share_median",
    "topk_share_median", "topk_share_flipped_median", "cancellation_median",
    "cost_s", "cost_train_s", "cost_fold_s", "cost_ref_fold_s", "cost_transport_s",
)


def _empty_scalars() -> dict:
    out = {k: NAN for k in SCALAR_KEYS}
    out.update(diagnostics_status="ok", diagnostics_message="", effect="undetermined",
               train_config="", reference_config="")
    return out


def diagnose(field, z0: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
             y: torch.Tensor | None = None, *, solver: str = "euler", steps: int | None = None,
             tol: float | None = None, reference: str = "dopri5", ref_rtol: float = 1e-7,
             ref_atol: float | None = None, t_span: tuple[float, float] = (0.0, 1.0),
             max_dim: int = 64, max_pairs: int = 20_000, max_transport: int = 256, top_k: int = 3,
             seed: int = 0, max_steps: int = 10_000, chunk: int = 256) -> Diagnosis:
    """Fold and Windermere diagnostics of ``field`` from ``z0`` under the train configuration.

    ``field``: f(t, z) on batched states (B, *state); ``z0``: initial states after the model's
    input map; ``head``: final states -> logits (B, classes); ``y``: labels, for the accuracies.
    Train configuration: ``solver`` with ``steps`` (a fixed grid), or an adaptive ``solver`` with
    ``tol`` (rtol = atol; its accepted step grid on this batch is replayed as fixed steps).
    Reference: an adaptive solver at ``ref_rtol``/``ref_atol`` (default dopri5 at 1e-7), or
    ``'exact'`` for a field with ``exact_flow``. Runs in z0's dtype (give float64 for the
    telescoping checks) under ``torch.no_grad`` (the Jacobians use torch.func, which ignores it).

    Fold diagnostics need a (D x D) Jacobian per sample and step; above ``max_dim`` (flattened
    state size D) they are ``not_computed`` (NaN, with the reason in ``diagnostics_message``) and
    the Windermere decomposition is still computed. ``max_pairs`` caps the crossing pairs (2-D
    states), ``max_transport`` the number of transport blocks, ``top_k`` the concentration figure.
    Bad arguments raise ValueError with a one-line message.
    """
    y, (t0, t1) = check_inputs(field, z0, head, y, t_span)
    train, steps, tol = check_train(solver, steps, tol)
    ref, rtol, atol = check_reference(reference, ref_rtol, ref_atol, field)
    max_dim = positive_int("max_dim", max_dim)
    max_pairs = positive_int("max_pairs", max_pairs)
    max_transport = positive_int("max_transport", max_transport)
    top_k = positive_int("top_k", top_k)
    max_steps = positive_int("max_steps", max_steps)
    chunk = positive_int("chunk", chunk)
    seed = positive_int("seed", seed, 0)

    out = _empty_scalars()
    out["train_config"] = f"{train.name}@{steps}" if steps is not None else f"{train.name}@tol{tol:g}"
    out["reference_config"] = ref.name if rtol is None else f"{ref.name}@rtol{rtol:g},atol{atol:g}"
    b, d = z0.shape[0], jac.state_dim(z0)
    state_shape = tuple(z0.shape[1:])
    out.update(n_samples=float(b), state_dim=float(d))
    start = time.perf_counter()
    try:
        with torch.no_grad(), prepared(field, z0):
            return _diagnose(field, z0, head, y, train, steps, tol, ref, rtol, atol, (t0, t1), max_dim,
                             max_pairs, max_transport, top_k, seed, max_steps, chunk, out,
                             state_shape, start)
    except Failed as exc:
        out.update(diagnostics_status=Status.FAILED.value, diagnostics_message=str(exc),
                   effect="undetermined", cost_s=time.perf_counter() - start)
        return Diagnosis(out, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())


def _diagnose(field, z0, head, y, train, steps, tol, ref, rtol, atol, t_span, max_dim, max_pairs,
              max_transport, top_k, seed, max_steps, chunk, out, state_shape, start) -> Diagnosis:
    t0, t1 = t_span
    b, d = z0.shape[0], jac.state_dim(z0)
    messages = []

    # -- train grid and points
    tic = time.perf_counter()
    if steps is not None:
        h = (t1 - t0) / steps
        starts = [t0 + k * h for k in range(steps)]
        spans = [(a, a + h) for a in starts]  # the same step as the project's loop takes
    else:
        grid_list = accepted_grid(field, z0, train, tol, t_span, max_steps)
        spans = list(zip(grid_list[:-1], grid_list[1:]))
        messages.append(f"tolerance-trained: replayed the {len(spans)} accepted steps of this batch")
    grid = np.array([a for a, _ in spans] + [t1])
    n = len(spans)
    points = train_points(field, z0, train, spans)
    finite = torch.isfinite(points.flatten(1)).all(1).cpu().numpy()
    out.update(steps=float(n), non_finite_fraction=float(1.0 - finite.mean()))
    out["cost_train_s"] = time.perf_counter() - tic

    # -- fold diagnostics (train map and reference flow on the same grid)
    folds_computed = d <= max_dim
    sign = logdet = ref_sign = ref_logdet = None
    ref_points = None
    if folds_computed:
        tic = time.perf_counter()
        jt = train_jacobians(field, points, state_shape, train, spans, chunk)
        sign, logdet = jac.slogdet(jt.reshape(b * n, d, d))
        sign, logdet = sign.reshape(b, n).cpu().numpy(), logdet.reshape(b, n).cpu().numpy()
        out["cost_fold_s"] = time.perf_counter() - tic
        tic = time.perf_counter()
        ref_points, jr = reference_steps(field, z0, ref, rtol, atol, spans, max_steps, chunk)
        ref_sign, ref_logdet = jac.slogdet(jr.reshape(b * n, d, d))
        ref_sign = ref_sign.reshape(b, n).cpu().numpy()
        ref_logdet = ref_logdet.reshape(b, n).cpu().numpy()
        out["cost_ref_fold_s"] = time.perf_counter() - tic
        fold = (sign <= 0) & finite[:, None]
        fold_any = fold.any(1)
        ref_ok = torch.isfinite(ref_points.flatten(1)).all(1).cpu().numpy()
        if not ref_ok.all():
            messages.append(f"{int((~ref_ok).sum())} samples whose reference steps failed left out "
                            f"of the ref_ columns")
        out.update(fold_fraction=_share(fold_any, finite),
                   fold_step_fraction=float(fold[finite].mean()) if finite.any() else NAN,
                   min_log_det=float(np.nanmin(logdet[finite])) if finite.any() else NAN,
                   ref_fold_fraction=_share((ref_sign <= 0).any(1), ref_ok),
                   ref_min_log_det=float(np.nanmin(ref_logdet[ref_ok])) if ref_ok.any() else NAN)
        if d == 2:
            fp = points[torch.as_tensor(finite, device=points.device)]
            frac, pairs, sub = cr.crossing_fraction(fp, max_pairs, seed)
            ref_frac, _, _ = cr.crossing_fraction(
                ref_points[torch.as_tensor(ref_ok, device=points.device)], max_pairs, seed)
            out.update(crossing_fraction=frac, crossing_pairs=float(pairs), ref_crossing_fraction=ref_frac)
            if sub:
                messages.append(f"crossing: {pairs} random pairs (seed {seed})")
    else:
        messages.append(f"{NOT_COMPUTED}: fold diagnostics need a {d}x{d} Jacobian per sample and "
                        f"step; state dim {d} > max_dim {max_dim}")
        out["diagnostics_status"] = NOT_COMPUTED

    # -- Windermere decomposition
    tic = time.perf_counter()
    index = wm.transport_indices(n, max_transport)
    if len(index) - 1 < n:
        messages.append(f"transport over {len(index) - 1} blocks of steps (max_transport {max_transport})")
    w = transport(field, points, state_shape, grid, index, ref, rtol, atol, max_steps)
    contrib = w[:, 1:] - w[:, :-1]
    gerr = points[:, -1] - w[:, 0]
    norms = torch.linalg.vector_norm(contrib, dim=2)
    top1, topk, total = wm.concentration(norms, top_k)
    gnorm = torch.linalg.vector_norm(gerr, dim=1)
    classes = head_classes(head, w, state_shape)
    out["cost_transport_s"] = time.perf_counter() - tic
    # used: a finite train solve and a reference transport that finished for this sample
    used = finite & torch.isfinite(w.flatten(1)).all(1).cpu().numpy()
    failed = finite & ~used
    out["ref_failed_fraction"] = _share(failed, finite)

    cls_ref, cls_train = classes[:, 0], classes[:, -1]
    flipped = used & (cls_ref != cls_train)
    block = wm.first_change(classes)
    block = np.where(flipped, block, -1)
    flip_step = np.where(block >= 0, index[np.maximum(block, 0)], -1)
    flip_end = np.where(block >= 0, index[np.maximum(block, 0) + 1], -1)
    if folds_computed:
        fold = (sign <= 0) & finite[:, None]
        at_fold = np.array([bool(fold[i, flip_step[i]:flip_end[i]].any()) if flip_step[i] >= 0 else False
                            for i in range(b)])
        with_fold = fold.any(1)
        out.update(flips_at_fold_share=_share(at_fold, flipped),
                   flips_with_fold_share=_share(with_fold, flipped))
    nflip = int(flipped.sum())
    out.update(transport_blocks=float(len(index) - 1), flips=float(nflip),
               flip_fraction=_share(flipped, used),
               flip_time_median=_median(np.where(flipped, grid[np.maximum(flip_step, 0)], np.nan)))
    if y is not None:
        yy = y.cpu().numpy()
        out.update(accuracy_train=float(((cls_train == yy) & finite).mean()),
                   accuracy_ref=float((cls_ref == yy).mean()))
    g_np = gnorm.cpu().numpy()
    canc = (gnorm / total).cpu().numpy()
    t1_np, tk_np = top1.cpu().numpy(), topk.cpu().numpy()
    out.update(global_error_median=_median(np.where(used, g_np, np.nan)),
               top1_share_median=_median(np.where(used, t1_np, np.nan)),
               topk_share_median=_median(np.where(used, tk_np, np.nan)),
               topk_share_flipped_median=_median(np.where(flipped, tk_np, np.nan)),
               cancellation_median=_median(np.where(used, canc, np.nan)))
    out["effect"] = verdict(out["flip_fraction"], out["flips_at_fold_share"],
                            out["flips_with_fold_share"], folds_computed)
    if not finite.all():
        messages.append(f"{int((~finite).sum())} samples with a non-finite train solve left out")
    if failed.any():
        messages.append(f"{int(failed.sum())} samples whose reference transport failed left out "
                        f"of the decomposition")
    out["diagnostics_message"] = "; ".join(messages)
    out["cost_s"] = time.perf_counter() - start

    # -- tables
    samples = np.arange(b)
    per_sample = pd.DataFrame({
        "sample": samples, "y": y.cpu().numpy() if y is not None else np.full(b, -1),
        "finite": finite, "used": used, "class_ref": cls_ref, "class_train": cls_train, "flipped": flipped,
        "flip_step": flip_step, "flip_step_end": flip_end,
        "flip_time": np.where(flip_step >= 0, grid[np.maximum(flip_step, 0)], np.nan),
        "class_changes": wm.class_changes(classes),
        "global_error_norm": g_np, "sum_contribution_norms": total.cpu().numpy(),
        "cancellation": canc, "top1_share": t1_np, "topk_share": tk_np,
    })
    if folds_computed:
        per_sample["fold_steps"] = ((sign <= 0) & finite[:, None]).sum(1)
        finite_logdet = np.where(np.isnan(logdet), np.inf, logdet)
        per_sample["min_log_det"] = np.where(finite, finite_logdet.min(1), np.nan)
        per_sample["ref_min_log_det"] = ref_logdet.min(1)
        per_sample["flip_at_fold"] = at_fold
    else:
        for col in ("fold_steps", "min_log_det", "ref_min_log_det", "flip_at_fold"):
            per_sample[col] = np.nan
    ss, kk = np.meshgrid(samples, np.arange(n), indexing="ij")
    per_step = pd.DataFrame({"sample": ss.ravel(), "step": kk.ravel(),
                             "t_start": grid[:-1][kk.ravel()], "t_end": grid[1:][kk.ravel()]})
    for col, v in (("det_sign", sign), ("log_det", logdet), ("ref_det_sign", ref_sign),
                   ("ref_log_det", ref_logdet)):
        per_step[col] = v.ravel() if v is not None else np.nan
    per_step["fold"] = (per_step["det_sign"] <= 0) if folds_computed else np.nan
    m = len(index) - 1
    sb, bb = np.meshgrid(samples, np.arange(m), indexing="ij")
    contributions = pd.DataFrame({
        "sample": sb.ravel(), "block": bb.ravel(), "step_start": index[:-1][bb.ravel()],
        "step_end": index[1:][bb.ravel()], "contribution_norm": norms.cpu().numpy().ravel(),
        "class_after": classes[:, 1:].ravel()})
    arrays = {"grid": grid, "train_points": points.cpu().numpy(),
              "ref_points": ref_points.cpu().numpy() if ref_points is not None else None,
              "transport_index": index, "transported": w.cpu().numpy(),
              "contribution": contrib.cpu().numpy(), "global_error": gerr.cpu().numpy()}
    return Diagnosis(out, per_sample, per_step, contributions, arrays)
