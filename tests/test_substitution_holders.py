"""Solver substitution however the model holds its solver (robustbench_ode/harness/torchdiffeq_calls.py).

The substitution intercepts at torchdiffeq's dispatch, so a model that keeps ``odeint`` in an
attribute set in ``__init__``, a closure, a default argument, a container, a ``functools.partial``,
a helper of its own, a class attribute, or calls ``odeint_adjoint``, gets the same rows from
``benchmark()`` as the same model written with a module-global ``odeint``. Every model passes a
``grid_constructor`` that raises: had torchdiffeq's own fixed-grid solver run, the call would fail.
"""

import functools
import importlib

import pytest
import torch
import torchdiffeq
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

import robustbench_ode as rb
from robustbench_ode.harness.substitution import substituted
from robustbench_ode.models.spec import SolveSpec

T01 = torch.tensor([0.0, 1.0])
GRID = [{"solver": "euler", "steps": [1, 4, 16]}, {"solver": "rk4", "steps": [2]}]
TRAIN = {"solver": "euler", "steps": 4}


class OwnSolverRan(RuntimeError):
    pass


def never(*_):
    raise OwnSolverRan("torchdiffeq's own solver ran inside substituted()")


OPTIONS = {"grid_constructor": never}


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
        with torch.no_grad():  # a strong field, so that the solver matters
            for m in self.net:
                if isinstance(m, nn.Linear):
                    m.weight.mul_(3.0)

    def forward(self, t, z):
        return self.net(z)


class Global(nn.Module):
    """The reference: the module-global ``odeint``."""

    def __init__(self) -> None:
        super().__init__()
        self.lift, self.field, self.head = nn.Linear(2, 2), Field(), nn.Linear(2, 2)

    def integrate(self, z):
        return odeint(self.field, z, T01, method="euler", options=OPTIONS)

    def forward(self, x):
        return self.head(self.integrate(self.lift(x))[-1])


class Attribute(Global):
    def __init__(self, adjoint: bool) -> None:
        super().__init__()
        self.odeint = odeint_adjoint if adjoint else odeint  # set in __init__

    def integrate(self, z):
        return self.odeint(self.field, z, T01, method="euler", options=OPTIONS)


def make_closure():
    captured = torchdiffeq.odeint

    def run(field, z):
        return captured(field, z, T01, method="euler", options=OPTIONS)
    return run


class Closure(Global):
    def __init__(self) -> None:
        super().__init__()
        self.run = make_closure()

    def integrate(self, z):
        return self.run(self.field, z)


class Default(Global):
    def integrate(self, z, ode=torchdiffeq.odeint):
        return ode(self.field, z, T01, method="euler", options=OPTIONS)


class Container(Global):
    def __init__(self) -> None:
        super().__init__()
        self.solvers = {"fixed": [torchdiffeq.odeint]}

    def integrate(self, z):
        return self.solvers["fixed"][0](self.field, z, T01, method="euler", options=OPTIONS)


class Partial(Global):
    def __init__(self) -> None:
        super().__init__()
        self.ode = functools.partial(torchdiffeq.odeint, method="euler", options=OPTIONS)

    def integrate(self, z):
        return self.ode(self.field, z, T01)


DEFINING_MODULE_ODEINT = importlib.import_module("torchdiffeq._impl.odeint").odeint


def own_helper(field, z, solver=DEFINING_MODULE_ODEINT):
    """A wrapper of the model's own, over the defining module's function."""
    return solver(field, z, T01, method="euler", options=OPTIONS)


class Helper(Global):
    def integrate(self, z):
        return own_helper(self.field, z)


class ClassAttribute(Global):
    solver = staticmethod(torchdiffeq.odeint_adjoint)

    def integrate(self, z):
        return self.solver(self.field, z, T01, method="euler", options=OPTIONS)


HOLDERS = {"attribute": lambda: Attribute(adjoint=False),
           "attribute_adjoint": lambda: Attribute(adjoint=True),
           "closure": Closure, "default_argument": Default, "container": Container,
           "partial": Partial, "own_helper": Helper, "class_attribute_adjoint": ClassAttribute}


def data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x.norm(dim=1) > 1.0).long()


def dispatch_objects() -> dict[str, object]:
    impl_odeint = importlib.import_module("torchdiffeq._impl.odeint")
    impl_adjoint = importlib.import_module("torchdiffeq._impl.adjoint")
    return {"solvers": tuple(impl_odeint.SOLVERS), "odeint": torchdiffeq.odeint,
            "odeint_adjoint": torchdiffeq.odeint_adjoint,
            "_check_inputs (odeint)": vars(impl_odeint)["_check_inputs"],
            "_check_inputs (adjoint)": vars(impl_adjoint)["_check_inputs"],
            "OdeintAdjointMethod": impl_adjoint.OdeintAdjointMethod}


def assert_restored(before: dict[str, object]) -> None:
    after = dispatch_objects()
    for key, value in before.items():
        assert (after[key] == value) if key == "solvers" else (after[key] is value), key


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    model = Global().eval()
    x, y = data(150, 1)
    with pytest.raises(OwnSolverRan):  # outside the block the model's own solver runs
        model(x)
    table = rb.benchmark(model, (x, y), GRID, train=TRAIN, batch_size=64, model_label="m",
                         diagnostics=False).table
    assert table["nfe"].nunique() == len(table)  # NFE varies across the grid
    return model, (x, y), table


@pytest.mark.parametrize("holder", sorted(HOLDERS))
def test_every_way_of_holding_odeint_gets_the_module_global_rows(reference, holder):
    model, (x, y), expected = reference
    other = HOLDERS[holder]().eval()
    other.load_state_dict(model.state_dict())
    before = dispatch_objects()
    table = rb.benchmark(other, (x, y), GRID, train=TRAIN, batch_size=64, model_label="m",
                         diagnostics=False).table
    assert_restored(before)
    pd_testing = pytest.importorskip("pandas.testing")
    volatile = [c for c in table.columns if "seconds" in c or "time" in c]  # wall clock
    pd_testing.assert_frame_equal(table.drop(columns=volatile), expected.drop(columns=volatile))


def test_every_holder_solves_with_the_spec_and_is_restored_after_an_exception(reference):
    model, (x, _), _ = reference
    before = dispatch_objects()
    with torch.no_grad(), substituted(SolveSpec("rk4", steps=2)) as probe:
        expected = model(x)
    for holder, make in HOLDERS.items():
        other = make().eval()
        other.load_state_dict(model.state_dict())
        with torch.no_grad(), substituted(SolveSpec("rk4", steps=2)) as probe:
            out = other(x)
        assert probe.n_calls == 1 and probe.stats.nfe == 8, holder
        torch.testing.assert_close(out, expected, rtol=0, atol=0, msg=holder)
        with pytest.raises(ZeroDivisionError), torch.no_grad(), substituted(SolveSpec("euler", steps=2)):
            other(x)
            raise ZeroDivisionError(holder)
        assert_restored(before)
        with pytest.raises(OwnSolverRan):  # outside the block: torchdiffeq's own, as before
            other(x)
