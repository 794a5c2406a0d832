"""The training log's row builder: every row has every column of the declared schema
(:data:`robustbench_ode.core.schema.TRAINING`), whichever forward, controller or probe made it."""

from __future__ import annotations

from typing import Any

from ..core.schema import LOG_NAMES


def log_row(**columns: Any) -> dict[str, Any]:
    """A training-log row: the given columns, the schema's others empty (None). A column the
    schema does not declare is a programming error."""
    unknown = set(columns) - set(LOG_NAMES)
    if unknown:
        raise KeyError(f"training-log columns not in the schema: {sorted(unknown)}")
    row = dict.fromkeys(LOG_NAMES)
    row.update(columns)
    return row
