"""Solver substitution of torchode's ``solve_ivp`` (robustbench_ode/harness/torchode_calls.py): an
unmodified torchode model, tested with the package's solvers.

The example model is written as a user would write it, with ``from torchode import solve_ivp`` at
the top of this module (rebound inside the blocks like any module global) and ``torchode.solve_ivp``
inside ``forward``. Originals are kept in locals or containers, never in module globals.
"""

import importlib
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

torchode = pytest.importorskip("torchode")
from torchode import solve_ivp  # noqa: E402

import robustbench_ode as rb  # noqa: E402
from robustbench_ode.core.schema import RESULT_NAMES  # noqa: E402
from robustbench_ode.harness.substitution import substituted  # noqa: E402
from robustbench_ode.models.spec import SolveSpec  # noqa: E402
from robustbench_ode.solvers import solve  # noqa: E402
from robustbench_ode.solvers.torchode_backend import STEPPERS  # noqa: E402

T01 = torch.tensor([0.0, 1.0])
STAGES = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}


class Field(nn.Module):
    """f(t, y) = net(y) (torchode passes t of shape (batch,); the package's solvers a scalar)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
        with torch.no_grad():  # a strong field, so that the solver matters
            for m in self.net:
                if isinstance(m, nn.Linear):
                    m.weight.mul_(3.0)

    def forward(self, t, y):
        return self.net(y)


class Plain(nn.Module):
    """A neural ODE classifier as written with torchode: tsit5 with solve_ivp's default controller."""

    def __init__(self) -> None:
        super().__init__()
        self.lift, self.f, self.out = nn.Linear(2, 2), Field(), nn.Linear(2, 2)

    def forward(self, x):
        return self.out(torchode.solve_ivp(self.f, self.lift(x), T01, method="tsit5").ys[:, -1])


class Pieces(nn.Module):
    """The same model (shared modules) through the benchmark interface."""

    def __init__(self, m: Plain) -> None:
        super().__init__()
        self.input_map, self.field, self.head = m.lift, m.f, m.out


class FixedStep(Plain):
    """tsit5 on a fixed grid of 4 steps: torchode's FixedStepController with dt0 = 1/4."""

    def forward(self, x):
        z = self.lift(x)
        sol = solve_ivp(self.f, z, T01, controller=torchode.FixedStepController(),
                        dt0=torch.full((len(z),), 0.25))
        return self.out(sol.ys[:, -1])


def data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x.norm(dim=1) > 1.0).long()


def entry_points() -> dict[str, object]:
    """Every place solve_ivp and the guarded solver methods are reachable from (no globals kept)."""
    out = {"torchode.solve_ivp": torchode.solve_ivp,
           "torchode.interface.solve_ivp": sys.modules["torchode.interface"].solve_ivp,
           "test module global solve_ivp": sys.modules[__name__].solve_ivp}
    for cls in (torchode.AutoDiffAdjoint, torchode.BacksolveAdjoint, torchode.JointBacksolveAdjoint):
        out[f"{cls.__name__}.solve"] = vars(cls)["solve"]
    return out


def assert_restored(before: dict[str, object]) -> None:
    after = entry_points()
    for key in before:
        assert after[key] is before[key], key


# -- benchmark(): the same rows as the interface ----------------------------------------------

