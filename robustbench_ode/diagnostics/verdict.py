"""The ``effect`` verdict: which of Ott et al.'s two effects explains the flips of a model.

A flip is a sample classified differently under the train configuration than under the reference
solve. Three counts decide, each read through a one-sided 95 % Clopper-Pearson bound so that the
verdict says only what the sample size supports (docs/diagnostics.md, "The verdict"):

- ``flips`` of ``n`` used samples;
- ``at_fold``: flipped samples at which the train map folds *at their flip step*, seen from the map
  (the fold test of ``folds.py``: det <= 0 at the sample or on a probe segment to one of its
  neighbours), not only at the sample itself;
- ``concentrated``: flipped samples whose largest transported local error carries at least half
  the sum of the terms' norms (one step made most of the error: nothing accumulated).

Rule, in this order:

1. ``undetermined`` without a used sample.
2. ``robust``: the flip rate's upper bound is below ``ROBUST_MAX_FLIP`` = 0.02, the tolerance of
   the critical-step rule (``outputs/critical.py``): with 95 % confidence the reference moves
   fewer samples than the accuracy loss that rule allows. With 256 samples: at most 1 flip; 0
   flips need at least 149 samples.
3. ``undetermined``: the fold test was not computed (state above ``max_dim``), or there are fewer
   flips than ``MIN_FLIPS`` (5: below it even 0 or all of them at a fold cannot be told from a
   coin toss at 95 %).
4. ``fold``: the lower bound of the at-fold share exceeds 1/2 (most flips are made by a fold).
5. ``accumulation``: the upper bounds of both the at-fold share and the concentrated share are
   below 1/2 (most flips are away from folds *and* their error is spread over many steps: Lady
   Windermere's fan). A one-step model is concentrated by construction, so never accumulation.
6. ``mixed``: everything else (neither effect explains most flips, at this sample size).

When the samples are the whole test set (``population`` <= n) the counts are exact, not
estimates: each bound is the share itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import beta

CONFIDENCE = 0.95
ROBUST_MAX_FLIP = 0.02
MAJORITY = 0.5
CONCENTRATED_TOP1 = 0.5  # a flipped sample is "concentrated" when top1_share >= this

EFFECTS = ("robust", "fold", "accumulation", "mixed", "undetermined")


def bounds(k: int, n: int, exact: bool = False, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """One-sided ``confidence`` Clopper-Pearson bounds (lower, upper) of a rate from ``k`` of
    ``n``; ``exact``: the n are the whole population, the bounds are k / n. NaN for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    if exact:
        return k / n, k / n
    a = 1.0 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(confidence, k + 1, n - k))
    return low, high


def _min_flips() -> int:
    """Fewest flips from which an all-or-none at-fold count is decided at CONFIDENCE."""
    k = 1
    while bounds(0, k)[1] >= MAJORITY:
        k += 1
    return k


MIN_FLIPS = _min_flips()  # 5 at 95 %


@dataclass(frozen=True)
class Counts:
    """The counts the verdict reads (module docstring)."""

    n: int
    flips: int
    at_fold: int
    concentrated: int
    exact: bool = False  # the samples are the whole test set

    def flip_bounds(self) -> tuple[float, float]:
        return bounds(self.flips, self.n, self.exact)

    def at_fold_bounds(self) -> tuple[float, float]:
        return bounds(self.at_fold, self.flips, self.exact)

    def concentrated_bounds(self) -> tuple[float, float]:
        return bounds(self.concentrated, self.flips, self.exact)


def verdict(counts: Counts, folds_computed: bool) -> str:
    """The effect named by the rule of the module docstring."""
    if counts.n <= 0:
        return "undetermined"
    if counts.flip_bounds()[1] < ROBUST_MAX_FLIP:
        return "robust"
    if not folds_computed or counts.flips == 0 or (not counts.exact and counts.flips < MIN_FLIPS):
        return "undetermined"
    fold_low, fold_high = counts.at_fold_bounds()
    if fold_low > MAJORITY:
        return "fold"
    if fold_high < MAJORITY and counts.concentrated_bounds()[1] < MAJORITY:
        return "accumulation"
    return "mixed"
