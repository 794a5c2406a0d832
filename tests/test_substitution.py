"""Solver substitution (robustbench_ode/harness/substitution.py): an unmodified torchdiffeq model,
tested with the package's solvers.

The example model is written as a user would write it, with ``from torchdiffeq import odeint``
at the top of this module and the call inside ``forward``; nothing in it knows about the package.
The substitution intercepts at torchdiffeq's dispatch (``_check_inputs``, the solver table, the
adjoint's autograd function), never at the names a model holds: every other way of holding odeint
is tested in tests/test_substitution_holders.py.
"""

import importlib
import math
import sys
import threading

import pytest
import torch
import torchdiffeq
from torch import nn
from torchdiffeq import odeint

from robustbench_ode.core.status import Status
from robustbench_ode.datasets.base import DataSplits
from robustbench_ode.harness.evaluation import evaluate, evaluate_plain
from robustbench_ode.harness.substitution import combine_stats, infer_spec, substituted
from robustbench_ode.models.interface import as_classifier
from robustbench_ode.models.spec import SolveSpec
from robustbench_ode.models.trajectory import allocate_steps
from robustbench_ode.solvers import SolveStats, solve

T01 = torch.tensor([0.0, 1.0])


# -- the plain-torchdiffeq example model ------------------------------------------------------

class Field(nn.Module):
    """f(t, z) = net(z)."""

    def __init__(self, dim: int = 2, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, width), nn.Tanh(), nn.Linear(width, dim))

    def forward(self, t, z):
        return self.net(z)


class Model(nn.Module):
    """A neural ODE classifier as written with torchdiffeq: euler with step_size 1/steps on [0, 1]."""

    def __init__(self, dim: int = 2, classes: int = 2, steps: int = 4) -> None:
        super().__init__()
        self.lift = nn.Linear(2, dim)
        self.field = Field(dim)
        self.head = nn.Linear(dim, classes)
        self.step_size = 1.0 / steps

    def forward(self, x):
        z = odeint(self.field, self.lift(x), T01, method="euler", options={"step_size": self.step_size})[-1]
        return self.head(z)


class Pieces(nn.Module):
    """The same model through the benchmark interface: input_map / field / head (shared modules)."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.input_map, self.field, self.head = model.lift, model.field, model.head


class TwoBlocks(nn.Module):
    """Two ODE blocks per forward pass (two odeint calls), the second through odeint_adjoint."""

    def __init__(self) -> None:
        super().__init__()
        self.f1, self.f2 = Field(), Field()
        self.head = nn.Linear(2, 2)

    def forward(self, x):
        z = odeint(self.f1, x, T01, method="rk4", options={"step_size": 0.5})[-1]
        z = torchdiffeq.odeint_adjoint(self.f2, z, T01, method="rk4", options={"step_size": 0.5})[-1]
        return self.head(z)


def circles(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x.norm(dim=1) > 1.0).long()
    return x, y


@pytest.fixture(scope="module")
def coarse_model():
    """A model trained with its own solver, euler with 4 steps (a few Adam iterations)."""
    torch.manual_seed(0)
    model = Model(dim=2, steps=4)
    with torch.no_grad():  # a strong field, so that the step size matters
        for m in model.field.net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(3.0)
    x, y = circles(128, 0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def entry_points() -> dict[str, object]:
    """Every place the two functions are reachable from, and everything the interception patches,
    as objects; ``solvers`` the keys of torchdiffeq's solver table."""
    impl_odeint = importlib.import_module("torchdiffeq._impl.odeint")
    impl_adjoint = importlib.import_module("torchdiffeq._impl.adjoint")
    return {"solvers": tuple(impl_odeint.SOLVERS),
            "OdeintAdjointMethod": impl_adjoint.OdeintAdjointMethod,
            "torchdiffeq.odeint": torchdiffeq.odeint,
            "torchdiffeq.odeint_adjoint": torchdiffeq.odeint_adjoint,
            "torchdiffeq._impl.odeint": torchdiffeq._impl.odeint,
            "torchdiffeq._impl.odeint_adjoint": torchdiffeq._impl.odeint_adjoint,
            "_impl.odeint module .odeint": impl_odeint.odeint,
            "_impl.adjoint module .odeint_adjoint": impl_adjoint.odeint_adjoint,
            "test module global odeint": sys.modules[__name__].odeint,
            "_check_inputs (odeint)": impl_odeint._check_inputs,
            "_check_inputs (adjoint)": impl_adjoint._check_inputs,
            "adjoint.py's internal odeint": impl_adjoint.odeint}