def test_plain_torchode_model_gets_the_interface_rows():
    torch.manual_seed(0)
    model, (x, y) = Plain().eval(), data(120, 1)
    grid = [{"solver": "euler", "steps": [1, 8]}, {"solver": "rk4", "steps": [4]},
            {"solver": "tsit5", "steps": [4]}]
    before = entry_points()
    plain = rb.benchmark(model, (x, y), grid, batch_size=64, model_label="m", diagnostics=False)
    assert_restored(before)
    pieces = rb.benchmark(Pieces(model), (x, y), grid, train={"solver": "tsit5", "tol": 1e-7},
                          batch_size=64, model_label="m", diagnostics=False)
    # train read from the model's solve_ivp call: tsit5 at torchode's default tolerances
    assert plain.inferred and plain.train == pieces.train == SolveSpec("tsit5", rtol=1e-7, atol=1e-7)
    cols = [c for c in RESULT_NAMES if c != "eval_seconds"]
    a, b = plain.table[cols].reset_index(drop=True), pieces.table[cols].reset_index(drop=True)
    assert a.equals(b), a.compare(b) if a.shape == b.shape else (a, b)
    assert plain.table["status"].eq("ok").all()
    # The euler@8 row is the package's Euler solve of the same modules, evaluated by hand.
    rows = plain.table.set_index(["test_solver", "test_steps"], drop=False)
    with torch.no_grad():
        z = solve(model.f, model.lift(x), "euler", steps=8).z
    accuracy = (model.out(z).argmax(1) == y).float().mean().item()
    assert rows.loc[("euler", 8), "accuracy"] == pytest.approx(accuracy)
    assert rows.loc[("euler", 8), "nfe"] == 8 and rows.loc[("rk4", 4), "nfe"] == 16
    assert rows.loc[("euler", 1), "accuracy"] != rows.loc[("euler", 8), "accuracy"]


# -- what a substituted call computes and counts ----------------------------------------------

@pytest.mark.parametrize(("solver", "steps"), [("euler", 8), ("midpoint", 8), ("heun", 5), ("rk4", 8)])
def test_nfe_is_steps_times_stages(solver, steps):
    torch.manual_seed(1)
    field, calls = Field(), []

    def counting(t, y):
        calls.append((t.dtype, tuple(t.shape)))
        return field(t, y)

    y0 = data(6, 2)[0]
    with torch.no_grad(), substituted(SolveSpec(solver, steps=steps)) as probe:
        sol = solve_ivp(counting, y0, T01.double(), method="dopri5")
    assert probe.stats.nfe == steps * STAGES[solver] == len(calls)
    assert set(calls) == {(torch.float64, (6,))}  # t per sample in t_eval's dtype, as torchode passes it
    assert probe.stats.steps == steps and probe.n_calls == 1 and probe.calls[0].entry == "solve_ivp"
    assert sol.stats["n_f_evals"].tolist() == [len(calls)] * 6 and sol.status.tolist() == [0] * 6
    assert sol.ys.shape == (6, 2, 2) and torch.equal(sol.ys[:, 0], y0)
    assert torch.equal(sol.ys[:, -1], solve(field, y0, solver, steps=steps).z)
    assert torch.equal(probe.final_state, sol.ys[:, -1])


def test_the_models_own_configuration_gives_its_own_result():
    torch.manual_seed(2)
    model, x = FixedStep().eval(), data(16, 3)[0]
    with torch.no_grad():
        own_sol = torchode.solve_ivp(model.f, model.lift(x), T01, controller=torchode.FixedStepController(),
                                     dt0=torch.full((16,), 0.25))
        own = model(x)
        with substituted(SolveSpec("tsit5", steps=4)) as probe:
            same = model(x)
        with substituted(SolveSpec("euler", steps=64)) as fine:
            other = model(x)
    torch.testing.assert_close(same, own, rtol=1e-5, atol=1e-5)
    stages, fsal = STEPPERS["Tsit5"]
    assert probe.stats.nfe == int(own_sol.stats["n_f_evals"][0]) == 1 + 4 * (stages - fsal)
    assert (other - own).abs().max() > 1e-3 and fine.stats.nfe == 64
    req = probe.requested
    assert (req.entry, req.method, req.options["controller"], req.options["dt0"]) == (
        "solve_ivp", "tsit5", "FixedStepController", 0.25)
    assert probe.train_spec() == SolveSpec("tsit5", steps=4)


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, SolveSpec("tsit5", rtol=1e-7, atol=1e-7)),
    ({"method": "dopri5", "controller": torchode.IntegralController(atol=1e-4, rtol=1e-3)},
     SolveSpec("dopri5_torchode", rtol=1e-3, atol=1e-4)),
    ({"method": "heun", "max_steps": 50}, SolveSpec("heun_torchode", rtol=1e-7, atol=1e-7, max_steps=50)),
    ({"method": "heun", "controller": torchode.FixedStepController(), "dt0": torch.tensor(0.1)},
     SolveSpec("heun_torchode", steps=10)),
])
def test_train_configuration_is_inferred(kwargs, expected):
    with torch.no_grad(), substituted(SolveSpec("euler", steps=2)) as probe:
        solve_ivp(lambda t, y: -y, torch.ones(3, 2), T01, **kwargs)
    assert probe.train_spec() == expected


