"""``Monitor``: the ODE gap during training, from a plain PyTorch loop.

    monitor = rb.Monitor((x_test, y_test), every=100, max_gap=0.02, on_resnet="warn")
    for step in range(n_steps):
        ...  # the research code's own training step
        if monitor(model, step):  # True when on_resnet="stop" and the model turned into a ResNet
            break
    monitor.log  # one dict per check: step, ode_gap, acc_train, acc_ref, verdict

Every ``every`` steps (step 0 included) it runs :func:`robustbench_ode.benchmark` on the model
(in eval mode, put back in the mode it was in) and keeps the gap and the verdict of
:func:`~robustbench_ode.assertion.ode_verdict`, the same function ``assert_is_ode`` decides with.
``on_resnet``: ``log`` (only record), ``warn`` (a ``RuntimeWarning`` naming the step and the gap),
``stop`` (also return True, for the loop to break). Checks cost a benchmark each: keep the grid and
the data small (tests/perf/test_monitor_overhead.py measures one check).
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from .assertion import DEFAULT_MAX_GAP, check_max_gap, ode_verdict
from .benchmarking import benchmark
from .core.errors import SuiteError

ACTIONS = ("log", "warn", "stop")


class Monitor:
    """The ODE gap logged every ``every`` steps (module docstring); the other keyword arguments
    are :func:`~robustbench_ode.benchmark`'s (``grid``, ``train``, ``reference``, ...)."""

    def __init__(self, test_data: Any, *, every: int = 100, max_gap: float = DEFAULT_MAX_GAP,
                 on_resnet: str = "warn", **benchmark_kwargs: Any) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise SuiteError(f"every: must be a positive integer (steps between checks), got {every!r}")
        if on_resnet not in ACTIONS:
            raise SuiteError(f"on_resnet: must be one of {', '.join(ACTIONS)}, got {on_resnet!r}")
        self.test_data = test_data
        self.every = every
        self.max_gap = check_max_gap(max_gap)
        self.on_resnet = on_resnet
        self.benchmark_kwargs = {"diagnostics": False, **benchmark_kwargs}
        self.log: list[dict[str, Any]] = []

    def check(self, model: nn.Module, step: int) -> dict[str, Any]:
        """One check now, whatever the step: benchmark the model, record and return the entry."""
        was_training = model.training
        model.eval()
        try:
            result = benchmark(model, self.test_data, **self.benchmark_kwargs)
        finally:
            model.train(was_training)
        v = ode_verdict(result.summary, self.max_gap)
        entry = {"step": int(step), "ode_gap": v.ode_gap, "acc_train": v.acc_train,
                 "acc_ref": v.acc_ref, "verdict": v.verdict}
        self.log.append(entry)
        return entry

    def __call__(self, model: nn.Module, step: int) -> bool:
        """Check at every ``every``-th step; True when training should stop (``on_resnet="stop"``
        and the verdict is ``resnet``)."""
        if step % self.every:
            return False
        entry = self.check(model, step)
        if entry["verdict"] != "resnet" or self.on_resnet == "log":
            return False
        if self.on_resnet == "warn":
            warnings.warn(f"step {step}: the model is turning into a ResNet (|ode_gap| "
                          f"{abs(entry['ode_gap']):.4f} > max_gap {self.max_gap:g})",
                          RuntimeWarning, stacklevel=2)
            return False
        return True


def lightning_callback(monitor: Monitor) -> Any:
    """``monitor`` as a PyTorch Lightning callback (the optional ``lightning`` extra): checked
    after every training batch at the trainer's ``global_step``; ``on_resnet="stop"`` sets
    ``trainer.should_stop``. ``Trainer(callbacks=[rb.lightning_callback(rb.Monitor(data))])``."""
    import pytorch_lightning as pl  # optional dependency: imported only when asked for

    class MonitorCallback(pl.Callback):
        def __init__(self) -> None:
            self.monitor = monitor

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if self.monitor(pl_module, trainer.global_step - 1):
                trainer.should_stop = True

    return MonitorCallback()
