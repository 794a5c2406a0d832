"""benchmark() on a model written as plain torchdiffeq code (odeint inside forward): the same rows
as the same model through the interface path, the train configuration inferred from its first
odeint call, several ODE blocks summed, torchdiffeq restored afterwards (also after the model
raises), and bad ``train`` arguments as one-line errors."""

import math

import pytest
import torch
import torchdiffeq
from torch import nn
from torchdiffeq import odeint

import robustbench_ode as rb
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.core.schema import RESULT_NAMES
from robustbench_ode.models.spec import SolveSpec
from robustbench_ode.outputs.summary import DIAGNOSTIC_COLUMNS

T01 = torch.tensor([0.0, 1.0])
GRID = [{"solver": "euler", "steps": [1, 8, 32]}, {"solver": "midpoint", "step_factors": [1, 4]},
        {"solver": "rk4", "steps": [4]}, {"solver": "dopri5", "tol": [1e-3]}]


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))

    def forward(self, t, z):
        return self.net(z)


class Plain(nn.Module):
    """As a user writes it: euler with step_size 1/2 on [0, 1], nothing package-specific."""

    def __init__(self) -> None:
        super().__init__()
        self.lift, self.f, self.out = nn.Linear(2, 2), Field(), nn.Linear(2, 2)

    def forward(self, x):
        return self.out(odeint(self.f, self.lift(x), T01, method="euler", options={"step_size": 0.5})[-1])


class Pieces(nn.Module):
    """The same model (shared modules) through the interface."""

    def __init__(self, m: Plain) -> None:
        super().__init__()
        self.input_map, self.field, self.head = m.lift, m.f, m.out


def originals():
    adjoint = __import__("torchdiffeq._impl.adjoint", fromlist=["x"])
    return (torchdiffeq.odeint, torchdiffeq.odeint_adjoint, odeint, adjoint.odeint_adjoint,
            adjoint._check_inputs)


@pytest.fixture(scope="module")
def trained():
    """A few Adam iterations with the model's own solver, so the step size matters."""
    torch.manual_seed(0)
    model = Plain()
    x = torch.randn(256, 2)
    y = (x.norm(dim=1) > 1.1).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    xt = torch.randn(300, 2)
    return model.eval(), (xt, (xt.norm(dim=1) > 1.1).long())


def _same(a, b):
    cols = [c for c in RESULT_NAMES if c != "eval_seconds"]
    assert list(a.columns) == list(b.columns) == list(RESULT_NAMES)
    pd_a, pd_b = a[cols].reset_index(drop=True), b[cols].reset_index(drop=True)
    assert pd_a.equals(pd_b), (pd_a.compare(pd_b) if pd_a.shape == pd_b.shape else (pd_a, pd_b))


def test_plain_model_gets_the_interface_rows_and_torchdiffeq_back(trained):
    model, data = trained
    before = originals()
    plain = rb.benchmark(model, data, GRID, batch_size=128, model_label="m")
    pieces = rb.benchmark(Pieces(model), data, GRID, train={"solver": "euler", "steps": 2},
                          batch_size=128, model_label="m")
    _same(plain.table, pieces.table)
    assert plain.inferred and not pieces.inferred
    assert plain.train == pieces.train == SolveSpec("euler", steps=2)
    assert plain.table["status"].eq("ok").all() and len(plain.table) == 9
    train_row = plain.table[plain.table["is_train_config"]].iloc[0]
    assert train_row["test_steps"] == 2 and not math.isnan(train_row["drift"])  # from substituted states
    # the same robustness metrics, and the same diagnosis: the plain model's field, initial
    # states and head captured from its solve (harness/capture.py) are the interface's pieces
    assert plain.summary.equals(pieces.summary)
    assert plain.diagnostics["diagnostics_status"] == pieces.diagnostics["diagnostics_status"] == "ok"
    timings = {k for k in pieces.diagnostics if k.startswith("cost_")}
    assert {k: v for k, v in plain.diagnostics.items() if k not in timings} == \
        {k: v for k, v in pieces.diagnostics.items() if k not in timings}
    assert set(DIAGNOSTIC_COLUMNS) <= set(plain.summary.columns)
    # Given explicitly, the same rows as inferred.
    _same(rb.benchmark(model, data, GRID, train={"solver": "euler", "steps": 2}, batch_size=128,
                       model_label="m").table, plain.table)
    assert originals() == before