def test_multi_point_t_eval_args_and_terms():
    torch.manual_seed(3)
    field, y0 = Field(), data(5, 4)[0]
    t = torch.tensor([0.0, 0.25, 1.0])
    with torch.no_grad(), substituted(SolveSpec("euler", steps=8)) as probe:
        sol = solve_ivp(field, y0, t.expand(5, 3))  # (batch, n_t) with equal rows
        scaled = solve_ivp(lambda s, y, k: k * field(s, y), y0, T01, args=0.5)
        term = solve_ivp(torchode.ODETerm(field), y0, T01)
    z1 = solve(field, y0, "euler", steps=2, t_span=(0.0, 0.25)).z
    z2 = solve(field, z1, "euler", steps=6, t_span=(0.25, 1.0)).z
    assert sol.ys.shape == (5, 3, 2) and sol.ts.shape == (5, 3)
    assert torch.equal(sol.ys[:, 1], z1) and torch.equal(sol.ys[:, 2], z2)
    assert torch.equal(sol.stats["n_initialized"], torch.full((5,), 3))
    assert torch.equal(scaled.ys[:, -1], solve(lambda s, y: 0.5 * field(s, y), y0, "euler", steps=8).z)
    assert torch.equal(term.ys[:, -1], solve(field, y0, "euler", steps=8).z)
    assert probe.n_calls == 3 and probe.stats.nfe == 24
    assert probe.drift_states().shape == (5, 2 * 2 + 2 + 2)  # t[1:] of the first call, then z(T)


def test_a_failed_solve_is_a_status_with_nan_states():
    y0 = data(3, 9)[0]
    with torch.no_grad(), substituted(SolveSpec("dopri5", rtol=1e-9, atol=1e-9, max_steps=2)) as probe:
        sol = solve_ivp(Field(), y0, torch.tensor([0.0, 0.5, 1.0]))
    assert probe.stats.status.value == "max_steps"
    assert sol.status.tolist() == [3] * 3 and sol.stats["n_initialized"].tolist() == [1] * 3
    assert torch.equal(sol.ys[:, 0], y0) and torch.isnan(sol.ys[:, 2]).all()


def test_gradients_flow_through_the_substituted_solve():
    torch.manual_seed(4)
    field, y0 = Field(), data(4, 5)[0]
    grads = []
    for spec in (SolveSpec("rk4_38", steps=16), SolveSpec("rk4_38", steps=16, adjoint=True)):
        field.zero_grad()
        with substituted(spec):
            solve_ivp(field, y0, T01).ys[:, -1].pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in field.parameters()]))
    field.zero_grad()
    solve(field, y0, "rk4_38", steps=16).z.pow(2).sum().backward()
    direct = torch.cat([p.grad.flatten() for p in field.parameters()])
    torch.testing.assert_close(grads[0], direct, rtol=0, atol=0)
    torch.testing.assert_close(grads[1], direct, rtol=1e-3, atol=1e-4)


# -- restoring -----------------------------------------------------------------------------------

USER_MODULE = '''
import torch
from torchode import solve_ivp as integrate

def final(f, y):
    return integrate(f, y, torch.tensor([0.0, 1.0]), method="tsit5").ys[:, -1]
'''


class Boom(RuntimeError):
    pass


