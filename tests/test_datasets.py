import numpy as np
import pytest
import torch

from robustbench_ode import DATASETS
from robustbench_ode.datasets.toy import SPHERE_RINGS


def toy() -> list[str]:
    """Every registered generated classification dataset, read off the registry (a new entry is
    tested here too): those that read no files and take n_train / n_test (digits is a fixed set)."""
    metas = {n: DATASETS.meta(n) for n in DATASETS.names()}
    return [n for n, m in metas.items() if m.task == "classification" and not m.files
            and {"n_train", "n_test"} <= set(m.params.model_fields)]


TOY = toy()


@pytest.mark.parametrize("name", TOY)
def test_splits_shapes_labels(name):
    d = DATASETS.get(name)(3, n_train=300, n_test=120)
    assert d.x_train.shape[0] == len(d.y_train) == 300
    assert d.x_test.shape[0] == len(d.y_test) == 120
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.long
    assert set(d.y_train.unique().tolist()) == set(range(d.n_classes))
    assert torch.isfinite(d.x_train).all()


@pytest.mark.parametrize("name", TOY)
def test_regenerated_bit_identically_from_seed(name):
    a, b, c = (DATASETS.get(name)(s, n_train=200, n_test=50) for s in (7, 7, 8))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.x_train[:50], a.x_test)  # train and test are different draws


def test_sphere2_rings_and_balance():
    d = DATASETS.get("sphere2")(0)
    assert d.in_shape == (2,) and len(d.y_train) == 2000 and len(d.y_test) == 1000
    r = d.x_train.norm(dim=1).numpy()
    y = d.y_train.numpy()
    for r_min, r_max, label, share in SPHERE_RINGS:
        inside = (r >= r_min - 1e-6) & (r <= r_max + 1e-6)
        assert inside.sum() == round(2000 * share)
        assert (y[inside] == label).all()
    assert y.mean() == pytest.approx(0.5)  # balanced: chance is 50%
    # directions are isotropic: mean direction near zero
    assert np.abs((d.x_train / d.x_train.norm(dim=1, keepdim=True)).mean(0).numpy()).max() < 0.08


# Every registered regression dataset, read off the registry: a new entry is tested here too.
TIMESERIES = [n for n in DATASETS.names() if DATASETS.meta(n).task == "regression"]


@pytest.mark.parametrize("name", TIMESERIES)
def test_timeseries_splits_shapes_and_reproducible(name):
    info = DATASETS.meta(name)
    # a time series takes its number of observation times; Dupont's g(x) = -x has one, at t = 1
    points = {"n_points": 6} if "n_points" in info.params.model_fields else {}
    k = points.get("n_points", 1)
    d = info.shape(info.params(**points).model_dump())[0]
    a, b, c = (DATASETS.get(name)(s, n_train=12, n_test=5, **points) for s in (7, 7, 8))
    assert a.task == "regression" and a.n_classes == 0
    assert a.x_train.shape == (12, d) and a.y_train.shape == (12, k, d)
    assert a.x_test.shape == (5, d) and a.y_test.shape == (5, k, d)
    assert a.y_train.dtype == torch.float32 and torch.isfinite(a.y_train).all()
    assert a.times.shape == (k + 1,) and a.times[0] == 0
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.x_train[:5], a.x_test)


def test_reflection_is_minus_x_on_two_intervals():
    """Dupont's g(x) = -x: inputs on [-1, -0.5] U [0.5, 1], both signs, target -x at t = 1."""
    d = DATASETS.get("reflection")(0, n_train=400, n_test=100)
    x = d.x_train[:, 0]
    assert ((x.abs() >= 0.5) & (x.abs() <= 1.0)).all()
    assert 150 < int((x > 0).sum()) < 250  # either interval with probability 1/2
    assert torch.equal(d.y_train[:, 0, 0], -x) and torch.equal(d.y_test[:, 0, 0], -d.x_test[:, 0])
    assert d.times.tolist() == [0.0, 1.0]
