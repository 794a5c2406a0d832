
import pytest
import torch

from robustbench_ode import DATASETS, MODELS, SOLVERS, Status
from robustbench_ode.models import SolveSpec

SHAPES = {"ott_conv1d": (2,), "mlp": (2,), "ott_conv2d": (3, 6, 6)}
# Parameters a registered factory cannot do without (a suite fills the ResNets' blocks in).
PARAMS = {"resnet": {"blocks": 3}, "resnet_shared": {"blocks": 3}}
SPECS = [SolveSpec("euler", steps=3), SolveSpec("rk4", steps=2),
         SolveSpec("dopri5", rtol=1e-3, atol=1e-3)]
# every solver with a grid or a tolerance; gridless ``exact`` needs a closed-form flow
# (an optional backend that is not installed here, torchode, is skipped with its install hint)
GRIDDED = [pytest.param(n, marks=pytest.mark.skipif(SOLVERS.get(n).missing() is not None,
                                                    reason=SOLVERS.get(n).missing() or ""))
           for n in SOLVERS.names() if not SOLVERS.get(n).gridless]
# A trajectory model (its factory takes ``times``) predicts the state at each observation time.
TIMES = torch.tensor([0.0, 0.3, 0.5, 1.0], dtype=torch.float64)


def _shape(name):
    return SHAPES.get(name, (2,))


# Small sizes where a test sweeps every solver: dopri8 on the default widths takes seconds.
SMALL = {"ott_conv1d": {"width": 8}, "ott_conv2d": {"width": 8}, "mlp": {"hidden": 8},
         "resnet": {"blocks": 3, "width": 8}, "resnet_shared": {"blocks": 3, "width": 8},
         "trajectory": {"hidden": 8}, "augmented_trajectory": {"hidden": 8}, "cnf": {"hidden": 8, "depth": 2}}


def _fits_trajectories(name):
    return MODELS.meta(name).task == "regression"


def _build(name, n_classes=3, params=PARAMS):
    if _fits_trajectories(name):  # the observation times stand in for a class count
        return MODELS.get(name)(_shape(name), 0, times=TIMES, **params.get(name, {}))
    if _fits_densities(name):  # a density has no classes
        return MODELS.get(name)(_shape(name), 0, **params.get(name, {}))
    return MODELS.get(name)(_shape(name), n_classes, **params.get(name, {}))


def _fits_densities(name):
    return MODELS.meta(name).task == "density"


def _out_shape(name, batch):
    """Logits (batch, 3), a trajectory model's prediction (batch, K, d), or a density model's
    negative log-likelihood per sample (batch,)."""
    if _fits_densities(name):
        return (batch,)
    return (batch, len(TIMES) - 1, 2) if _fits_trajectories(name) else (batch, 3)


def _spec(solver):
    if SOLVERS.get(solver).adaptive:
        # loose: a field with jumps in t (resnet) makes tight adaptive solves slow
        return SolveSpec(solver, rtol=1e-2, atol=1e-2)
    return SolveSpec(solver, steps=4)


@pytest.mark.parametrize("spec", SPECS, ids=SolveSpec.label)
@pytest.mark.parametrize("name", MODELS.names())
def test_forward_shapes_and_finite(name, spec):
    torch.manual_seed(0)
    model = _build(name)
    x = torch.randn(5, *_shape(name))
    logits, stats = model(x, spec)
    assert logits.shape == _out_shape(name, 5)
    assert torch.isfinite(logits).all() and stats.status is Status.OK
    assert stats.nfe >= 1
    logits.sum().backward()  # gradients flow through every solver


@pytest.mark.parametrize("solver", GRIDDED)
@pytest.mark.parametrize("name", MODELS.names())
def test_tested_as_an_ode_with_every_solver(name, solver):
    """Evaluation mode solves the block with the given solver (a ResNet's training-mode forward
    is its discrete network, so this is where its ODE is exercised)."""
    torch.manual_seed(0)
    model = _build(name, params=SMALL).eval()
    x = torch.randn(4, *_shape(name))
    z, stats = model.final_state(x, _spec(solver))
    assert stats.status is Status.OK and torch.isfinite(z).all()
    assert stats.nfe >= SOLVERS.get(solver).stages  # the solver really ran
    logits, _ = model(x, _spec(solver))
    assert torch.allclose(logits, model.logits(z))
    params = [p for p in model.block.field.parameters()]
    grads = torch.autograd.grad(logits.square().sum(), params, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)  # the field gets a gradient