class Exploding(Plain):
    """Raises inside its field after a number of evaluations (a model bug under a fine solver)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, x):
        def field(t, z):
            self.calls += 1
            if self.calls > self.after:
                raise RuntimeError("boom inside the model")
            return self.f(t, z)
        return self.out(torchdiffeq.odeint(field, self.lift(x), T01, method="euler",
                                           options={"step_size": 0.25})[-1])


def test_torchdiffeq_is_restored_after_the_model_raises(trained):
    _, data = trained
    before = originals()
    result = rb.benchmark(Exploding(after=40), data, [{"solver": "euler", "steps": [2, 64]}], batch_size=300)
    rows = result.table.set_index("test_steps", drop=False)
    assert result.train == SolveSpec("euler", steps=4)  # inferred: step_size 0.25 on [0, 1]
    assert rows.loc[64, "status"] == "failed" and "boom inside the model" in rows.loc[64, "message"]
    assert originals() == before
    # raising while the train config is inferred: one line naming the model
    with pytest.raises(SuiteError, match="^model: Exploding raised on one test sample.*boom"):
        rb.benchmark(Exploding(after=0), data, [{"solver": "euler", "steps": [2]}])
    assert originals() == before


class TwoBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f1, self.f2, self.out = Field(), Field(), nn.Linear(2, 2)

    def forward(self, x):
        z = odeint(self.f1, x, T01, method="rk4", options={"step_size": 0.5})[-1]
        z = torchdiffeq.odeint_adjoint(self.f2, z, T01, method="rk4", options={"step_size": 0.5})[-1]
        return self.out(z)


def test_several_ode_blocks_are_each_substituted_and_summed(trained):
    _, data = trained
    torch.manual_seed(1)
    result = rb.benchmark(TwoBlocks(), data, [{"solver": "euler", "steps": [4]},
                                              {"solver": "dopri5", "tol": [1e-4]}])
    rows = result.table.set_index("test_solver", drop=False)
    assert result.train == SolveSpec("rk4_38", steps=2)  # torchdiffeq's rk4 is the 3/8 rule
    assert rows.loc["euler", "nfe"] == 2 * 4  # both blocks, 4 Euler steps each
    assert rows.loc["rk4_38", "nfe"] == 2 * 2 * 4
    assert result.table["status"].eq("ok").all()


class Adaptive(Plain):
    def forward(self, x):
        return self.out(odeint(self.f, self.lift(x), T01, rtol=1e-4, atol=1e-4)[-1])


class Gridded(Plain):
    def forward(self, x):
        return self.out(odeint(self.f, self.lift(x), T01, method="euler",
                               options={"grid_constructor": lambda f, y, t: torch.linspace(0, 1, 4)})[-1])


def test_the_inferred_train_configuration_and_what_cannot_be_inferred(trained):
    _, data = trained
    result = rb.benchmark(Adaptive(), data, [{"solver": "dopri5", "tol_factors": [0.1]}])
    assert result.train == SolveSpec("dopri5", rtol=1e-4, atol=1e-4) and result.inferred
    assert sorted(result.table["test_tol"]) == pytest.approx([1e-7, 1e-5, 1e-4])
    for model, match in ((Gridded(), "grid_constructor"), (nn.Linear(2, 2), "nothing to test")):
        with pytest.raises(SuiteError, match=match) as err:
            rb.benchmark(model, data, [{"solver": "euler", "steps": [2]}])
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(("train", "match"), [
    ({"solver": "rk45", "steps": 2}, "train.solver: unknown solver 'rk45'"),
    ({"solver": "euler", "steps": 0}, "train.steps.0"),
    ({"solver": "euler"}, "exactly one of steps, tol"),
    ({"solver": "euler", "tol": 1e-3}, "fixed-step"),
    ("euler", "give a mapping"),
])
def test_bad_train_is_a_one_line_error(trained, train, match):
    model, data = trained
    for m in (model, Pieces(model)):
        with pytest.raises(SuiteError, match=match) as err:
            rb.benchmark(m, data, [{"solver": "euler", "steps": [2]}], train=train)
        assert "\n" not in str(err.value)


def test_the_interface_path_needs_train(trained):
    model, data = trained
    with pytest.raises(SuiteError, match="train: required"):
        rb.benchmark(Pieces(model), data, [{"solver": "euler", "steps": [2]}])
