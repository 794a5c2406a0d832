"""The gradient method: adjoint and autograd agree; backward NFE and saved memory are measured."""

import copy

import pytest
import torch
import torch.nn.functional as F

from robustbench_ode.config import parse_suite
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.harness.cell import cells
from robustbench_ode.harness.execution import run_cells
from robustbench_ode.models import MODELS, SolveSpec


# A smooth field meets the 1e-4 by orders of magnitude; the ReLU field's kinks cost the
# adjoint's backward solve accuracy (3e-4 measured at 1e-9), so it gets 1e-3.
@pytest.mark.parametrize("name, params, bound", [
    ("mlp", {"hidden": 16, "activation": "tanh"}, 1e-4),
    ("ott_conv1d", {"width": 8}, 1e-3),
])
def test_adjoint_and_autograd_gradients_agree_on_a_model(name, params, bound):
    torch.manual_seed(0)
    model = MODELS.get(name)((2,), 2, **params).double()
    x = torch.randn(16, 2, dtype=torch.float64)
    y = torch.randint(0, 2, (16,))
    grads = []
    for adjoint in (False, True):
        model.zero_grad()
        logits, stats = model(x, SolveSpec("dopri5", rtol=1e-9, atol=1e-9, adjoint=adjoint))
        F.cross_entropy(logits, y).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    field = torch.cat([p.grad.flatten() for p in model.block.field.parameters()])
    assert field.norm() > 1e-3  # the field's own gradient is real, not zeros on both sides
    rel = float((grads[0] - grads[1]).norm() / grads[0].norm())
    assert rel < bound


SUITE = {"name": "g", "dataset": {"name": "sphere2", "n_train": 64, "n_test": 32},
         "model": {"name": "ott_conv1d", "width": 8},
         "training": [{"iterations": 2, "batch_size": 32, "label": "autograd"},
                      {"iterations": 2, "batch_size": 32, "gradient": "adjoint", "label": "adjoint"}],
         "train": {"seeds": [0], "grid": [{"solver": "euler", "steps": [2, 16]},
                                          {"solver": "dopri5", "tol": [1e-3]}]},
         "test": [{"solver": "euler", "steps": [2]}]}


def test_training_log_has_backward_nfe_and_saved_memory():
    suite = parse_suite(copy.deepcopy(SUITE))
    logs = {}
    for cell in cells(suite):
        (result,) = run_cells([cell], [], suite.reference)
        assert result.status.value == "ok"
        logs[(cell.training.label, cell.solver, cell.steps)] = result.log[0]  # memory probed at 0
    for steps in (2, 16):  # autograd re-evaluates nothing; the adjoint solves backwards
        assert logs[("autograd", "euler", steps)]["nfe_backward"] == 0
        assert logs[("adjoint", "euler", steps)]["nfe_backward"] == steps
    assert logs[("adjoint", "dopri5", None)]["nfe_backward"] > 0
    # autograd keeps every step's activations, the adjoint only the end state
    grow = logs[("autograd", "euler", 16)]["saved_mb"] / logs[("autograd", "euler", 2)]["saved_mb"]
    assert grow > 6
    assert logs[("adjoint", "euler", 16)]["saved_mb"] == logs[("adjoint", "euler", 2)]["saved_mb"]
    assert logs[("adjoint", "euler", 16)]["saved_mb"] < logs[("autograd", "euler", 2)]["saved_mb"]


def test_adjoint_needs_a_torchdiffeq_method_and_backprop_is_the_old_name():
    bad = copy.deepcopy(SUITE)
    bad["train"]["grid"] = [{"solver": "rk4", "steps": [4]}]
    with pytest.raises(SuiteError, match=r"training.gradient \(train.grid.0.solver\): adjoint needs"):
        parse_suite(bad)
    old = copy.deepcopy(SUITE)
    old["training"] = {"gradient": "backprop"}
    assert parse_suite(old).training[0].gradient == "autograd"


def test_memory_probe_leaves_no_reference_cycle():
    """A graph part the backward pass never visits (exp saves its own output) must be freed."""
    import gc
    import weakref

    from robustbench_ode.training.probes import SavedTensors

    w = torch.randn(3, requires_grad=True)
    probe = SavedTensors()
    with probe.recording([w]):
        side = torch.exp(w * 2)
        loss = (w * torch.tanh(w)).sum()
    assert probe.bytes > 0  # tanh's output and w * 2 were counted; w itself was not
    ref = weakref.ref(side)
    loss.backward()
    probe.release()
    del side
    gc.collect()
    assert ref() is None
