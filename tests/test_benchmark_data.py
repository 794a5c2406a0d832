"""benchmark()'s test data as a DataLoader or any iterable of (x, y) batches (the same rows as
the tensors), a bad iterable as a one-line error, and the CLI's thread budget applied."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import robustbench_ode as rb
from robustbench_ode.core.errors import SuiteError
from tests.test_assert_is_ode import Plain, rings

GRID = [{"solver": "euler", "steps": [1, 4]}]
SETTINGS = {"grid": GRID, "reference": {"solver": "dopri5", "tol": 1e-4}, "diagnostics": False,
            "train": {"solver": "euler", "steps": 2}}


def rows(result):
    return result.table.drop(columns=["eval_seconds"]).reset_index(drop=True)


def test_a_dataloader_and_an_iterable_of_batches_give_the_tensors_rows():
    torch.manual_seed(0)
    model, (x, y) = Plain(2).eval(), rings(90, 1)
    expected = rows(rb.benchmark(model, (x, y), **SETTINGS))
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    generator = ((x[i:i + 40], y[i:i + 40]) for i in range(0, 90, 40))
    for data in (loader, generator, [(x[:50], y[:50]), (x[50:], y[50:])]):
        assert rows(rb.benchmark(model, data, **SETTINGS)).equals(expected), type(data).__name__


@pytest.mark.parametrize("bad", [3, iter([]), [(torch.zeros(2, 2),)]])
def test_bad_test_data_is_a_one_line_error(bad):
    with pytest.raises(SuiteError, match="test_data") as err:
        rb.benchmark(Plain(2), bad, **SETTINGS)
    assert "\n" not in str(err.value)


def test_the_thread_budget_is_applied(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        rb.benchmark(Plain(2).eval(), rings(20, 1), threads=2, **SETTINGS)
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        rb.benchmark(Plain(2).eval(), rings(20, 1), **SETTINGS)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
