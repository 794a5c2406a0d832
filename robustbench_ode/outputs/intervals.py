"""Confidence intervals of ``ode_gap`` (:data:`.summary.INTERVAL_COLUMNS`): a bootstrap over the
test set of the paired per-sample outcomes under the train configuration and the reference solve
(:func:`gap_interval`, ``benchmark()``), and where a train configuration has several seeds a
bootstrap over its seeds of their mean ode_gap (:func:`seed_intervals`, every summary).

``ode_gap`` is the mean over test samples of ``d_i = correct_train_i - correct_ref_i``; the
interval resamples the samples (both outcomes of a sample together, so the pairing is kept) with
scipy's :func:`scipy.stats.bootstrap`: :data:`RESAMPLES` resamples, the percentile interval at
:data:`LEVEL`, a fixed seed (the same table gives the same interval). Percentile rather than BCa:
BCa is undefined when every ``d_i`` is equal (a model with no flip at all), where the percentile
interval is that one value.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import bootstrap

LEVEL = 0.95
RESAMPLES = 2000
SEED = 0


def _percentile(values: np.ndarray, level: float, resamples: int, seed: int) -> tuple[float, float]:
    if np.all(values == values[0]):  # scipy's bootstrap refuses a degenerate sample
        return float(values[0]), float(values[0])
    res = bootstrap((values,), np.mean, n_resamples=resamples, confidence_level=level, method="percentile",
                    rng=np.random.default_rng(seed))
    low, high = res.confidence_interval
    return float(low), float(high)


def seed_intervals(summary, keys: list[str], *, level: float = LEVEL, resamples: int = RESAMPLES,
                   seed: int = SEED):
    """Per group of ``keys`` (one train configuration) with at least two seeds' finite ode_gap:
    ``ode_gap_seeds_lo`` / ``ode_gap_seeds_hi``, the bootstrap interval of the seeds' mean."""
    import pandas as pd

    rows = []
    for key, group in summary.groupby(keys, dropna=False, sort=False):
        gaps = pd.to_numeric(group["ode_gap"], errors="coerce").dropna().to_numpy(dtype=float)
        if len(gaps) >= 2:
            low, high = _percentile(gaps, level, resamples, seed)
            rows.append({**dict(zip(keys, key)), "ode_gap_seeds_lo": low, "ode_gap_seeds_hi": high})
    return pd.DataFrame(rows, columns=[*keys, "ode_gap_seeds_lo", "ode_gap_seeds_hi"])


def gap_interval(train_hits, ref_hits, *, level: float = LEVEL, resamples: int = RESAMPLES,
                 seed: int = SEED) -> dict[str, float]:
    """``{"ode_gap_lo", "ode_gap_hi"}`` from per-sample correctness (bool arrays of one length)
    under the train configuration and the reference; NaN where either is missing or empty."""
    if train_hits is None or ref_hits is None or len(train_hits) == 0 or len(train_hits) != len(ref_hits):
        return {"ode_gap_lo": float("nan"), "ode_gap_hi": float("nan")}
    d = np.asarray(train_hits, dtype=float) - np.asarray(ref_hits, dtype=float)
    low, high = _percentile(d, level, resamples, seed)
    return {"ode_gap_lo": low, "ode_gap_hi": high}
