"""Fold and error-accumulation diagnostics (Ott et al., "ResNet After All?", issues 19 and 27).

:func:`diagnose` on plain values (field, initial states, head, train configuration, reference);
:func:`diagnose_model` for an ODEClassifier. The log-determinants of a discrete solve and of the
flow (:func:`discrete_log_det`, :func:`liouville_log_det`) are the one implementation of the fold
notion, for other modules too. docs/diagnostics.md says how to read each number.
"""

from .core import METHOD, NOT_COMPUTED, SCALAR_KEYS, Diagnosis, diagnose
from .crossing import crossing_fraction, sample_pairs, segments_cross
from .folds import FoldTest, fold_test, neighbour_pairs, probe_states
from .jacobians import (
    Variational,
    exact_flow_jacobians,
    flow_jacobians,
    slogdet,
    step_jacobians_autodiff,
    variational_jacobians,
)
from .logdet import DiscreteLogDet, discrete_log_det, liouville_log_det, step_jacobians, trace_jacobian
from .model import diagnose_model
from .verdict import (
    CONFIDENCE,
    EFFECTS,
    MAJORITY,
    MIN_FLIPS,
    ROBUST_MAX_FLIP,
    Counts,
    bounds,
    verdict,
)
from .windermere import concentration, first_change, transport_indices

__all__ = ["CONFIDENCE", "EFFECTS", "MAJORITY", "METHOD", "MIN_FLIPS", "NOT_COMPUTED", "ROBUST_MAX_FLIP",
           "SCALAR_KEYS", "Counts", "Diagnosis", "DiscreteLogDet", "FoldTest", "Variational", "bounds",
           "concentration", "crossing_fraction", "diagnose", "diagnose_model", "discrete_log_det",
           "exact_flow_jacobians", "first_change", "flow_jacobians", "fold_test", "liouville_log_det",
           "neighbour_pairs", "probe_states", "sample_pairs", "segments_cross", "slogdet",
           "step_jacobians", "step_jacobians_autodiff", "trace_jacobian", "transport_indices",
           "variational_jacobians", "verdict"]
