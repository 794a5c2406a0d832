"""Which cells may train together as one seed-stacked model.

Cells that differ only by seed (same dataset config, model, training, solver and steps) train the
same tiny network on different data and initialisations; stacking them shares every operation's
overhead (training/forward.py). A cell is grouped only if every setting that applies to it is
honoured by stacked training: fixed-step training of a model the registry declares stackable
(its speed switch on), and every training setting either one the stacked path honours for any
value or at its default (declared beside each setting in config/training.py).
"""

from __future__ import annotations

import json

from ..solvers import SOLVERS, Kind
from .cell import CellConfig


def stack_key(cell: CellConfig) -> str | None:
    """Cells with equal keys may train as one stacked group; None: this cell trains alone."""
    info, training = cell.model.info, cell.training
    if (info is None or not info.stackable or cell.steps is None or cell.model.checkpoint
            or SOLVERS.get(cell.solver).kind is not Kind.FIXED
            or training.stacked_exceptions()):
        return None
    if info.speed_switch is not None and cell.model.params.get(info.speed_switch) is False:
        return None
    return json.dumps(cell.model_dump(mode="json", exclude={"seed"}), sort_keys=True)
