"""Image datasets, the image model's input map and the fast training path (CPU; GPU tests skip)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from image_files import trust, write_cifar10, write_idx, write_svhn

import robustbench_ode as rb
from robustbench_ode import DATASETS, MODELS, SolveSpec
from robustbench_ode.cli import main
from robustbench_ode.config import load_suite, parse_suite
from robustbench_ode.core.context import ExecutionContext
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.datasets import images
from robustbench_ode.datasets.preparation import prepare_fashion_mnist
from robustbench_ode.harness.cell import CellConfig
from robustbench_ode.harness.execution import run_cells

SUITES = Path(__file__).resolve().parent.parent / "suites"
TORCHVISION = ["cifar10", "mnist", "fashion_mnist", "svhn"]


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(images.ENV_VAR, raising=False)


def test_mnist_loads_idx_files(tmp_path, no_env):
    written = write_idx(tmp_path / "MNIST" / "raw", 50, 20)
    d = DATASETS.get("mnist")(0, root=str(tmp_path))
    assert d.x_train.shape == (50, 1, 28, 28) and d.x_test.shape == (20, 1, 28, 28)
    assert d.x_train.dtype == torch.uint8 and d.scale == 255.0
    assert np.array_equal(d.x_train[:, 0].numpy(), written["train"][0])
    assert np.array_equal(d.y_test.numpy(), written["t10k"][1])


def test_fashion_mnist_from_debian_layout(tmp_path, no_env):
    """`make data`'s preparation: .gz files as Debian ships them -> torchvision's raw layout."""
    source = tmp_path / "debian"
    written = write_idx(source, 40, 10, compress=True)
    root = tmp_path / "data"
    assert len(prepare_fashion_mnist(root, source)) == 4
    assert prepare_fashion_mnist(root, source) == []  # idempotent
    d = DATASETS.get("fashion_mnist")(0, root=str(root), n_train=30)
    assert d.x_train.shape == (30, 1, 28, 28) and d.in_shape == (1, 28, 28)
    assert np.array_equal(d.x_test[:, 0].numpy(), written["t10k"][0])
    # the subset is a seeded choice of real samples
    full = written["train"][0]
    assert all(any(np.array_equal(img, f) for f in full) for img in d.x_train[:, 0].numpy())
    again = DATASETS.get("fashion_mnist")(0, root=str(root), n_train=30)
    assert torch.equal(d.x_train, again.x_train)


def test_cifar10_loads_pickled_batches(tmp_path, monkeypatch, no_env):
    written = write_cifar10(tmp_path, 6, 8)
    trust(monkeypatch, tmp_path)
    d = DATASETS.get("cifar10")(0, root=str(tmp_path))
    assert d.x_train.shape == (30, 3, 32, 32) and d.x_test.shape == (8, 3, 32, 32)
    assert np.array_equal(d.x_train[:6].numpy(), written["train"][0][0])  # CHW restored
    assert d.y_test.tolist() == written["test"][1].tolist() and d.mean is not None


def test_svhn_loads_mat_files(tmp_path, monkeypatch, no_env):
    written = write_svhn(tmp_path, 12, 7)
    trust(monkeypatch, tmp_path)
    d = DATASETS.get("svhn")(0, root=str(tmp_path))
    assert d.x_train.shape == (12, 3, 32, 32)
    assert np.array_equal(d.x_train.numpy(), written["train"][0])
    assert d.y_train.tolist() == written["train"][1].tolist()  # label 10 became 0


@pytest.mark.parametrize("name", TORCHVISION)
def test_missing_data_is_a_one_line_suite_error(name, tmp_path, no_env):
    with pytest.raises(SuiteError) as err:
        DATASETS.get(name)(0, root=str(tmp_path / "empty"))
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "empty") in msg and name in msg
    assert images.FILES[name][0][0] in msg
    if name == "fashion_mnist":
        assert "dataset-fashion-mnist" in msg and "make data" in msg


def test_missing_data_exits_2_from_the_cli(tmp_path, capsys, no_env):
    suite = {"name": "fm", "dataset": {"name": "fashion_mnist"}, "model": {"name": "ott_conv2d"},
             "train": {"grid": [{"solver": "euler", "steps": [1]}]},
             "test": [{"solver": "euler", "steps": [1]}]}
    path = tmp_path / "fm.yaml"
    path.write_text(yaml.safe_dump(suite))
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress",
                 "--data-root", str(tmp_path / "nowhere")])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_root_precedence(monkeypatch):
    monkeypatch.setenv(images.ENV_VAR, "/from/env")
    assert images.data_root("/from/suite") == Path("/from/suite")
    assert images.data_root(None) == Path("/from/env")
    monkeypatch.delenv(images.ENV_VAR)
    assert images.data_root(None) == Path(images.DEFAULT_ROOT)


def test_digits_split_is_stratified_and_seeded():
    a, b, c = (DATASETS.get("digits")(s) for s in (0, 0, 1))
    assert a.in_shape == (1, 8, 8) and len(a.y_test) == 360 and len(a.y_train) == 1797 - 360
    counts = torch.bincount(a.y_test, minlength=10).double()
    everything = torch.bincount(torch.cat([a.y_train, a.y_test]), minlength=10).double()
    assert (counts - 360 * everything / everything.sum()).abs().max() <= 1.0  # class shares kept
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(a.x_test, c.x_test)
    x = a.prepare(a.x_train)
    assert abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1.0) < 0.1


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (1, 8, 8)])
@pytest.mark.parametrize("params", [{}, {"input_map": "strided_conv", "map_channels": 4, "width": 8},
                                    {"input_map": "strided_conv", "map_stride": 4, "augment": 2,
                                     "width": 8}])
def test_ott_conv2d_input_maps(shape, params):
    model = MODELS.get("ott_conv2d")(shape, 10, **params)
    logits, stats = model(torch.randn(3, *shape), SolveSpec("euler", steps=2))
    assert logits.shape == (3, 10) and stats.nfe == 2 and torch.isfinite(logits).all()


def test_paper_cifar10_model_size():
    model = MODELS.get("ott_conv2d")((3, 32, 32), 10)  # the protocol says "about 179k"
    assert 170_000 < sum(p.numel() for p in model.parameters()) < 190_000


@pytest.mark.parametrize("fast", [{}, {"amp": True, "channels_last": True}])
def test_training_path_logs_throughput(fast):
    suite = parse_suite({
        "name": "d", "dataset": {"name": "digits"}, "model": {"name": "ott_conv2d", "width": 8},
        "training": {"iterations": 3, "batch_size": 16, "eval_batch_size": 200, **fast},
        "train": {"grid": [{"solver": "euler", "steps": [2]}]},
        "test": [{"solver": "euler", "steps": [4]}]})
    cell = CellConfig(dataset=suite.dataset[0], model=suite.model[0], training=suite.training[0],
                      solver="euler", steps=2)
    (res,) = run_cells([cell], suite.test, suite.reference)
    assert res.status is rb.Status.OK and len(res.log) == 3
    assert all(r["images_per_s"] > 0 and r["peak_gpu_mb"] is None for r in res.log)
    assert all(r["status"] == "ok" and 0.0 <= r["accuracy"] <= 1.0 for r in res.rows)


@pytest.mark.parametrize("suite", ["cifar10", "fashion_mnist", "digits"])
def test_image_suites_validate(suite):
    s = load_suite(SUITES / f"{suite}.yaml")
    assert s.dataset[0].name == suite


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_path_pins_and_measures_memory():
    suite = parse_suite({
        "name": "d", "dataset": {"name": "digits"}, "model": {"name": "ott_conv2d", "width": 8},
        "training": {"iterations": 3, "batch_size": 16, "amp": True, "channels_last": True},
        "train": {"grid": [{"solver": "euler", "steps": [2]}]},
        "test": [{"solver": "euler", "steps": [4]}]})
    cell = CellConfig(dataset=suite.dataset[0], model=suite.model[0], training=suite.training[0],
                      solver="euler", steps=2)
    (res,) = run_cells([cell], suite.test, suite.reference, context=ExecutionContext("cuda"))
    assert res.status is rb.Status.OK
    assert all(r["peak_gpu_mb"] > 0 for r in res.log)


@pytest.mark.slow
def test_cifar10_suite_end_to_end_on_synthetic_data(tmp_path, monkeypatch, no_env):
    """The paper-scale suite's whole grid (every train entry, every test entry) on tiny data;
    only seeds, iterations, batch and width shrink so it runs on a CPU."""
    write_cifar10(tmp_path / "data", 8, 8)
    trust(monkeypatch, tmp_path / "data")
    raw = yaml.safe_load((SUITES / "cifar10.yaml").read_text())
    raw["dataset"].update(root=str(tmp_path / "data"))
    raw["model"]["width"] = 4
    raw["training"].update(iterations=2, batch_size=8, eval_batch_size=8)
    raw["train"]["seeds"] = [0]
    path = tmp_path / "cifar10_tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    import pandas as pd

    results = pd.read_csv(out / "results.csv")
    assert set(results["train_solver"]) == {"euler", "dopri5"}
    assert set(results["test_solver"]) >= {"euler", "midpoint", "rk4_38", "dopri5"}
    assert results["train_status"].eq("ok").all()
    assert (out / "meta.json").read_text().count("train_images_per_s") == 1


def test_gpu_bench_script_runs_on_cpu(tmp_path):
    """The benchmark script's whole path on CPU with tiny settings; its FLOP count matches the
    field's arithmetic (3 x forward: backward costs two forward passes)."""
    import json

    from robustbench_ode.models import arithmetic
    from robustbench_ode.studies import gpu_bench

    out = tmp_path / "bench.json"
    assert gpu_bench.main(["--device", "cpu", "--batch", "4", "--width", "4", "--steps", "2",
                           "--iterations", "2", "--warmup", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [(r["amp"], r["compile"]) for r in report["results"]] == [(False, False), (True, False)]
    field = 2 * arithmetic.ott_conv2d({"width": 4}, (3, 32, 32))  # the registry's rule
    head = 2 * 3 * 32 * 32 * 10
    expected = 3 * 4 * (2 * field + head)
    for row in report["results"]:
        assert row["status"] == "ok" and row["images_per_s"] > 0
        assert abs(row["flops_per_iteration"] - expected) / expected < 0.02
    assert gpu_bench.peak_tflops("NVIDIA H100 80GB HBM3") == (494.7, 989.4)
