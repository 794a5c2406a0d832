"""Suite files: the shipped ones validate; bad ones give one-line errors naming the key path."""

import copy
from pathlib import Path

import pytest

from robustbench_ode.config import load_suite, parse_suite
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.harness.cell import cells
from robustbench_ode.harness.grid import grid_points

SUITES = sorted((Path(__file__).parent.parent / "suites").glob("*.yaml"))

BASE = {
    "name": "t",
    "dataset": {"name": "sphere2", "n_train": 100, "n_test": 50},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 2, "batch_size": 10},
    "train": {"seeds": [0, 1], "grid": [{"solver": "euler", "steps": [2, 4]},
                                         {"solver": "dopri5", "tol": [1e-3]}]},
    "test": [{"solver": "euler", "step_factors": [0.5, 1, 2]},
             {"solver": "rk4", "steps": [8]},
             {"solver": "dopri5", "tol_factors": [0.1, 10]}],
}


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_shipped_suites_validate(path):
    suite = load_suite(path)
    assert cells(suite)


def _bad(mutate):
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(SuiteError) as err:
        parse_suite(data)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.update(bogus=1), "bogus: unknown key"),
    (lambda d: d["training"].update(itertions=5), "training.itertions: unknown key"),
    (lambda d: d["model"].update(widht=5), "model.widht: unknown key"),
    (lambda d: d["dataset"].update(name="sphere3"), "dataset.name: unknown dataset 'sphere3'"),
    (lambda d: d["model"].update(name="resnet9"), "model.name: unknown model"),  # resnet exists
    (lambda d: d["train"]["grid"][0].update(solver="rk45"), "train.grid.0.solver: unknown solver"),
    (lambda d: d["test"][1].update(solver="eulr"), "did you mean 'euler'"),
    (lambda d: d["train"]["grid"][0].update(steps=[2, 0]), "train.grid.0.steps.1"),
    (lambda d: d["train"]["grid"][1].update(tol=[-1e-3]), "train.grid.1.tol.0"),
    (lambda d: d["training"].update(iterations=0), "training.iterations"),
    (lambda d: d["training"].update(batch_size=-3), "training.batch_size"),
    (lambda d: d["training"].update(lr=0), "training.lr"),
    (lambda d: d["dataset"].update(n_train=0), "dataset.n_train"),
    (lambda d: d["train"].update(grid=[]), "train.grid"),
    (lambda d: d.update(test=[]), "test"),
    (lambda d: d["train"]["grid"][0].update(tol=[1e-3]), "exactly one of steps, tol"),
    (lambda d: d["train"]["grid"].append({"solver": "euler", "tol": [1e-3]}), "fixed-step"),
    (lambda d: d["test"][0].update(steps=[3]), "exactly one of"),
    (lambda d: d["test"].append({"solver": "rk4", "tol": [1e-3]}), "fixed-step"),
    (lambda d: d.pop("model"), "model: required key is missing"),
    (lambda d: d.update(name="has space"), "name"),
    (lambda d: d["test"][2].update(control="per_sample"),
     "test.2.control: solver 'dopri5' (torchdiffeq) supports only batch step control"),
    (lambda d: d["test"][2].update(control="sample"),
     "test.2.control: Input should be 'batch' or 'per_sample'"),
    (lambda d: d["test"][1].update(control="per_sample"), "test.1.control: solver 'rk4'"),
    (lambda d: d["training"].update(gradient="adjoint") or d["train"]["grid"].append(
        {"solver": "rk4", "steps": [2]}), "adjoint needs a method torchdiffeq or torchode has"),
])
def test_bad_suites_name_the_key(mutate, expected):
    assert expected in _bad(mutate)


def test_params_defaults_are_filled_in():
    suite = parse_suite(copy.deepcopy(BASE))
    assert suite.model[0].params["time_input"] is False
    assert suite.dataset[0].params == {"n_train": 100, "n_test": 50}


def test_grid_expansion_and_factors():
    suite = parse_suite(copy.deepcopy(BASE))
    todo = cells(suite)
    assert len(todo) == 3 * 2
    assert len({c.key for c in todo}) == 6
    euler2 = next(c for c in todo if c.steps == 2)
    pts = grid_points(suite.test, suite.reference, euler2.train_spec)
    assert pts[0].is_train and pts[0].spec.steps == 2
    labels = [p.spec.label() for p in pts]
    # factors 0.5, 1, 2 of 2 steps -> 1, (2 = train config, deduplicated), 4; tol factors skipped;
    # the reference solve (dopri5 at 1e-7 by default) comes last
    assert labels == ["euler@2", "euler@1", "euler@4", "rk4@8", "dopri5@tol1e-07"]
    dopri = next(c for c in todo if c.tol is not None)
    labels = [p.spec.label() for p in grid_points(suite.test, suite.reference, dopri.train_spec)]
    assert labels == ["dopri5@tol0.001", "rk4@8", "dopri5@tol0.0001", "dopri5@tol0.01",
                      "dopri5@tol1e-07"]


def test_cell_key_is_stable_and_content_based():
    a = cells(parse_suite(copy.deepcopy(BASE)))[0]
    b = cells(parse_suite(copy.deepcopy(BASE)))[0]
    assert a.key == b.key
    other = copy.deepcopy(BASE)
    other["training"]["lr"] = 0.5
    assert cells(parse_suite(other))[0].key != a.key
    renamed = copy.deepcopy(BASE)
    renamed["name"] = "other_name"  # the suite's name does not change what a cell computes
    assert cells(parse_suite(renamed))[0].key == a.key


