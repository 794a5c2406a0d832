"""What landing on t1 changes for torchdiffeq's adaptive solvers: error, NFE and the adjoint.

torchdiffeq's adaptive solvers step past the end time and return their dense-output interpolant
there unless ``step_t`` lists it; :mod:`robustbench_ode.solvers.adaptive` lists both ends. This
study measures both ways on a 3-D linear ODE with a known solution, against scipy's ``solve_ivp``
with the same embedded pair, and the adjoint's gradient of z(1) with respect to z0 (known too:
``expm(A)``)::

    python -m robustbench_ode.studies.endpoint            # the table of docs/solvers.md
    python -m robustbench_ode.studies.endpoint --tol 1e-6

Printed as a Markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch
import torchdiffeq
from scipy.integrate import solve_ivp

from ..core.console import configure

log = logging.getLogger(__name__)  # shown by main's configure() (core/console.py)

SCIPY = {"bosh3": "RK23", "dopri5": "RK45", "dopri8": "DOP853", "adaptive_heun": None, "fehlberg2": None}
A = torch.tensor([[-0.5, 2.0, 0.0], [-2.0, -0.5, 0.3], [0.0, -0.3, -1.0]], dtype=torch.float64)
Z0 = torch.tensor([1.0, 0.5, -0.3], dtype=torch.float64)


class Counted(torch.nn.Module):
    """The linear field, counting its calls (an nn.Module so the adjoint can take it)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return z @ A.T


def solve(method: str, tol: float, land: bool, adjoint: bool = False) -> tuple[float, int, float]:
    """Error of z(1), forward NFE, and (adjoint) the error of dz(1)/dz0 against expm(A)."""
    f = Counted()
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    options = {"step_t": t} if land else {}
    z0 = Z0.clone().requires_grad_(adjoint)
    odeint = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
    kwargs = {"adjoint_params": (), "adjoint_options": dict(options)} if adjoint else {}
    z1 = odeint(f, z0, t, method=method, rtol=tol, atol=tol, options=options, **kwargs)[-1]
    nfe = f.calls
    exact = torch.linalg.matrix_exp(A)
    err = float((z1.detach() - exact @ Z0).norm())
    grad_err = float("nan")
    if adjoint:
        jac = torch.stack([torch.autograd.grad(z1[i], z0, retain_graph=i < 2)[0] for i in range(3)])
        grad_err = float((jac - exact).norm())
    return err, nfe, grad_err


def scipy_error(method: str | None, tol: float) -> tuple[float, int] | None:
    if method is None:
        return None
    a = A.numpy()
    ref = solve_ivp(lambda t, z: a @ z, (0.0, 1.0), Z0.numpy(), method=method, rtol=tol, atol=tol)
    exact = (torch.linalg.matrix_exp(A) @ Z0).numpy()
    return float(np.linalg.norm(ref.y[:, -1] - exact)), int(ref.nfev)


def main(argv: list[str] | None = None) -> None:
    configure()  # the study's table on stdout through the package log
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tol", type=float, default=1e-8)
    tol = p.parse_args(argv).tol
    log.info(f"rtol = atol = {tol:g}, dz/dt = A z on [0, 1], float64\n")
    log.info("| method | past t1, interpolant: error / NFE | landing on t1: error / NFE "
             "| scipy pair: error / NFE | adjoint dz(1)/dz0 error: past / landing |")
    log.info("|---|---|---|---|---|")
    for method, pair in SCIPY.items():
        e0, n0, _ = solve(method, tol, land=False)
        e1, n1, _ = solve(method, tol, land=True)
        _, _, g0 = solve(method, tol, land=False, adjoint=True)
        _, _, g1 = solve(method, tol, land=True, adjoint=True)
        ref = scipy_error(pair, tol)
        scipy_txt = f"{pair}: {ref[0]:.2e} / {ref[1]}" if ref else "none"
        log.info(f"| {method} | {e0:.2e} / {n0} | {e1:.2e} / {n1} | {scipy_txt} | {g0:.2e} / {g1:.2e} |")


if __name__ == "__main__":
    main()
