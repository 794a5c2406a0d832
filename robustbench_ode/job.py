"""A job: the unit of work an executor runs, train-and-test one cell or re-test a stored model.

Jobs are plain picklable values, so the same job runs in-process, in a spawned worker process or
as a Ray task. A job returns its :class:`~robustbench_ode.cell.CellResult`; the driver writes it
to the store, so workers need no shared file system for results (mid-training checkpoints do use
``store_root`` when the workers can see it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .cell import CellConfig, CellResult, TestPoint, _failure, build_model, load_data, run_cell, result_rows
from .status import Status


@dataclass(frozen=True)
class CellJob:
    cell: CellConfig
    tests: list[TestPoint]
    device: str = "cpu"
    store_root: str | None = None  # where checkpoints go; None: no checkpoints
    # Re-testing a stored model: its weights and its training outcome. None: train from scratch.
    state_dict: dict[str, torch.Tensor] | None = None
    train_status: Status = Status.OK
    train_message: str = ""
    train_seconds: float = 0.0
    columns: dict[str, Any] | None = None  # stored row columns to keep (an adapted cell's final steps)

    @property
    def retest(self) -> bool:
        return self.state_dict is not None or self.train_status is not Status.OK

    def run(self) -> CellResult:
        if self.retest:
            return self._retest()
        from .store import CellStore  # here, not at import: the store imports cell, as we do

        checkpoint = None
        if self.store_root is not None:
            store = CellStore(Path(self.store_root))
            store.mark_running(self.cell.key)
            checkpoint = store.checkpoint(self.cell.key)
        return run_cell(self.cell, self.tests, device=self.device, checkpoint=checkpoint)

    def _retest(self) -> CellResult:
        """Test points the stored model has not been tested on, without retraining it."""
        result = CellResult(self.cell, self.train_status, self.train_message,
                            train_seconds=self.train_seconds)
        model = data = None
        if self.train_status is Status.OK and self.state_dict is not None:
            try:
                data = load_data(self.cell.dataset, self.cell.seed)
                model = build_model(self.cell, data)
                model.load_state_dict(self.state_dict)
                model.to(self.device)
            except Exception as exc:  # noqa: BLE001 - a model that cannot be rebuilt is a failure
                result.status, result.message = _failure(exc)
                model = None
        result.rows = result_rows(self.cell, model, data, self.tests, self.device,
                                train_status=result.status, train_message=self.train_message,
                                train_seconds=self.train_seconds, columns=self.columns)
        return result


def run_job(job: CellJob) -> CellResult:
    """Module-level entry point (what process pools and Ray pickle by reference)."""
    return job.run()
