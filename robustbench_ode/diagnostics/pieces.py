"""The computations the diagnosis is made of: train points, one-step Jacobians, reference steps,
the transported local errors and the classes the head gives them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..core.status import Status
from ..solvers import solve
from . import jacobians as jac
from . import logdet
from .arguments import one_line

NAN = float("nan")


class Failed(Exception):
    """A solve inside the diagnostics did not finish: the diagnosis gets status ``failed``."""


def on_rows(fn: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, rows: torch.Tensor,
             out_shape: tuple[int, ...]) -> torch.Tensor:
    """``fn`` on the rows of ``z`` selected by the mask ``rows``; NaN elsewhere. A batch solve is
    never handed a NaN row (one would stall torchdiffeq's step control for the whole batch)."""
    out = torch.full((z.shape[0],) + out_shape, NAN, dtype=z.dtype, device=z.device)
    if bool(rows.any()):
        out[rows] = fn(z[rows])
    return out


def accepted_grid(field, z0, solver, tol, t_span, max_steps) -> list[float]:
    """The accepted step grid of a tolerance-controlled solve of the whole batch (torchdiffeq's
    ``callback_accept_step``), with the options the project's AdaptiveSolver passes."""
    import torchdiffeq

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.starts: list[float] = []

        def forward(self, t, z):
            return field(t, z)

        def callback_accept_step(self, t0, y0, dt):
            self.starts.append(float(t0))

    rec = Recorder()
    t = torch.tensor([t_span[0], t_span[1]], dtype=z0.dtype, device=z0.device)
    try:
        torchdiffeq.odeint(rec, z0, t, method=solver.torchdiffeq_method, rtol=tol, atol=tol,
                           options={"max_num_steps": int(max_steps), "step_t": t})
    except (RuntimeError, AssertionError) as err:
        raise Failed(f"train solve {solver.name}@tol{tol:g}: {str(err).splitlines()[0][:200]}") from None
    return rec.starts + [float(t_span[1])]


def train_points(field, z0, solver, spans):
    """z_0 ... z_N: one solve of ``steps=1`` per span, on the rows still finite."""
    d = jac.state_dim(z0)
    pts = [z0]
    z = z0
    for a, b in spans:
        ok = torch.isfinite(z.flatten(1)).all(1)
        z = on_rows(lambda x, a=a, b=b: solve(field, x, solver.name, steps=1, t_span=(a, b)).z,
                     z, ok, tuple(z0.shape[1:]))
        pts.append(z)
    return torch.stack([p.reshape(p.shape[0], d) for p in pts], 1)


def step_signs(field, points, state_shape, solver, spans, chunk) -> tuple[np.ndarray, np.ndarray]:
    """(B, N) sign and log|det| of the train solver's one-step maps at z_k (NaN for a non-finite
    z_k), one step at a time (the (B, D, D) Jacobians of a step are dropped once used)."""
    signs, logs = [], []
    for k, (a, b) in enumerate(spans):
        z = points[:, k].reshape(-1, *state_shape)
        ok = torch.isfinite(points[:, k]).all(1)
        d = points.shape[-1]
        jk = on_rows(lambda x, a=a, b=b: logdet.step_jacobians(field, x, solver.name, a, b, chunk),
                     z, ok, (d, d))
        sign, log_abs = jac.slogdet(jk)
        signs.append(sign)
        logs.append(log_abs)
    if not signs:
        empty = np.zeros((points.shape[0], 0))
        return empty, empty
    return torch.stack(signs, 1).cpu().numpy(), torch.stack(logs, 1).cpu().numpy()


def isolating(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               out_shape: tuple[int, ...]) -> torch.Tensor:
    """``fn`` on the rows of ``x``; a solve that fails (:class:`Failed`) is retried on each half,
    so a sample the reference cannot integrate costs its own row (NaN), not the batch's. Only a
    failure pays: about 2 log2(B) extra solves per failing sample."""
    try:
        return fn(x)
    except Failed:
        if x.shape[0] == 1:
            return torch.full((1,) + out_shape, NAN, dtype=x.dtype, device=x.device)
        h = x.shape[0] // 2
        return torch.cat([isolating(fn, x[:h], out_shape), isolating(fn, x[h:], out_shape)])


def reference_steps(field, z0, ref, rtol, atol, spans, max_steps, chunk):
    """The reference trajectory on the train grid, (B, N + 1, D), and the log-determinant of its
    flow over each step, (B, N), each step started at the reference's own point z_ref(t_k): by
    Liouville's formula (``logdet.liouville_log_det``), or for the ``exact`` reference the
    log|det| of the closed-form flow's Jacobian. NaN from the step where a sample's reference
    solve fails."""
    state_shape = tuple(z0.shape[1:])
    b, d = z0.shape[0], jac.state_dim(z0)
    z = z0.reshape(b, d)
    pts, logs = [z], []
    for a, t_b in spans:
        def step(x, a=a, t_b=t_b):
            x = x.reshape(-1, *state_shape)
            if getattr(ref, "gridless", False):
                _, log_det = jac.slogdet(jac.exact_flow_jacobians(field, x, a, t_b, chunk))
                x1 = field.exact_flow(x, a, t_b)
            else:
                try:
                    x1, log_det = logdet.liouville_log_det(field, x, (a, t_b), method=ref.torchdiffeq_method,
                                                           rtol=rtol, atol=atol, max_steps=max_steps)
                except RuntimeError as err:
                    raise Failed(str(err)) from None
            return torch.cat([x1.reshape(x.shape[0], d), log_det.reshape(x.shape[0], 1)], 1)

        ok = torch.isfinite(z).all(1)
        res = on_rows(lambda x, step=step: isolating(step, x, (d + 1,)), z, ok, (d + 1,))
        z = res[:, :d]
        pts.append(z)
        logs.append(res[:, d])
    return torch.stack(pts, 1), torch.stack(logs, 1)


def transport(field, points, state_shape, grid, index, ref, rtol, atol, max_steps):
    """w at the grid indices ``index``: the reference flow of z_k from t_k to T (rows with a
    finite z_k; NaN where the reference fails for that sample); w at index N is z_N itself."""
    n = len(grid) - 1
    t1 = float(grid[-1])
    ws = []
    for k in index:
        zk = points[:, k]
        if k == n:
            ws.append(zk)
            continue
        ok = torch.isfinite(zk).all(1)

        def flow(x, k=k):
            sol = solve(field, x.reshape(-1, *state_shape), ref.name, rtol=rtol, atol=atol,
                        t_span=(float(grid[k]), t1), max_steps=max_steps)
            if sol.status is not Status.OK:
                raise Failed(f"{sol.status.value} {sol.stats.message}")
            return sol.z.reshape(x.shape[0], -1)

        d = zk.shape[1]
        ws.append(on_rows(lambda x, flow=flow, d=d: isolating(flow, x, (d,)), zk, ok, (d,)))
    return torch.stack(ws, 1)


def head_classes(head, w: torch.Tensor, state_shape) -> np.ndarray:
    """argmax head(w) for w (B, M + 1, D); -1 where w is not finite."""
    b, m, d = w.shape
    flat = w.reshape(b * m, d)
    ok = torch.isfinite(flat).all(1)
    cls = torch.full((b * m,), -1, dtype=torch.long, device=w.device)
    if bool(ok.any()):
        logits = head(flat[ok].reshape(-1, *state_shape))
        if logits.dim() != 2:
            raise one_line(f"head must return logits (B, classes), got shape {tuple(logits.shape)}")
        cls[ok] = logits.argmax(1)
    return cls.reshape(b, m).cpu().numpy()
