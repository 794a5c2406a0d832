"""rb.Monitor from a plain PyTorch loop: the log of a coarse (Euler-2) training run shows ode_gap
growing; on_resnet="warn" warns and "stop" stops the loop; bad arguments are one-line errors."""

import pytest
import torch
from torch import nn

import robustbench_ode as rb
from robustbench_ode.core.errors import SuiteError
from tests.test_assert_is_ode import REF, Plain, rings

SETTINGS = {"grid": [{"solver": "euler", "steps": [2]}], "reference": REF,
            "train": {"solver": "euler", "steps": 2}, "max_gap": 0.02}


def train_with(monitor, iterations: int = 61) -> int:
    torch.manual_seed(0)
    model = Plain(2)
    x, y = rings(256, 0)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for step in range(iterations):
        if monitor(model, step):
            return step
        assert model.training  # the check puts the mode back
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return iterations


@pytest.fixture(scope="module")
def logged():
    monitor = rb.Monitor(rings(200, 1), every=30, on_resnet="log", **SETTINGS)
    train_with(monitor)
    return monitor.log


def test_the_log_of_a_coarse_run_shows_ode_gap_growing(logged):
    assert [e["step"] for e in logged] == [0, 30, 60]
    gaps = [e["ode_gap"] for e in logged]
    assert abs(gaps[0]) <= 0.02 and gaps[-1] > 0.02 and gaps[-1] > gaps[0], logged
    assert logged[0]["verdict"] == "ode" and logged[-1]["verdict"] == "resnet"
    assert set(logged[0]) == {"step", "ode_gap", "acc_train", "acc_ref", "verdict"}


def test_warn_and_stop_when_the_model_turns_into_a_resnet(logged):
    first_resnet = next(e["step"] for e in logged if e["verdict"] == "resnet")
    stop = rb.Monitor(rings(200, 1), every=30, on_resnet="stop", **SETTINGS)
    assert train_with(stop) == first_resnet
    warn = rb.Monitor(rings(200, 1), every=30, on_resnet="warn", **SETTINGS)
    with pytest.warns(RuntimeWarning, match=f"step {first_resnet}: the model is turning into a ResNet"):
        warn(*_model_at(first_resnet))


def _model_at(step: int):
    torch.manual_seed(0)
    model = Plain(2)
    x, y = rings(256, 0)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(step):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, step


@pytest.mark.parametrize(("kwargs", "key"), [({"every": 0}, "every"), ({"on_resnet": "panic"}, "on_resnet"),
                                             ({"max_gap": 2.0}, "max_gap")])
def test_bad_arguments_are_one_line_errors(kwargs, key):
    with pytest.raises(SuiteError, match=key):
        rb.Monitor(rings(10, 0), **kwargs)


def test_the_lightning_callback_logs_and_stops(logged):
    pl = pytest.importorskip("pytorch_lightning")
    from torch.utils.data import DataLoader, TensorDataset

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.model = Plain(2)

        def forward(self, x):
            return self.model(x)

        def training_step(self, batch, _):
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.03)

    monitor = rb.Monitor(rings(200, 1), every=30, on_resnet="stop", **SETTINGS)
    trainer = pl.Trainer(max_steps=61, callbacks=[rb.lightning_callback(monitor)], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Module(), DataLoader(TensorDataset(*rings(256, 0)), batch_size=256))
    assert [e["step"] for e in monitor.log] == [e["step"] for e in logged][:len(monitor.log)]
    assert monitor.log[-1]["verdict"] == "resnet" and trainer.global_step < 61
