"""A fixed-step solve of a dense ReLU field with a hand-derived backward (discretise-then-optimise).

The field is the dense fast path of the package's small fields (``OttConv1d`` with ``fast=True``,
whose convolutions are matrices on the flattened state, and ``MLP`` with ReLU):

    f(u) = relu(... relu(u W_1 + b_1) ...) W_L + b_L,    W_l of shape (in, out),

and the solve is an explicit Runge-Kutta tableau on N equal steps (:mod:`.fixed`). The backward is
the exact adjoint of those discrete steps (the gradient autograd would give, to float rounding):
going back through the steps and, within a step, through the stages in reverse,

    g_k_i = h b_i lam + sum_{j > i} h a_ji g_u_j,     g_u_i = J_f(u_i)^T g_k_i,
    lam_n = lam_{n+1} + sum_i g_u_i,

with each stage's vector-Jacobian product through the layers written out. The weight gradients of
all N x stages evaluations are accumulated as one matrix product per layer at the end (the layer
inputs and the pre-activation gradients of every evaluation are kept side by side).

Written by hand, not left to autograd, because at these sizes (a batch of 128 states of 2-64
numbers) autograd's per-op overhead (building and walking a graph of thousands of small nodes per
iteration) costs more than the arithmetic; this Function records one node for the whole solve.
Training can take it where it applies (:func:`hand_solve`: a fixed-step solve with gradients, no
adjoint, no autocast, a field offering ``dense_relu_layers()``, i.e. the fast path that
``training.fast: false`` turns off), but only with ``HAND_BACKWARD`` set: it is off by default
because a first sanity check on the loaded development machine (not a measurement) found the
solve's forward + backward slower than autograd's, not faster; tests/perf/test_hand_backward.py
compares both with a hand-written loop for the lead's measurement on an idle machine.
``dense_solve`` is tested equal to autograd through :func:`.fixed.integrate` on every registered
fixed-step solver (tests/test_dense_backward.py).
"""

from __future__ import annotations

import torch

from .base import Solver
from .solution import Solution, SolveStats, finite_status

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # (W (in, out), b (out,)) per layer

# Whether training's fixed-step solves take the hand-derived backward (module docstring: off until
# measured faster on an idle machine).
HAND_BACKWARD = False


def _coefficients(solver: Solver, h: float) -> tuple[list[list[tuple[int, float]]], list[tuple[int, float]]]:
    tab = solver.tableau
    if tab is None:
        raise ValueError(f"solver {solver.name!r} has no tableau: dense_solve takes fixed-step solvers")
    rows = [[(j, h * aij) for j, aij in enumerate(row) if aij != 0.0] for row in tab.a]
    weights = [(i, h * bi) for i, bi in enumerate(tab.b) if bi != 0.0]
    return rows, weights


def _field(u: torch.Tensor, params: tuple[torch.Tensor, ...], keep: list[torch.Tensor] | None):
    """f(u); ``keep`` collects each layer's input (the ReLU outputs: their sign is the mask)."""
    x = u
    last = len(params) // 2 - 1
    for layer in range(last + 1):
        w, b = params[2 * layer], params[2 * layer + 1]
        if keep is not None:
            keep.append(x)
        x = torch.addmm(b, x, w)
        if layer < last:
            x = x.relu_()
    return x


class _DenseSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z0, rows, weights, steps, *params):
        keep: list[torch.Tensor] = []  # per evaluation, per layer: the layer's input
        z = z0
        for _ in range(steps):
            ks: list[torch.Tensor] = []
            for row in rows:
                u = z
                for j, alpha in row:  # the same operations as fixed.integrate: the same rounding
                    u = torch.add(u, ks[j], alpha=alpha)
                ks.append(_field(u, params, keep))
            z = z.clone()
            for i, beta in weights:
                z.add_(ks[i], alpha=beta)
        ctx.rows, ctx.weights, ctx.steps, ctx.n_params = rows, weights, steps, len(params)
        ctx.save_for_backward(*params, *keep)
        return z

    @staticmethod
    def backward(ctx, lam):
        rows, weights, steps = ctx.rows, ctx.weights, ctx.steps
        saved = ctx.saved_tensors
        n_params = ctx.n_params
        params, keep = saved[:n_params], saved[n_params:]
        n_layers = n_params // 2
        w_t = [params[2 * layer].t() for layer in range(n_layers)]  # once, not per evaluation
        stages = len(rows)
        beta = dict(weights)
        grads_pre: list[list] = [[None] * (steps * stages) for _ in range(n_layers)]
        lam = lam.contiguous()
        for n in reversed(range(steps)):
            g_u: list[torch.Tensor | None] = [None] * stages
            for i in reversed(range(stages)):
                e = n * stages + i
                g = torch.mul(lam, beta[i]) if i in beta else torch.zeros_like(lam)
                for j in range(i + 1, stages):
                    for jj, alpha in rows[j]:
                        if jj == i:
                            g.add_(g_u[j], alpha=alpha)
                # through the layers, last to first: g is the gradient at the layer's output;
                # ReLU's backward is one aten op (threshold_backward) on the kept ReLU output
                for layer in reversed(range(n_layers)):
                    if layer < n_layers - 1:
                        g = torch.ops.aten.threshold_backward(g, keep[e * n_layers + layer + 1], 0)
                    grads_pre[layer][e] = g
                    g = torch.mm(g, w_t[layer])
                g_u[i] = g
            for g in g_u:
                lam = torch.add(lam, g)
        out = []
        for layer in range(n_layers):
            inputs = torch.cat([keep[e * n_layers + layer] for e in range(steps * stages)], 0)
            pre = torch.cat(grads_pre[layer], 0)
            out += [inputs.t() @ pre, pre.sum(0)]  # all evaluations' weight gradients: one product
        return (lam, None, None, None, *out)


def dense_solve(layers: Layers, z0: torch.Tensor, solver: Solver, steps: int,
                t_span: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """z(t1) of dz/dt = f(z) (the dense ReLU field of ``layers``) by ``steps`` fixed steps of
    ``solver``; its backward is hand-derived (module docstring). ``z0`` is (B, D)."""
    h = (float(t_span[1]) - float(t_span[0])) / int(steps)
    rows, weights = _coefficients(solver, h)
    params = tuple(t for wb in layers for t in wb)
    return _DenseSolve.apply(z0, rows, weights, int(steps), *params)


def hand_solve(field, z0: torch.Tensor, solver: Solver, steps: int | None, adjoint: bool,
               t_span: tuple[float, float]) -> Solution | None:
    """The solve by :func:`dense_solve` where it applies and ``HAND_BACKWARD`` is set, else None
    (the caller solves as usual).

    It applies to a fixed-step solve of the package's own loop that autograd would differentiate
    (gradients on, no adjoint, no autocast, not inside torch.compile) of a field whose
    ``dense_relu_layers()`` gives its layers now (OttConv1d's and MLP's fast paths)."""
    if (not HAND_BACKWARD or adjoint or steps is None or solver.tableau is None or solver.adaptive
            or solver.integrator != "robustbench_ode.solvers.fixed:integrate"
            or not torch.is_grad_enabled() or torch.is_autocast_enabled()
            or torch.compiler.is_compiling()):
        return None
    layers = getattr(field, "dense_relu_layers", lambda: None)()
    if layers is None:
        return None
    z = dense_solve(layers, z0.flatten(1), solver, int(steps), t_span).view_as(z0)
    return Solution(z, SolveStats(nfe=int(steps) * solver.tableau.stages, steps=int(steps),
                                  status=finite_status(z)))