def classifiers() -> list[str]:
    """Every classifier family, read off the registry (the regression family keeps torch's init)."""
    return [n for n in MODELS.names() if MODELS.meta(n).task == "classification"]


CLASSIFIERS = classifiers()


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_kaiming_weights_zero_biases(name):
    torch.manual_seed(0)
    model = _build(name, 2)
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
            assert torch.count_nonzero(mod.bias) == 0
            fan_in = mod.weight[0].numel()
            if mod.weight.numel() >= 16:  # the std of a 2x2 head's 4 weights says nothing
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


AUGMENTABLE = [n for n in MODELS.names() if "augment" in MODELS.meta(n).params.model_fields]


@pytest.mark.parametrize("spec", SPECS, ids=SolveSpec.label)
@pytest.mark.parametrize("name", AUGMENTABLE)
def test_augmented_models_pad_zeros_and_train(name, spec):
    """ANODE (Dupont et al. 2019): ``augment`` appends zero dimensions / channels to the state."""
    torch.manual_seed(0)
    params = {**SMALL.get(name, {}), "augment": 2}
    plain = _build(name, params={name: {**params, "augment": 0}})
    model = _build(name, params={name: params})
    x = torch.randn(4, *_shape(name))
    z0, z0_plain = model.input_map(x), plain.input_map(x)
    assert z0.shape[1] == z0_plain.shape[1] + 2  # dimensions (vectors) or channels (images)
    assert torch.count_nonzero(z0[:, z0_plain.shape[1]:]) == 0  # the extra room starts at zero
    logits, stats = model(x, spec)
    # logits, or a trajectory model's prediction: read off the first d coordinates of the state
    assert logits.shape == _out_shape(name, 4) and torch.isfinite(logits).all()
    assert stats.status is Status.OK
    logits.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.block.field.parameters())


def _solved_by_spec(name):
    """Models whose training forward is a solve (the ResNets train as their discrete network)."""
    return MODELS.meta(name).train_rule is None


@pytest.mark.parametrize("name", [n for n in MODELS.names() if _solved_by_spec(n)])
def test_adjoint_gradient_for_every_model(name):
    torch.manual_seed(0)
    model = _build(name, params=SMALL)
    x = torch.randn(4, *_shape(name))
    out, stats = model(x, SolveSpec("dopri5", rtol=1e-3, atol=1e-3, adjoint=True))
    assert stats.status is Status.OK and out.shape == _out_shape(name, 4)
    out.square().sum().backward()
    grads = [p.grad for p in model.block.field.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("spec", SPECS, ids=SolveSpec.label)
@pytest.mark.parametrize("name", [n for n in MODELS.names() if _solved_by_spec(n)
                                  and not _fits_trajectories(n) and not _fits_densities(n)])
def test_regularised_forward_for_every_classifier(name, spec):
    from robustbench_ode.config import RegularizationConfig
    from robustbench_ode.training.forward import regularized_forward

    torch.manual_seed(0)
    model = _build(name, params=SMALL)
    x = torch.randn(4, *_shape(name))
    plain, _ = model(x, spec)
    logits, stats, logged, penalty = regularized_forward(
        model, x, spec, RegularizationConfig(kinetic=0.5, jacobian=0.5), torch.Generator().manual_seed(0))
    assert stats.status is Status.OK and logits.shape == (4, 3)
    # the penalties ride along without changing the state's own solve
    assert torch.allclose(logits, plain, rtol=1e-4, atol=1e-5) or spec.adaptive
    assert logged["kinetic"] >= 0 and logged["jacobian"] >= 0
    (logits.sum() + penalty).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
