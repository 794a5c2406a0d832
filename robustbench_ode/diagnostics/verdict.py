"""The ``effect`` verdict: which of Ott et al.'s two effects explains the flips of a model.

The thresholds are fixed here and in docs/diagnostics.md *before* any measurement; they are not to
be tuned to a result. A flip is a sample classified differently under the train configuration
than under the reference solve (``flip_fraction`` counts them among samples whose train solve is
finite). The flip step is the step whose transported local error first moves the sample's class
away from the reference class (``windermere.py``); a flip is "at a fold" when the train solver's
one-step map has det <= 0 at that step for that sample.

Rule, in this order:

1. ``robust``: ``flip_fraction < ROBUST_MAX_FLIP`` (fewer than 1 % of samples change class).
2. ``undetermined``: fold diagnostics were not computed (state above ``max_dim``), or there are no
   finite samples: the rule cannot tell the effects apart.
3. ``fold``: ``flips_at_fold_share >= FOLD_MIN_SHARE`` (at least half the flips happen at a step
   where the train map folds: the model relies on maps no ODE flow can make).
4. ``accumulation``: ``flips_with_fold_share <= ACCUMULATION_MAX_SHARE`` (at most 10 % of the
   flipped samples fold at *any* step: the flips come from error carried by an orientation-
   preserving map, Lady Windermere's fan).
5. ``mixed``: everything else (flips mostly away from fold steps, yet on folding trajectories).
"""

from __future__ import annotations

import math

ROBUST_MAX_FLIP = 0.01
FOLD_MIN_SHARE = 0.5
ACCUMULATION_MAX_SHARE = 0.1

EFFECTS = ("robust", "fold", "accumulation", "mixed", "undetermined")


def verdict(flip_fraction: float, flips_at_fold_share: float, flips_with_fold_share: float,
            folds_computed: bool) -> str:
    """The effect named by the rule above (module docstring). NaN shares count as unknown."""
    if not math.isfinite(flip_fraction):
        return "undetermined"
    if flip_fraction < ROBUST_MAX_FLIP:
        return "robust"
    if not folds_computed or not (math.isfinite(flips_at_fold_share)
                                  and math.isfinite(flips_with_fold_share)):
        return "undetermined"
    if flips_at_fold_share >= FOLD_MIN_SHARE:
        return "fold"
    if flips_with_fold_share <= ACCUMULATION_MAX_SHARE:
        return "accumulation"
    return "mixed"
