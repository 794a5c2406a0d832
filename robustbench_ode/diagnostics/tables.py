"""The diagnosis as numbers: the Windermere and flip records, the flip scalars with their
confidence bounds and the verdict, and the per-sample, per-step and per-block tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import windermere as wm
from .folds import FoldTest
from .verdict import Counts, verdict

NAN = float("nan")

FLIP_SCALARS = ("flips", "flip_fraction", "flip_fraction_high", "flips_at_fold_share", "flips_at_fold_low",
                "flips_at_fold_high", "flips_with_fold_share", "flips_concentrated_share",
                "flips_concentrated_high")


@dataclass
class Fan:
    """Lady Windermere's fan of one batch: ``index`` (M + 1,) grid indices of the w's, ``w``
    (B, M + 1, D), ``contribution`` (B, M, D), ``global_error`` (B, D), ``norms`` (B, M) of the
    contributions, ``top1`` (B,) the largest one's share of their sum, ``total`` (B,) the sum,
    ``classes`` (B, M + 1) the head's class of each w, ``used`` (B,) finite train solve and
    transport, ``failed`` (B,) finite train solve whose transport failed."""

    index: np.ndarray
    w: torch.Tensor
    contribution: torch.Tensor
    global_error: torch.Tensor
    norms: torch.Tensor
    top1: np.ndarray
    total: np.ndarray
    classes: np.ndarray
    used: np.ndarray
    failed: np.ndarray


@dataclass
class Flips:
    """Per sample: ``flipped``; the flip block's first and last-plus-one step (``start``, ``end``,
    -1 if not flipped); ``at_fold`` (the map folds at the sample at a step of its flip block) and
    ``with_fold`` (at any step), None without the fold test; ``concentrated`` (flipped, and one
    transported local error carries at least half the sum of their norms)."""

    flipped: np.ndarray
    start: np.ndarray
    end: np.ndarray
    at_fold: np.ndarray | None
    with_fold: np.ndarray | None
    concentrated: np.ndarray


def _share(mask: np.ndarray | None, among: np.ndarray) -> float:
    if mask is None or not among.any():
        return NAN
    return float(mask[among].mean())


def flip_scalars(flips: Flips, used: np.ndarray, exact: bool, folds_computed: bool) -> dict:
    """The flip counts, their shares and one-sided 95 % bounds, and the verdict (``verdict.py``)."""
    n, k = int(used.sum()), int(flips.flipped.sum())
    at = int(flips.at_fold.sum()) if flips.at_fold is not None else 0
    counts = Counts(n=n, flips=k, at_fold=at, concentrated=int(flips.concentrated.sum()), exact=exact)
    fold_low, fold_high = counts.at_fold_bounds() if folds_computed else (NAN, NAN)
    return {"flips": float(k), "flip_fraction": k / n if n else NAN,
            "flip_fraction_high": counts.flip_bounds()[1],
            "flips_at_fold_share": _share(flips.at_fold, flips.flipped),
            "flips_at_fold_low": fold_low, "flips_at_fold_high": fold_high,
            "flips_with_fold_share": _share(flips.with_fold, flips.flipped),
            "flips_concentrated_share": _share(flips.concentrated, flips.flipped),
            "flips_concentrated_high": counts.concentrated_bounds()[1],
            "effect": verdict(counts, folds_computed)}


def tables(y, grid: np.ndarray, finite: np.ndarray, fan: Fan, flips: Flips, folds: FoldTest | None,
           ref_log_det: np.ndarray | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The per-sample, per-step and per-block tables (docs/diagnostics.md lists their columns)."""
    b, n = len(finite), len(grid) - 1
    samples = np.arange(b)
    per_sample = pd.DataFrame({
        "sample": samples, "y": y.cpu().numpy() if y is not None else np.full(b, -1),
        "finite": finite, "used": fan.used, "class_ref": fan.classes[:, 0], "class_train": fan.classes[:, -1],
        "flipped": flips.flipped, "flip_step": flips.start, "flip_step_end": flips.end,
        "flip_time": np.where(flips.start >= 0, grid[np.maximum(flips.start, 0)], np.nan),
        "class_changes": wm.class_changes(fan.classes),
        "global_error_norm": torch.linalg.vector_norm(fan.global_error, dim=1).cpu().numpy(),
        "sum_contribution_norms": fan.total, "top1_share": fan.top1, "concentrated": flips.concentrated,
    })
    per_sample["cancellation"] = per_sample["global_error_norm"] / per_sample["sum_contribution_norms"]
    if folds is not None:
        per_sample["fold_steps"] = folds.own.sum(1)
        per_sample["near_fold_steps"] = folds.near.sum(1)
        per_sample["min_log_det"] = np.where(finite, np.where(np.isnan(folds.log_det), np.inf,
                                                              folds.log_det).min(1), np.nan)
        per_sample["ref_min_log_det"] = ref_log_det.min(1)
        per_sample["flip_at_fold"] = flips.at_fold
    else:
        for col in ("fold_steps", "near_fold_steps", "min_log_det", "ref_min_log_det", "flip_at_fold"):
            per_sample[col] = np.nan
    ss, kk = np.meshgrid(samples, np.arange(n), indexing="ij")
    per_step = pd.DataFrame({"sample": ss.ravel(), "step": kk.ravel(),
                             "t_start": grid[:-1][kk.ravel()], "t_end": grid[1:][kk.ravel()]})
    ref_sign = np.where(np.isfinite(ref_log_det), 1.0, np.nan) if ref_log_det is not None else None
    for col, v in (("det_sign", folds.sign if folds else None), ("log_det", folds.log_det if folds else None),
                   ("ref_det_sign", ref_sign), ("ref_log_det", ref_log_det)):
        per_step[col] = v.ravel() if v is not None else np.nan
    per_step["fold"] = folds.own.ravel() if folds is not None else np.nan
    per_step["near_fold"] = folds.near.ravel() if folds is not None else np.nan
    index = fan.index
    m = len(index) - 1
    sb, bb = np.meshgrid(samples, np.arange(m), indexing="ij")
    contributions = pd.DataFrame({
        "sample": sb.ravel(), "block": bb.ravel(), "step_start": index[:-1][bb.ravel()],
        "step_end": index[1:][bb.ravel()], "contribution_norm": fan.norms.cpu().numpy().ravel(),
        "class_after": fan.classes[:, 1:].ravel()})
    return per_sample, per_step, contributions


def arrays(grid, points, ref_points, fan: Fan, folds: FoldTest | None) -> dict:
    """The vectors behind the tables (``Diagnosis.arrays``)."""
    return {"grid": grid, "train_points": points.cpu().numpy(),
            "ref_points": ref_points.cpu().numpy() if ref_points is not None else None,
            "transport_index": fan.index, "transported": fan.w.cpu().numpy(),
            "contribution": fan.contribution.cpu().numpy(), "global_error": fan.global_error.cpu().numpy(),
            "fold_pairs": folds.pairs if folds is not None else None,
            "fold_segments": folds.segment if folds is not None else None}