def assert_restored(before: dict[str, object]) -> None:
    after = entry_points()
    for key in before:
        assert after[key] == before[key] if key == "solvers" else after[key] is before[key], key


PATCHED = ("solvers", "OdeintAdjointMethod", "_check_inputs (odeint)", "_check_inputs (adjoint)")


# -- substitution changes what the model computes ----------------------------------------------

def test_substitution_changes_the_result(coarse_model):
    x, _ = circles(64, 1)
    with torch.no_grad():
        own = coarse_model(x)
        with substituted(SolveSpec("euler", steps=4)) as probe4:
            same = coarse_model(x)
        with substituted(SolveSpec("euler", steps=64)) as probe64:
            fine = coarse_model(x)
    # The model's own configuration, run by the package's Euler: the same logits.
    torch.testing.assert_close(same, own, rtol=1e-5, atol=1e-6)
    assert probe4.stats.nfe == 4 and probe64.stats.nfe == 64 and probe64.stats.steps == 64
    # A finer solver changes the answer of a model trained on the coarse grid.
    assert (fine - own).abs().max() > 1e-2
    # What the model asked for is recorded and read back as its train configuration.
    req = probe64.requested
    assert (req.entry, req.method, req.options, req.t) == ("odeint", "euler", {"step_size": 0.25}, (0.0, 1.0))
    assert probe64.train_spec() == SolveSpec("euler", steps=4)


@pytest.mark.parametrize(("solver", "steps", "stages"),
                         [("euler", 8, 1), ("midpoint", 8, 2), ("heun", 5, 2), ("rk4", 8, 4),
                          ("rk4_38", 3, 4)])
def test_nfe_is_steps_times_stages(solver, steps, stages):
    torch.manual_seed(1)
    model = Model()
    calls = []

    def counting(t, z, _f=model.field):
        calls.append(1)
        return _f(t, z)

    x, _ = circles(8, 2)
    with torch.no_grad(), substituted(SolveSpec(solver, steps=steps)) as probe:
        odeint(counting, model.lift(x), T01, method="euler", options={"step_size": 0.25})
    assert probe.stats.nfe == steps * stages == len(calls)
    assert probe.stats.steps == steps
    assert probe.stats.accepted is None and probe.stats.rejected is None


