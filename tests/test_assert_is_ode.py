"""rb.assert_is_ode: a coarse Euler-2 model trained here fails with the evidence in the message
(the two accuracies, the solver grid, the verdict); a fine Euler-64 model passes."""

import pytest
import torch
from torch import nn
from torchdiffeq import odeint

import robustbench_ode as rb
from robustbench_ode.core.errors import SuiteError

T01 = torch.tensor([0.0, 1.0])
GRID = [{"solver": "euler", "steps": [2, 64]}]
REF = {"solver": "dopri5", "tol": 1e-5}


class Plain(nn.Module):
    def __init__(self, steps: int) -> None:
        super().__init__()
        self.lift, self.out = nn.Linear(2, 2), nn.Linear(2, 2)
        self.f = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2))
        with torch.no_grad():  # a strong field, so that the step size matters
            for m in self.f:
                if isinstance(m, nn.Linear):
                    m.weight.mul_(3.0)
        self.step_size = 1.0 / steps

    def forward(self, x):
        z = odeint(lambda t, z: self.f(z), self.lift(x), T01, method="euler",
                   options={"step_size": self.step_size})
        return self.out(z[-1])


def rings(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g) * 1.5
    return x, ((x.norm(dim=1) * 2).floor() % 2).long()  # concentric rings: a hard boundary


def trained(steps: int, n: int = 256, iterations: int = 60) -> Plain:
    """Seconds of Adam with the model's own solver (Euler with ``steps`` steps)."""
    torch.manual_seed(0)
    model = Plain(steps)
    x, y = rings(n, 0)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(iterations):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def test_a_coarse_euler_2_model_fails_with_the_evidence():
    with pytest.raises(AssertionError) as err:
        rb.assert_is_ode(trained(2), rings(300, 1), max_gap=0.02, grid=GRID, reference=REF,
                         train={"solver": "euler", "steps": 2})
    message = str(err.value)
    assert message.startswith("The model is not an ODE: its accuracy depends on the solver")
    for evidence in ("Accuracy at the train configuration (euler 2 steps)",
                     "Accuracy under the reference solve (dopri5 tol 1e-05)", "ode_gap = acc_train - acc_ref",
                     "Solver grid:", "test_solver", "euler", "dopri5", "Verdict: resnet"):
        assert evidence in message, evidence


def test_a_fine_euler_64_model_passes():
    result = rb.assert_is_ode(trained(64, n=64, iterations=8), rings(300, 1), max_gap=0.02, grid=GRID,
                              reference=REF)
    gap = float(result.summary["ode_gap"].iloc[0])
    assert abs(gap) <= 0.02 and result.train.steps == 64  # inferred from the model's own call


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.1", True])
def test_a_bad_max_gap_is_a_one_line_error(bad):
    with pytest.raises(SuiteError, match="max_gap"):
        rb.assert_is_ode(Plain(2), rings(10, 0), max_gap=bad)
