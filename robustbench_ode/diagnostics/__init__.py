"""Fold and error-accumulation diagnostics (Ott et al., "ResNet After All?", issue 19).

:func:`diagnose` on plain values (field, initial states, head, train configuration, reference);
:func:`diagnose_model` for an ODEClassifier. docs/diagnostics.md says how to read each number.
"""

from .core import NOT_COMPUTED, SCALAR_KEYS, Diagnosis, diagnose
from .crossing import crossing_fraction, sample_pairs, segments_cross
from .jacobians import (
                        Variational,
                        exact_flow_jacobians,
                        flow_jacobians,
                        slogdet,
                        step_jacobians_autodiff,
                        variational_jacobians,
)
from .model import diagnose_model
from .verdict import ACCUMULATION_MAX_SHARE, EFFECTS, FOLD_MIN_SHARE, ROBUST_MAX_FLIP, verdict
from .windermere import concentration, first_change, transport_indices

__all__ = ["ACCUMULATION_MAX_SHARE", "EFFECTS", "FOLD_MIN_SHARE", "NOT_COMPUTED", "ROBUST_MAX_FLIP",
           "SCALAR_KEYS", "Diagnosis", "Variational", "concentration", "crossing_fraction",
           "diagnose", "diagnose_model", "exact_flow_jacobians", "first_change", "flow_jacobians",
           "sample_pairs", "segments_cross", "slogdet", "step_jacobians_autodiff",
           "transport_indices", "variational_jacobians", "verdict"]