def _variants(**axes):
    data = copy.deepcopy(BASE)
    data["train"] = {"seeds": [0], "grid": [{"solver": "euler", "steps": [2]}]}
    data.update(axes)
    return data


def test_listed_axes_are_a_product_with_labels_in_the_columns():
    suite = parse_suite(_variants(
        dataset=[{"name": "sphere2", "n_train": 100, "n_test": 50}, {"name": "annuli"}],
        model=[{"name": "mlp", "label": "node"}, {"name": "mlp", "augment": 2, "label": "anode"}],
        training=[{"iterations": 2}, {"iterations": 2, "gradient": "adjoint", "label": "adj"}]))
    todo = cells(suite)
    assert len(todo) == 2 * 2 * 2 and len({c.key for c in todo}) == 8
    seen = {(c.columns()["dataset"], c.columns()["model"], c.columns()["training"]) for c in todo}
    assert ("annuli", "anode", "adj") in seen and ("sphere2", "node", "default") in seen
    anode = next(c for c in todo if c.model.label == "anode")
    assert anode.model.params["augment"] == 2


def test_a_model_can_be_narrowed_to_some_datasets():
    suite = parse_suite(_variants(
        dataset=[{"name": "sphere2"}, {"name": "annuli"}],
        model=[{"name": "mlp"}, {"name": "ott_conv1d", "datasets": ["sphere2"]}]))
    pairs = {(c.dataset.name, c.model.name) for c in cells(suite)}
    assert pairs == {("sphere2", "mlp"), ("annuli", "mlp"), ("sphere2", "ott_conv1d")}


@pytest.mark.parametrize("axes, expected", [
    ({"model": [{"name": "mlp"}, {"name": "mlp", "augment": 2}]},
     "model: 2 entries, 'mlp' names more than one: give each a distinct label"),
    ({"model": [{"name": "mlp"}, {"name": "mlp", "widht": 2, "label": "b"}]}, "model.1.widht: unknown key"),
    ({"model": [{"name": "mlp", "datasets": ["moons"]}]}, "model.0.datasets: unknown dataset 'moons'"),
    ({"training": [{"iterations": 2}, {"iterations": 3}]}, "training: 2 entries, 'default'"),
    ({"training": [{"iterations": 0, "label": "x"}]}, "training.0.iterations"),
    ({"model": {"name": "mlp", "label": "has space"}}, "model.label"),
    ({"model": []}, "model: List should have at least 1 item"),
])
def test_bad_listed_axes_name_the_key(axes, expected):
    with pytest.raises(SuiteError) as err:
        parse_suite(_variants(**axes))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_unset_labels_leave_cell_keys_alone():
    plain = cells(parse_suite(copy.deepcopy(BASE)))[0]
    assert "label" not in plain.model_dump()["model"] and "label" not in plain.model_dump()["training"]
    labelled = copy.deepcopy(BASE)
    labelled["model"]["label"] = "mine"
    assert cells(parse_suite(labelled))[0].key != plain.key  # a label names the cell's rows


def test_a_training_can_be_narrowed_to_some_datasets():
    suite = parse_suite(_variants(
        dataset=[{"name": "sphere2"}, {"name": "annuli"}],
        training=[{"iterations": 2, "label": "short"},
                  {"iterations": 5, "label": "long", "datasets": ["annuli"]}]))
    pairs = {(c.dataset.name, c.training.label) for c in cells(suite)}
    assert pairs == {("sphere2", "short"), ("annuli", "short"), ("annuli", "long")}
    with pytest.raises(SuiteError, match="no dataset is left"):
        parse_suite(_variants(dataset=[{"name": "sphere2"}, {"name": "annuli"}],
                              model={"name": "mlp", "datasets": ["sphere2"]},
                              training={"iterations": 2, "datasets": ["annuli"]}))


def test_a_point_is_identified_with_its_step_control():
    """Tolerance points carry their control in their identity; a row stored before the control
    was recorded (test_control empty or NaN) is a batch-controlled one; fixed grids have none."""
    from robustbench_ode.config import TestEntry
    from robustbench_ode.harness.grid import TestPoint, row_key
    from robustbench_ode.models.spec import SolveSpec

    batch = TestPoint(SolveSpec("dopri5", rtol=1e-3, atol=1e-3))
    assert batch.key == ("dopri5", None, 1e-3, "batch")
    for old in ("", float("nan"), None):
        row = {"test_solver": "dopri5", "test_steps": float("nan"), "test_tol": 1e-3, "test_control": old}
        assert row_key(row) == batch.key
    assert row_key({**row, "test_control": "per_sample"}) != batch.key
    assert row_key({"test_solver": "euler", "test_steps": 4, "test_tol": None, "test_control": ""}) \
        == TestPoint(SolveSpec("euler", steps=4)).key == ("euler", 4, None, None)
    suite = parse_suite({**copy.deepcopy(BASE), "test": [{"solver": "dopri5", "tol": [1e-3]}]})
    assert suite.test[0].control == "batch" and TestEntry.model_fields["control"].default == "batch"
