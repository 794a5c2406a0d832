"""A plain FFJORD-style continuous normalising flow, written as CNF code is written (FFJORD's
``ODEfunc`` / ``CNF``, Grathwohl et al. 2019): ``torchdiffeq.odeint`` on the tuple state
(z, delta_logp), the field returning (f, -tr(df/dz)), log p(x) = log N(z(T)) - delta_logp(T).
Nothing package-specific: ``rb.benchmark`` tests it under solver substitution
(docs/cnf.md, "Plain models"). Used by tests/test_benchmark_flow.py (the same weights as the
``cnf`` family give the same rows) and tests/perf/test_cnf_perf.py (its hand-written training
step).

The MLP is the family's layout (Linear(D + 1, h), tanh, ..., Linear(h, D), t as the last input
column), so :func:`family_twin` can load the same weights into a ``cnf`` model.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchdiffeq import odeint


def divergence_exact(f: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """tr(df/dz) per sample, one vector-Jacobian product per dimension (FFJORD's
    ``divergence_bf``)."""
    return sum(torch.autograd.grad(f[:, i].sum(), z, create_graph=True)[0][:, i] for i in range(z.shape[1]))


def divergence_hutchinson(f: torch.Tensor, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """e^T (df/dz) e per sample (FFJORD's ``divergence_approx``)."""
    (e_dzdx,) = torch.autograd.grad(f, z, e, create_graph=True)
    return (e_dzdx * e).sum(1)


class Velocity(nn.Module):
    """f(t, z): an MLP on [z, t]."""

    def __init__(self, dim: int = 2, hidden: int = 32, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim + 1
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, dim))

    def forward(self, t, z):
        return self.net(torch.cat([z, t.expand(z.shape[0], 1)], 1))


class ODEfunc(nn.Module):
    """FFJORD's ODEfunc: (z, delta_logp) -> (f, -div f); Hutchinson's probe drawn once per solve."""

    def __init__(self, velocity: Velocity, trace: str = "exact") -> None:
        super().__init__()
        self.velocity, self.trace = velocity, trace
        self._e: torch.Tensor | None = None

    def before_odeint(self) -> None:
        self._e = None

    def forward(self, t, states):
        z = states[0]
        with torch.set_grad_enabled(True):
            z.requires_grad_(True)
            dz = self.velocity(t, z)
            if self.trace == "exact":
                div = divergence_exact(dz, z)
            else:
                if self._e is None:
                    self._e = torch.randn_like(z)
                div = divergence_hutchinson(dz, z, self._e)
        return dz, -div.view(-1, 1)


class FFJORD(nn.Module):
    """A CNF from data (t = 0) to the base N(0, I) (t = T), solved as the user asks (``method``,
    ``options``, ``rtol``/``atol``: torchdiffeq's)."""

    def __init__(self, dim: int = 2, hidden: int = 32, depth: int = 2, trace: str = "exact",
                 T: float = 1.0, method: str = "euler", options: dict | None = None,
                 rtol: float = 1e-5, atol: float = 1e-5) -> None:
        super().__init__()
        self.odefunc = ODEfunc(Velocity(dim, hidden, depth), trace)
        self.register_buffer("t", torch.tensor([0.0, T]))
        self.method, self.options = method, options if options is not None else {"step_size": T / 8}
        self.rtol, self.atol = rtol, atol

    def _odeint(self, func, y0, t):
        return odeint(func, y0, t, method=self.method, options=self.options, rtol=self.rtol, atol=self.atol)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        self.odefunc.before_odeint()
        z, delta_logp = self._odeint(self.odefunc, (x, x.new_zeros(x.shape[0], 1)), self.t)
        logpz = -0.5 * (z[-1].pow(2) + math.log(2 * math.pi)).sum(1)
        return logpz - delta_logp[-1].squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_prob(x)

    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Base draws z -> data: the flow backwards, no trace needed."""
        return self._odeint(self.odefunc.velocity, z, self.t.flip(0))[-1]


def family_twin(plain: FFJORD, hidden: int = 32, depth: int = 2, trace: str = "exact"):
    """The ``cnf`` family model with ``plain``'s weights."""
    import robustbench_ode as rb

    dim = plain.odefunc.velocity.net[-1].out_features
    model = rb.MODELS.get("cnf")((dim,), 0, hidden=hidden, depth=depth, activation="tanh", trace=trace,
                                 t1=float(plain.t[-1]))
    model.velocity.net.load_state_dict(plain.odefunc.velocity.net.state_dict())
    return model


def train_step(model: FFJORD, x: torch.Tensor, opt: torch.optim.Optimizer) -> float:
    """One hand-written maximum-likelihood step: mean NLL in nats per dimension."""
    loss = -model.log_prob(x).mean() / x.shape[1]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())