def test_solve_ivp_restored_after_the_block_and_after_an_exception(tmp_path, monkeypatch):
    (tmp_path / "user_torchode_model.py").write_text(USER_MODULE)
    (tmp_path / "late_torchode_module.py").write_text("from torchode import solve_ivp as late\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("user_torchode_model", "late_torchode_module"):
        sys.modules.pop(name, None)
    user = importlib.import_module("user_torchode_model")
    before = entry_points()
    original = user.integrate
    field, y0 = Field(), data(3, 6)[0]
    with torch.no_grad(), substituted(SolveSpec("rk4", steps=4)) as probe:
        inside = entry_points()
        out = user.final(field, y0)
        late = importlib.import_module("late_torchode_module")
        late_out = late.late(field, y0, T01, method="tsit5").ys[:, -1]
        # no name is rebound: the model's references reach the patched solver classes
        assert user.integrate is original and late.late is original
    assert all((inside[k] is not before[k]) == k.endswith(".solve") for k in before)
    assert probe.n_calls == 2 and probe.calls[0].method == "tsit5"
    assert torch.equal(out, solve(field, y0, "rk4", steps=4).z) and torch.equal(late_out, out)
    assert_restored(before)

    def exploding(t, y):
        raise Boom("inside the model")

    with pytest.raises(Boom), substituted(SolveSpec("rk4", steps=2)):
        torchode.solve_ivp(exploding, y0, T01)
    assert_restored(before)
    with pytest.raises(Boom), torch.no_grad(), substituted(SolveSpec("tsit5", rtol=1e-3, atol=1e-3)):
        user.final(field, y0)
        raise Boom("after the model")
    assert_restored(before)
    # Afterwards torchode's own solver runs again (its own counters: the PID controller's steps).
    with torch.no_grad():
        sol = user.final(field, y0), torchode.solve_ivp(field, y0, T01)
    torch.testing.assert_close(sol[0], sol[1].ys[:, -1], rtol=0, atol=0)
    for name in ("user_torchode_model", "late_torchode_module"):
        sys.modules.pop(name, None)


def test_package_solves_and_other_threads_are_not_substituted():
    field, y0 = Field(), data(3, 7)[0]
    with torch.no_grad():
        direct = solve(field, y0, "tsit5", rtol=1e-4, atol=1e-4, adjoint=True)
        own = torchode.solve_ivp(field, y0, T01)
        seen = []
        with substituted(SolveSpec("euler", steps=2)) as probe:
            inside = solve(field, y0, "tsit5", rtol=1e-4, atol=1e-4, adjoint=True)
            worker = threading.Thread(target=lambda: seen.append(torchode.solve_ivp(field, y0, T01)))
            worker.start()
            worker.join()
    assert probe.n_calls == 0
    assert torch.equal(inside.z, direct.z) and inside.stats.nfe == direct.stats.nfe
    assert torch.equal(seen[0].ys, own.ys)


# -- refusals ----------------------------------------------------------------------------------

def _field(t, y):
    return -y


def _nested(t, y):
    return solve_ivp(_field, y, T01).ys[:, -1] - y


class CustomTerm(torchode.ODETerm):
    def vf(self, t, y, stats, args):
        return 2 * super().vf(t, y, stats, args)


Y = torch.ones(2, 3)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: solve_ivp(_field, Y, torch.tensor([[0.0, 1.0], [0.0, 2.0]])), "per-sample evaluation times"),
    (lambda: solve_ivp(_field, Y, T01, t_span=(torch.tensor(-1.0), torch.tensor(1.0))), "t_span"),
    (lambda: solve_ivp(_field, Y, None, t_span=(torch.zeros(2), torch.tensor([1.0, 2.0]))), "differs"),
    (lambda: solve_ivp(_field, Y, torch.tensor([0.0, 1.0, 0.5])), "strictly"),
    (lambda: solve_ivp(_field, Y, torch.tensor([0, 1])), "floating"),
    (lambda: solve_ivp(_field, Y, T01.clone().requires_grad_()), "requires gradient"),
    (lambda: solve_ivp(_nested, Y, T01), "nested"),
])
def test_unsupported_calls_are_refused_in_one_line(call, match):
    before = entry_points()
    with pytest.raises(ValueError, match=match) as err, substituted(SolveSpec("rk4", steps=2)):
        call()
    assert "\n" not in str(err.value) and str(err.value).startswith("substituted solve_ivp: ")
    assert_restored(before)


