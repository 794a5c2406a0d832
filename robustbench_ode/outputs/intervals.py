"""Confidence intervals of ``ode_gap`` (:data:`.summary.INTERVAL_COLUMNS`): a bootstrap over the
test set of the paired per-sample outcomes under the train configuration and the reference solve.

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


def gap_interval(train_hits, ref_hits, *, level: float = LEVEL, resamples: int = RESAMPLES,
                 seed: int = SEED) -> dict[str, float]:
    """``{"ode_gap_lo", "ode_gap_hi"}`` from per-sample correctness (bool arrays of one length)
    under the train configuration and the reference; NaN where either is missing or empty."""
    if train_hits is None or ref_hits is None or len(train_hits) == 0 or len(train_hits) != len(ref_hits):
        return {"ode_gap_lo": float("nan"), "ode_gap_hi": float("nan")}
    d = np.asarray(train_hits, dtype=float) - np.asarray(ref_hits, dtype=float)
    if np.all(d == d[0]):  # scipy's bootstrap refuses a degenerate sample: every resample is d[0]
        return {"ode_gap_lo": float(d[0]), "ode_gap_hi": float(d[0])}
    res = bootstrap((d,), np.mean, n_resamples=resamples, confidence_level=level, method="percentile",
                    rng=np.random.default_rng(seed))
    low, high = res.confidence_interval
    return {"ode_gap_lo": float(low), "ode_gap_hi": float(high)}