USER_MODULE = '''
import torch
import torchdiffeq
from torchdiffeq import odeint as integrate
from torchdiffeq import odeint_adjoint
from torchdiffeq._impl.odeint import odeint as deep_odeint

T = torch.tensor([0.0, 1.0])

def by_alias(f, z):
    return integrate(f, z, T, method="euler", options={"step_size": 0.5})[-1]

def by_attribute(f, z):
    return torchdiffeq.odeint(f, z, T, method="midpoint")[-1]

def by_deep_path(f, z):
    return deep_odeint(f, z, T, method="rk4")[-1]

def by_adjoint(f, z):
    return odeint_adjoint(f, z, T, method="dopri5", rtol=1e-3, atol=1e-3)[-1]
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_ode_model.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("user_ode_model", None)
    module = importlib.import_module("user_ode_model")
    yield module
    sys.modules.pop("user_ode_model", None)


def test_from_import_in_a_user_module_is_substituted(user_module):
    field, z0 = Field(), circles(4, 3)[0]
    spec = SolveSpec("rk4", steps=16)
    expected = solve(field, z0, "rk4", steps=16).z
    before = entry_points()
    originals = (user_module.integrate, user_module.odeint_adjoint, user_module.deep_odeint)
    with torch.no_grad(), substituted(spec) as probe:
        # no name is rebound: the model's own references reach the interception
        assert (user_module.integrate, user_module.odeint_adjoint, user_module.deep_odeint) == originals
        outs = [fn(field, z0) for fn in (user_module.by_alias, user_module.by_attribute,
                                         user_module.by_deep_path, user_module.by_adjoint)]
    assert probe.n_calls == 4
    assert [c.entry for c in probe.calls] == ["odeint"] * 3 + ["odeint_adjoint"]
    assert [c.method for c in probe.calls] == ["euler", "midpoint", "rk4", "dopri5"]
    for out in outs:
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert probe.stats.nfe == 4 * 64
    assert (user_module.integrate, user_module.odeint_adjoint, user_module.deep_odeint) == originals
    assert_restored(before)


# -- restoring -----------------------------------------------------------------------------------

class Boom(RuntimeError):
    pass


def test_everything_restored_after_the_block_and_after_an_exception(coarse_model):
    before = entry_points()
    x, _ = circles(4, 4)
    with torch.no_grad(), substituted(SolveSpec("euler", steps=8)):
        inside = entry_points()
        coarse_model(x)
    for key in before:  # only torchdiffeq's dispatch is patched, never the functions
        assert (inside[key] != before[key] if key == "solvers" else
                (inside[key] is not before[key]) == (key in PATCHED)), key
    assert_restored(before)

    def exploding(t, z):
        raise Boom("inside the model")

    for name, kwargs in (("odeint", {}), ("odeint_adjoint", {"adjoint_params": ()})):
        with pytest.raises(Boom), substituted(SolveSpec("rk4", steps=2)):
            getattr(torchdiffeq, name)(exploding, x, T01, **kwargs)
        assert_restored(before)
    with pytest.raises(Boom), substituted(SolveSpec("dopri5", rtol=1e-3, atol=1e-3)):
        coarse_model(x)
        raise Boom("after the model")
    assert_restored(before)
    # Afterwards the model runs torchdiffeq's own solver again.
    own = odeint(coarse_model.field, x, T01, method="euler", options={"step_size": 0.25})
    assert torch.equal(own, before["torchdiffeq.odeint"](coarse_model.field, x, T01, method="euler",
                                                           options={"step_size": 0.25}))


def test_a_module_imported_inside_the_block_is_substituted_and_a_kept_reference_is_torchdiffeq(
        tmp_path, monkeypatch):
    (tmp_path / "late_user_module.py").write_text("from torchdiffeq import odeint as late\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("late_user_module", None)
    before = entry_points()
    kept = []
    field, z0 = Field(), circles(3, 5)[0]
    with torch.no_grad(), substituted(SolveSpec("euler", steps=1)) as probe:
        late = importlib.import_module("late_user_module")
        kept.append(torchdiffeq.odeint)
        inside = late.late(field, z0, T01, method="midpoint")[-1]
    assert probe.n_calls == 1 and torch.equal(inside, solve(field, z0, "euler", steps=1).z)
    assert late.late is kept[0] is before["torchdiffeq.odeint"]
    assert_restored(before)
    # A reference kept past the block is torchdiffeq's own (midpoint: not an Euler step).
    with torch.no_grad():
        torch.testing.assert_close(kept[0](field, z0, T01, method="midpoint")[-1],
                                   solve(field, z0, "midpoint", steps=1).z)
    sys.modules.pop("late_user_module", None)


# -- several blocks ----------------------------------------------------------------------------

def test_several_blocks_are_summed_and_strict_mode_refuses():
    torch.manual_seed(2)
    model, x = TwoBlocks(), circles(6, 6)[0]
    spec = SolveSpec("rk4", steps=8)
    with torch.no_grad(), substituted(spec) as probe:
        logits = model(x)
    assert probe.n_calls == 2 and [c.entry for c in probe.calls] == ["odeint", "odeint_adjoint"]
    assert probe.stats.nfe == 2 * 8 * 4 and probe.stats.steps == 16
    z1 = solve(model.f1, x, "rk4", steps=8).z
    z2 = solve(model.f2, z1, "rk4", steps=8).z
    torch.testing.assert_close(probe.final_states[0], z1, rtol=0, atol=0)
    torch.testing.assert_close(probe.final_state, z2, rtol=0, atol=0)
    torch.testing.assert_close(logits, model.head(z2))
    assert probe.drift_states().shape == (6, 4)
    assert combine_stats(c.stats for c in probe.calls) == probe.stats
    before = entry_points()
    with pytest.raises(ValueError, match="more than one") as err, torch.no_grad(), \
            substituted(spec, strict=True) as strict:
        model(x)
    assert "\n" not in str(err.value) and strict.n_calls == 1
    assert_restored(before)
    # strict counts per forward pass: reset between two passes allows one call each.
    one_block = Model()
    with torch.no_grad(), substituted(spec, strict=True) as strict:
        one_block(x)
        strict.reset()
        one_block(x)
    assert strict.n_calls == 1


def test_combine_stats_keeps_the_worst_status():
    total = combine_stats([SolveStats(3, 1, 1, 0), SolveStats(5, 2, 2, 1, Status.MAX_STEPS, "limit"),
                           SolveStats(2, 1, 1, 0, Status.NON_FINITE, "nan")])
    assert (total.nfe, total.steps, total.accepted, total.rejected) == (10, 4, 4, 1)
    assert (total.status, total.message) == (Status.MAX_STEPS, "limit")
    assert combine_stats([SolveStats(4, 4)]).accepted is None


# -- time grids and states -------------------------------------------------------------------

def test_multi_point_t_is_solved_interval_by_interval():
    torch.manual_seed(3)
    field, z0 = Field(), circles(5, 7)[0]
    t = torch.tensor([0.0, 0.25, 1.0])
    with torch.no_grad(), substituted(SolveSpec("euler", steps=8)) as probe:
        out = odeint(field, z0, t, method="dopri5")
    assert out.shape == (3, 5, 2) and torch.equal(out[0], z0)
    counts = allocate_steps((0.0, 0.25, 1.0), 8)
    assert counts == [2, 6]
    z1 = solve(field, z0, "euler", steps=2, t_span=(0.0, 0.25)).z
    z2 = solve(field, z1, "euler", steps=6, t_span=(0.25, 1.0)).z
    assert torch.equal(out[1], z1) and torch.equal(out[2], z2)
    assert probe.stats.nfe == 8 and probe.calls[0].t == (0.0, 0.25, 1.0)
    assert probe.drift_states().shape == (5, 4)  # the trajectory at t[1:], batch first
    # torchdiffeq's own stacking on the same grid (output times on the step grid): the same values.
    t3 = torch.tensor([0.0, 0.5, 1.0])
    with torch.no_grad():
        theirs = odeint(field, z0, t3, method="euler", options={"step_size": 0.125})
        with substituted(SolveSpec("euler", steps=8)):
            ours = odeint(field, z0, t3, method="euler", options={"step_size": 0.125})
        # Decreasing t, as torchdiffeq allows.
        back = odeint(field, z0, t3.flip(0), method="euler", options={"step_size": 0.25})
        with substituted(SolveSpec("euler", steps=4)):
            ours_back = odeint(field, z0, t3.flip(0))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_back, back, rtol=1e-5, atol=1e-6)
    # An adaptive spec solves each interval with its tolerances.
    with torch.no_grad(), substituted(SolveSpec("dopri5", rtol=1e-6, atol=1e-6)) as probe:
        out = odeint(field, z0, t)
    first = solve(field, z0, "dopri5", rtol=1e-6, atol=1e-6, t_span=(0.0, 0.25))
    second = solve(field, first.z, "dopri5", rtol=1e-6, atol=1e-6, t_span=(0.25, 1.0))
    assert torch.equal(out[2], second.z)
    assert probe.stats.nfe == first.stats.nfe + second.stats.nfe
    assert probe.stats.accepted == first.stats.accepted + second.stats.accepted


@pytest.mark.parametrize("spec", [SolveSpec("euler", steps=4), SolveSpec("rk4", steps=8),
                                  SolveSpec("dopri5", rtol=1e-5, atol=1e-5),
                                  SolveSpec("bosh3", steps=6)], ids=SolveSpec.label)
def test_final_states_equal_a_direct_solve(spec):
    torch.manual_seed(4)
    field, z0 = Field(), circles(7, 8)[0]
    with torch.no_grad(), substituted(spec) as probe:
        out = odeint(field, z0, T01, method="euler", options={"step_size": 0.5})
    direct = solve(field, z0, spec.solver, steps=spec.steps, rtol=spec.rtol, atol=spec.atol)
    assert torch.equal(probe.final_state, direct.z) and torch.equal(out[-1], direct.z)
    assert probe.stats == direct.stats


def test_tuple_state_is_solved_as_torchdiffeq_does():
    torch.manual_seed(5)
    net = Field()

    def oscillator(t, state):  # position and velocity as two tensors
        q, p = state
        return p, -q + 0.1 * net.net(q)

    q0, p0 = circles(4, 9)[0], torch.zeros(4, 2)
    with torch.no_grad():
        theirs = odeint(oscillator, (q0, p0), T01, method="rk4", options={"step_size": 0.25})
        with substituted(SolveSpec("rk4_38", steps=4)) as probe:
            ours = odeint(oscillator, (q0, p0), T01)
    assert isinstance(ours, tuple) and [o.shape for o in ours] == [(2, 4, 2), (2, 4, 2)]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert isinstance(probe.final_state, tuple) and probe.stats.nfe == 16
    assert probe.drift_states().shape == (4, 4)


def test_gradients_flow_through_the_substituted_solve():
    torch.manual_seed(6)
    model, x = TwoBlocks(), circles(6, 10)[0]
    grads = []
    # The adjoint's gradient is the continuous one, the direct one the discrete solve's: the same
    # to the accuracy of a fine 4th-order solve.
    for spec in (SolveSpec("rk4_38", steps=16), SolveSpec("rk4_38", steps=16, adjoint=True)):
        model.zero_grad()
        with substituted(spec) as probe:
            model(x).sum().backward()  # the adjoint's backward solve runs inside the block
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        assert probe.n_calls == 2
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5)


def test_package_solves_and_other_threads_are_not_substituted():
    field, z0 = Field(), circles(3, 11)[0]
    with torch.no_grad():
        direct = solve(field, z0, "dopri5", rtol=1e-4, atol=1e-4)
        own = odeint(field, z0, T01, method="midpoint")
        seen = []
        with substituted(SolveSpec("euler", steps=2)) as probe:
            inside = solve(field, z0, "dopri5", rtol=1e-4, atol=1e-4)
            worker = threading.Thread(target=lambda: seen.append(
                torchdiffeq.odeint(field, z0, T01, method="midpoint")))
            worker.start()
            worker.join()
    assert probe.n_calls == 0
    assert torch.equal(inside.z, direct.z) and inside.stats == direct.stats
    assert torch.equal(seen[0], own)


# -- what the model asked for ------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "t", "expected"), [
    ({"method": "euler", "options": {"step_size": 0.25}}, [0.0, 1.0], SolveSpec("euler", steps=4)),
    ({"method": "euler", "options": {"step_size": 0.1}}, [0.0, 1.0], SolveSpec("euler", steps=10)),
    ({"method": "rk4", "options": {"step_size": 0.5}}, [0.0, 2.0], SolveSpec("rk4_38", steps=4)),
    ({"method": "heun2"}, [0.0, 0.5, 1.0], SolveSpec("heun", steps=2)),
    ({"method": "dopri5", "rtol": 1e-3, "atol": 1e-4}, [0.0, 1.0],
     SolveSpec("dopri5", rtol=1e-3, atol=1e-4)),
    ({}, [0.0, 1.0], SolveSpec("dopri5", rtol=1e-7, atol=1e-9)),
    ({"method": "bosh3", "options": {"max_num_steps": 50}}, [0.0, 1.0],
     SolveSpec("bosh3", rtol=1e-7, atol=1e-9, max_steps=50)),
])
def test_train_configuration_is_inferred(kwargs, t, expected):
    z0 = torch.zeros(2, 2)
    options = kwargs.get("options")
    with torch.no_grad(), substituted(SolveSpec("euler", steps=2)) as probe:
        odeint(lambda t, z: -z, z0, torch.tensor(t), **kwargs)
    assert probe.train_spec() == expected == infer_spec(probe.requested)
    assert probe.requested.options == (options or {})
    if options:
        assert probe.requested.options is not options  # a copy
        assert probe.requested.step_size == options.get("step_size")


@pytest.mark.parametrize("kwargs", [{"method": "implicit_adams"}, {"method": "heun3"},
                                    {"method": "euler", "options": {"grid_constructor": lambda f, y, t: t}}])
def test_train_configuration_without_an_equivalent_is_refused(kwargs):
    with torch.no_grad(), substituted(SolveSpec("euler", steps=1)) as probe:
        odeint(lambda t, z: -z, torch.zeros(1, 2), T01, **kwargs)
    with pytest.raises(ValueError):
        probe.train_spec()


# -- refusals ----------------------------------------------------------------------------------

def _field(t, z):
    return -z


def _nested(t, z):
    return odeint(_field, z, T01)[-1] - z


@pytest.mark.parametrize(("call", "match"), [
    (lambda: odeint(_field, torch.ones(2), T01, event_fn=lambda t, z: z.sum()), "event_fn"),
    (lambda: odeint(_field, torch.ones(2), T01, options={"jump_t": torch.tensor([0.5])}), "jump_t"),
    (lambda: odeint(_field, torch.ones(2), T01, options={"step_t": torch.tensor([0.5])}), "step_t"),
    (lambda: odeint(_field, torch.ones(2), T01, method="euler", options={"perturb": True}), "perturb"),
    (lambda: odeint(_field, torch.ones(2), T01, options={"grid_points": torch.tensor([0.5])}), "grid_points"),
    (lambda: odeint(_field, torch.ones(2), T01, method="rk45"), "not a torchdiffeq method"),
    (lambda: odeint(_field, torch.ones(2), [0.0, 1.0]), "torch.Tensor"),
    (lambda: odeint(_field, torch.ones(2), torch.tensor([0, 1])), "floating"),
    (lambda: odeint(_field, torch.ones(2), torch.tensor([0.0, 1.0, 0.5])), "strictly"),
    (lambda: odeint(_field, torch.ones(2), torch.tensor([0.0])), "at least two"),
    (lambda: odeint(_field, torch.ones(2, dtype=torch.long), T01), "floating"),
    (lambda: odeint(_field, (torch.ones(2), torch.ones(2, dtype=torch.float64)), T01), "one dtype"),
    (lambda: odeint(_field, [torch.ones(2)], T01), "tuple of tensors"),
    (lambda: odeint(_nested, torch.ones(2), T01), "nested"),
])
def test_unsupported_calls_are_refused_in_one_line(call, match):
    before = entry_points()
    with pytest.raises(ValueError, match=match) as err, torch.no_grad(), \
            substituted(SolveSpec("rk4", steps=2)):
        call()
    assert "\n" not in str(err.value) and str(err.value).startswith("substituted odeint: ")
    assert_restored(before)


def test_dense_output_and_events_are_the_only_refused_entries():
    field, z0 = Field(), circles(2, 12)[0]
    before = entry_points()
    refused = {"odeint_dense": lambda z: torchdiffeq.odeint_dense(field, z, T01[0], T01[1], method="dopri5"),
               "event_fn": lambda z: torchdiffeq.odeint_event(field, z, T01[0],
                                                              event_fn=lambda t, y: y.sum() - 10.0)}
    for match, call in refused.items():
        with pytest.raises(ValueError, match=match) as err, torch.no_grad(), \
                substituted(SolveSpec("rk4", steps=2)) as probe:
            call(z0)
        assert "\n" not in str(err.value) and probe.n_calls == 0
        assert_restored(before)
    # Outside the block they are torchdiffeq's, as before.
    with torch.no_grad():
        assert callable(refused["odeint_dense"](z0))  # torchdiffeq's dense output function


def test_nested_substitution_and_adjoint_without_a_module_are_refused():
    before = entry_points()
    with substituted(SolveSpec("euler", steps=1)):
        with pytest.raises(ValueError, match="do not nest"):
            with substituted(SolveSpec("euler", steps=2)):
                pass
        # The outer block is still in force.
        with torch.no_grad():
            odeint(_field, torch.ones(2), T01)
    assert_restored(before)
    with pytest.raises(ValueError, match="nn.Module"), substituted(SolveSpec("euler", steps=2, adjoint=True)):
        odeint(_field, torch.ones(2), T01)
    assert_restored(before)


# -- evaluation rows: plain model vs the interface ----------------------------------------------

ROW_SPECS = [SolveSpec("euler", steps=4), SolveSpec("euler", steps=32), SolveSpec("rk4", steps=8),
             SolveSpec("dopri5", rtol=1e-3, atol=1e-3),
             SolveSpec("dopri5", rtol=1e-9, atol=1e-9, max_steps=3)]  # fails: max_steps


@pytest.mark.parametrize("spec", ROW_SPECS, ids=lambda s: f"{s.label()}-max{s.max_steps}")
def test_evaluate_plain_rows_equal_the_interface_rows(coarse_model, spec):
    x, y = circles(50, 13)
    data = DataSplits(x[:0], y[:0], x, y, n_classes=2)
    kept_plain, kept_pieces = [], []
    plain = evaluate_plain(coarse_model, data, spec, 16, states=kept_plain)
    pieces = evaluate(as_classifier(Pieces(coarse_model)), data, spec, batch_size=16, states=kept_pieces)
    assert plain.keys() == pieces.keys()
    for key in plain:
        if key == "eval_seconds":
            continue
        a, b = plain[key], pieces[key]
        if isinstance(a, float) and math.isnan(a):
            assert isinstance(b, float) and math.isnan(b), key
        else:
            assert a == b, (key, a, b)
    assert len(kept_plain) == len(kept_pieces)
    for a, b in zip(kept_plain, kept_pieces):
        assert torch.equal(a, b)
    if spec.max_steps == 3:
        assert plain["status"] == "max_steps" and kept_plain == []
    else:
        assert plain["status"] == "ok" and 0.0 <= plain["accuracy"] <= 1.0
    if spec.steps is not None:
        assert plain["nfe"] == spec.steps * {"euler": 1, "rk4": 4}[spec.solver]


def test_evaluate_plain_accuracy_moves_with_the_solver(coarse_model):
    x, y = circles(200, 14)
    data = DataSplits(x[:0], y[:0], x, y, n_classes=2)
    rows = {s: evaluate_plain(coarse_model, data, SolveSpec("euler", steps=s), 64) for s in (4, 64)}
    with torch.no_grad():
        own = (coarse_model(x).argmax(1) == y).float().mean().item()
    assert rows[4]["accuracy"] == pytest.approx(own, abs=0.011)
    assert rows[4]["accuracy"] != rows[64]["accuracy"]


def test_evaluate_plain_needs_an_odeint_call():
    with pytest.raises(ValueError, match="no torchdiffeq odeint call"):
        x, y = circles(4, 15)
        evaluate_plain(nn.Linear(2, 2), DataSplits(x[:0], y[:0], x, y, n_classes=2),
                       SolveSpec("euler", steps=2), 4)