@pytest.mark.parametrize("call", [
    lambda: solve_ivp(_field, Y, T01.expand(3, 2)),
    lambda: solve_ivp(_field, Y, None),
    lambda: solve_ivp(_field, Y, T01, method="rk45"),
    lambda: solve_ivp(_field, torch.ones(3), T01),
])
def test_what_torchode_rejects_itself_is_its_own_error(call):
    """Rejected by torchode before its solver runs: the same error with and without the block."""
    before = entry_points()
    with pytest.raises(Exception) as outside:
        call()
    with pytest.raises(type(outside.value)), substituted(SolveSpec("rk4", steps=2)) as probe:
        call()
    assert probe.n_calls == 0
    assert_restored(before)


def test_every_way_of_holding_torchode_is_substituted():
    """A closure, an attribute, a partial, a term subclass, the model's own solver object: each
    solve is the spec's (rk4 with 2 steps), and outside the block torchode's own again."""
    y0 = data(2, 8)[0]

    def make_closure():
        captured = torchode.solve_ivp
        return lambda y: captured(_field, y, T01).ys[:, -1]

    def by_hand(y):  # the model runs torchode's solver objects itself
        term = torchode.ODETerm(_field)
        solver = torchode.AutoDiffAdjoint(torchode.Tsit5(term=term), torchode.IntegralController(
            1e-3, 1e-3, term=term))
        return solver.solve(torchode.InitialValueProblem(y, t_eval=T01.expand(len(y), 2))).ys[:, -1]

    holder = type("Holder", (), {})()
    holder.ivp = torchode.solve_ivp
    import functools
    partial = functools.partial(torchode.solve_ivp, _field, t_eval=T01)
    ways = {"closure": make_closure(), "by_hand": by_hand,
            "attribute": lambda y: holder.ivp(_field, y, T01).ys[:, -1],
            "partial": lambda y: partial(y).ys[:, -1]}
    with torch.no_grad():
        expected = solve(_field, y0, "rk4", steps=2).z
        own = {name: way(y0) for name, way in ways.items()}
        for name, way in ways.items():
            with substituted(SolveSpec("rk4", steps=2)) as probe:
                out = way(y0)
            assert probe.n_calls == 1 and probe.stats.nfe == 8, name
            torch.testing.assert_close(out, expected, rtol=0, atol=0, msg=name)
            assert not torch.equal(own[name], expected), name  # torchode's own solver differs
            torch.testing.assert_close(way(y0), own[name], rtol=0, atol=0, msg=name)
        with substituted(SolveSpec("rk4", steps=2)):
            doubled = solve_ivp(CustomTerm(_field), y0, T01).ys[:, -1]  # through the term's own vf
        torch.testing.assert_close(doubled, solve(lambda t, y: 2 * _field(t, y), y0, "rk4", steps=2).z)


def test_without_torchode_the_odeint_substitution_is_unchanged():
    code = ("import sys; sys.modules['torchode'] = None  # as if not installed\n"
            "import torch, torchdiffeq\n"
            "from robustbench_ode.harness.substitution import substituted\n"
            "from robustbench_ode.models.spec import SolveSpec\n"
            "with torch.no_grad(), substituted(SolveSpec('euler', steps=4)) as probe:\n"
            "    torchdiffeq.odeint(lambda t, z: -z, torch.ones(2, 2), torch.tensor([0.0, 1.0]))\n"
            "assert probe.stats.nfe == 4 and 'robustbench_ode.harness.torchode_calls' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
