"""torchdyn's NeuralODE under solver substitution (where the optional extra is installed): a
NeuralODE model gets the rows of the same model written with torchdiffeq's odeint (NFE varying
over the grid, torchdyn's own solver never running), its train configuration inferred, and
``ODEProblem.odeint`` restored after the call and after the model raises."""

import pytest
import torch
from torch import nn
from torchdiffeq import odeint

torchdyn = pytest.importorskip("torchdyn")
import torchdyn.core.problems as problems  # noqa: E402
from torchdyn.core import NeuralODE  # noqa: E402

import robustbench_ode as rb  # noqa: E402
from robustbench_ode.core.schema import RESULT_NAMES  # noqa: E402
from robustbench_ode.harness.substitution import substituted  # noqa: E402
from robustbench_ode.models.spec import SolveSpec  # noqa: E402

GRID = [{"solver": "euler", "steps": [1, 4, 16]}, {"solver": "rk4", "steps": [2]},
        {"solver": "dopri5", "tol": [1e-3]}]
T = torch.linspace(0.0, 1.0, 3)  # two Euler steps


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))

    def forward(self, x):  # autonomous: torchdyn wraps it as vf(t, x)
        return self.net(x)


class Dyn(nn.Module):
    def __init__(self, f: Field, t: torch.Tensor = T) -> None:
        super().__init__()
        self.node, self.out, self.t = NeuralODE(f, solver="euler"), nn.Linear(2, 2), t

    def forward(self, x):
        _, sol = self.node(x, self.t)
        return self.out(sol[-1])


class Diffeq(nn.Module):
    def __init__(self, dyn: Dyn) -> None:
        super().__init__()
        self.f, self.out, self.t = dyn.node.vf, dyn.out, dyn.t

    def forward(self, x):
        return self.out(odeint(self.f, x, self.t, method="euler")[-1])


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    dyn = Dyn(Field()).eval()
    x = torch.randn(200, 2)
    return dyn, Diffeq(dyn).eval(), (x, (x.norm(dim=1) > 1.0).long())


def test_a_neural_ode_gets_the_rows_of_the_same_model_with_odeint(models, monkeypatch):
    dyn, plain, data = models
    original = problems.ODEProblem.odeint

    def never(*a, **k):
        raise AssertionError("torchdyn's own solver ran")

    monkeypatch.setattr(problems, "odeint", never)  # what ODEProblem.odeint calls to solve
    a = rb.benchmark(dyn, data, GRID, model_label="m", diagnostics=False)
    b = rb.benchmark(plain, data, GRID, model_label="m", diagnostics=False)
    cols = [c for c in RESULT_NAMES if c != "eval_seconds"]
    assert a.table[cols].equals(b.table[cols]), a.table[cols].compare(b.table[cols])
    assert a.train == b.train == SolveSpec("euler", steps=2) and a.inferred
    assert a.table["status"].eq("ok").all() and a.table["nfe"].nunique() > 3
    assert problems.ODEProblem.odeint is original


def test_a_neural_ode_is_diagnosed_as_its_odeint_twin(models):
    dyn, _, data = models
    dyn = Dyn(dyn.node.vf.vf, torch.tensor([0.0, 1.0])).eval()  # one output time: one Euler step
    plain = Diffeq(dyn).eval()
    a = rb.benchmark(dyn, data, GRID[:1], model_label="m").diagnostics
    b = rb.benchmark(plain, data, GRID[:1], model_label="m").diagnostics
    assert a["diagnostics_status"] == "ok"
    assert {k: v for k, v in a.items() if not k.startswith("cost_")} == \
        {k: v for k, v in b.items() if not k.startswith("cost_")}


def test_odeint_is_restored_after_the_model_raises(models):
    dyn, _, data = models
    original = problems.ODEProblem.odeint
    with pytest.raises(RuntimeError, match="boom"):
        with substituted(SolveSpec("euler", steps=4)):
            dyn(data[0])
            raise RuntimeError("boom")
    assert problems.ODEProblem.odeint is original
    assert "odeint" not in vars(NeuralODE)  # nothing left on the subclass either


def test_save_at_is_refused_in_one_line(models):
    dyn, _, data = models
    refused = pytest.raises(ValueError, match="^substituted NeuralODE: save_at")
    with substituted(SolveSpec("euler", steps=4)), refused:
        dyn.node(data[0], T, save_at=T[1:])
