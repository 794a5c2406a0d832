import inspect

import pytest
import torch

from robustbench_ode import DATASETS, MODELS, SOLVERS, Status
from robustbench_ode.models import SolveSpec

SHAPES = {"ott_conv1d": (2,), "mlp": (2,), "ott_conv2d": (3, 6, 6)}
SPECS = [SolveSpec("euler", steps=3), SolveSpec("rk4", steps=2),
         SolveSpec("dopri5", rtol=1e-3, atol=1e-3)]
# A trajectory model (its factory takes ``times``) predicts the state at each observation time.
TIMES = torch.tensor([0.0, 0.3, 0.5, 1.0], dtype=torch.float64)


def _shape(name):
    return SHAPES.get(name, (2,))


def _build(name, **params):
    """The registered model on a small input; its output shape for a batch of 5."""
    factory = MODELS.get(name)
    if "times" in inspect.signature(factory).parameters:
        return factory((2,), 0, times=TIMES, **params), (5, len(TIMES) - 1, 2)
    return factory(_shape(name), 3, **params), (5, 3)


# The image model is left out of the every-solver test: an untrained conv field takes the
# adaptive pairs tens of steps (about 30 s for the 11 solvers); the forward test covers it.
COSTLY = {"ott_conv2d"}


@pytest.mark.parametrize("spec", SPECS, ids=SolveSpec.label)
@pytest.mark.parametrize("name", MODELS.names())
def test_forward_shapes_and_finite(name, spec):
    torch.manual_seed(0)
    model, shape = _build(name)
    x = torch.randn(5, *_shape(name))
    logits, stats = model(x, spec)
    assert logits.shape == shape
    assert torch.isfinite(logits).all() and stats.status is Status.OK
    assert stats.nfe >= 1
    logits.sum().backward()  # gradients flow through every solver


def _spec_for(solver):
    entry = SOLVERS.get(solver)
    if getattr(entry, "gridless", False):
        return SolveSpec(solver)
    # loose: an untrained field at a tight tolerance costs seconds with the low-order pairs
    return SolveSpec(solver, rtol=1e-2, atol=1e-2) if entry.adaptive else SolveSpec(solver, steps=3)


@pytest.mark.parametrize("solver", SOLVERS.names())
@pytest.mark.parametrize("name", [n for n in MODELS.names() if n not in COSTLY])
def test_every_model_solves_with_every_solver(name, solver):
    torch.manual_seed(0)
    model, shape = _build(name)
    x = torch.randn(5, *_shape(name))
    out, stats = model(x, _spec_for(solver))
    assert out.shape == shape
    if getattr(SOLVERS.get(solver), "gridless", False) and not hasattr(model.block.field, "exact_flow"):
        assert stats.status is Status.FAILED  # no closed form: a status, not an exception
        return
    assert stats.status is Status.OK and torch.isfinite(out).all()
    out.square().sum().backward()
    assert all(p.grad is not None for p in model.block.field.parameters())


@pytest.mark.parametrize("name", ["ott_conv1d", "ott_conv2d", "mlp"])
def test_kaiming_weights_zero_biases(name):
    torch.manual_seed(0)
    model = MODELS.get(name)(_shape(name), 2)
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
            assert torch.count_nonzero(mod.bias) == 0
            if mod.weight.numel() < 32:
                continue  # e.g. a 2-D model's 2x2 head: the std of 4 draws says nothing
            fan_in = mod.weight[0].numel()
            assert mod.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.5)


def test_ott_conv1d_protocol_shapes():
    model = MODELS.get("ott_conv1d")((2,), 2)
    f = model.block.field
    assert (f.conv1.in_channels, f.conv1.out_channels, f.conv1.kernel_size) == (1, 32, (1,))
    assert (f.conv2.in_channels, f.conv2.out_channels, f.conv2.kernel_size, f.conv2.padding) == \
        (32, 32, (3,), (1,))
    assert (f.conv3.in_channels, f.conv3.out_channels) == (32, 1)
    assert model.head.in_features == 2 and model.head.out_features == 2


@pytest.mark.parametrize("time_input", [False, True])
@pytest.mark.parametrize("length", [2, 5])
def test_fast_conv1d_equals_conv1d(length, time_input):
    torch.manual_seed(1)
    fast = MODELS.get("ott_conv1d")((length,), 2, time_input=time_input, fast=True)
    slow = MODELS.get("ott_conv1d")((length,), 2, time_input=time_input, fast=False)
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(17, length)
    for spec in SPECS:
        a, _ = fast(x, spec)
        b, _ = slow(x, spec)
        assert torch.allclose(a, b, atol=1e-5), spec
    for t in (0.0, 0.7):
        z = torch.randn(4, 1, length)
        assert torch.allclose(fast.block.field(t, z), slow.block.field(t, z), atol=1e-5)


def test_time_input_changes_the_field_only_when_asked():
    torch.manual_seed(2)
    model = MODELS.get("mlp")((2,), 2, time_input=True)
    z = torch.randn(4, 2)
    f = model.block.field
    assert not torch.allclose(f(0.0, z), f(1.0, z))
    plain = MODELS.get("mlp")((2,), 2).block.field
    assert torch.equal(plain(0.0, z), plain(1.0, z))


def test_models_train_on_sphere2_batch():
    data = DATASETS.get("sphere2")(0, n_train=128, n_test=10)
    torch.manual_seed(0)
    model = MODELS.get("ott_conv1d")(data.in_shape, 2)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    spec = SolveSpec("euler", steps=4)
    losses = []
    for _ in range(60):
        logits, _ = model(data.x_train, spec)
        loss = torch.nn.functional.cross_entropy(logits, data.y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05
