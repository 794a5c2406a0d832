"""``--set KEY.PATH=VALUE`` on ``run`` and ``validate`` (robustbench_ode/config/overrides.py):
nested paths, list indices, YAML-typed values and added keys change the suite before validation;
bad paths and bad values are one-line errors with exit 2 naming the key; the run folder's
suite.yaml records the suite as run, and the cell keys come from it."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from robustbench_ode.cli import main
from robustbench_ode.config import load_suite, parse_suite, read_suite
from robustbench_ode.config.overrides import apply_overrides
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.harness.cell import cells

ROOT = Path(__file__).parent.parent
SMOKE = ROOT / "suites" / "smoke.yaml"
LISTED = {"name": "listed", "dataset": [{"name": "sphere2", "n_train": 64, "n_test": 32}],
          "model": [{"name": "mlp", "hidden": 8}, {"label": "wide", "name": "mlp", "hidden": 32}],
          "train": {"grid": [{"solver": "euler", "steps": [2]}]},
          "test": [{"solver": "euler", "steps": [4]}, {"solver": "dopri5", "tol": [1e-3]}]}


def keys(suite):
    return [c.key for c in cells(suite)]


def test_nested_paths_list_indices_and_yaml_values():
    suite = load_suite(SMOKE, ["training.iterations=500", "model.0.width=16", "train.seeds=[0,1]",
                               "test.1.steps=[4, 16]", "dataset.n_test=50", "training.lr=3.0e-3",
                               "test.2.solver=bosh3"])
    assert suite.training[0].iterations == 500 and suite.training[0].lr == pytest.approx(3e-3)
    assert suite.model[0].params["width"] == 16 and suite.dataset[0].params["n_test"] == 50
    assert suite.train.seeds == [0, 1] and len(cells(suite)) == 2 * len(cells(load_suite(SMOKE)))
    assert suite.test[1].steps == [4, 16] and suite.test[2].solver == "bosh3"
    # model.width and model.0.width are the same key for a model given as one mapping
    assert keys(load_suite(SMOKE, ["model.width=16"])) == keys(load_suite(SMOKE, ["model.0.width=16"]))


def test_listed_axes_take_indices_and_later_overrides_win():
    data = apply_overrides(LISTED, ["model.1.hidden=64", "model.1.hidden=48",
                                    "model.0={name: mlp, hidden: 4}"])
    suite = parse_suite(data)
    assert [m.params["hidden"] for m in suite.model] == [4, 48]
    assert LISTED["model"][1]["hidden"] == 32  # the loaded mapping itself is not changed


def test_a_missing_key_under_a_mapping_is_added_and_validated():
    suite = load_suite(SMOKE, ["training.regularization.kinetic=0.5", "reference.tol=1.0e-6"])
    assert suite.training[0].regularization.kinetic == 0.5 and suite.reference.tol == 1e-6
    with pytest.raises(SuiteError, match=r"training.itrations: unknown key"):
        load_suite(SMOKE, ["training.itrations=5"])


@pytest.mark.parametrize(("override", "message"), [
    ("test.9.steps=[1]", "--set test.9.steps: test has 4 entries, so index 9 is out of range"),
    ("model.1.width=16", "--set model.1.width: model has 1 entry (given as one mapping), so index 1"),
    ("test.first.steps=[1]", "--set test.first.steps: test is a list of 4; index it with a number"),
    ("name.x=1", "--set name.x: name is 'smoke', not a mapping or a list"),
    ("train.seeds.0.x=1", "--set train.seeds.0.x: train.seeds.0 is 0, not a mapping or a list"),
    ("training.iterations", "expected KEY.PATH=VALUE"),
    ("=5", "expected KEY.PATH=VALUE"),
    ("training..iterations=5", "empty step in the key path"),
    ("train.seeds=[0,", "--set train.seeds: the value '[0,': not valid YAML"),
    # the suite file's loader limits hold for --set values too (an untyped factory parameter
    # takes any YAML, so nothing but the loader stops a bomb there)
    ("model.0.params.x=" + "[" + ", ".join(f"&a{i} [" + ", ".join([f"*a{i - 1}" if i else "1"] * 9) + "]"
                                           for i in range(10)) + "]",
     "line 1: more than 20000 values (aliases expanded)"),
    ("model.0.params.x=" + "[" * 200 + "]" * 200, "nested more than 50 levels deep"),
    ("model.0.params.x={a: 1, a: 2}", "key 'a' given twice in one mapping"),
    ("model.0.params.x=" + "1" * (2 << 20), "the value has 2097152 characters; at most 1048576"),
    ("training.iterations=-5",
     "with --set training.iterations=-5: training.iterations: Input should be greater"),
    ("training.lr=3e-3", "training.lr: expected a number, got str '3e-3' (YAML reads an exponent"),
    ("training.iterations=many", "training.iterations: Input should be a valid integer"),
    ("test.0.solver=rk45", "test.0.solver: unknown solver 'rk45'"),
    ("train.seeds=7", "train.seeds"),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_paths_and_values_are_one_line_errors_with_exit_2(command, override, message, capsys, tmp_path):
    argv = [command, str(SMOKE), "--set", override]
    if command == "run":
        argv += ["--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_validate_reports_the_overridden_suite(capsys):
    assert main(["validate", str(SMOKE), "--set", "train.seeds=[0, 1, 2]",
                 "--set", "test.1.steps=[4, 8]"]) == 0
    out = capsys.readouterr().out
    assert "(with 2 --set): ok" in out and "9 cells" in out


def test_the_run_folder_records_the_suite_as_run(tmp_path):
    out = tmp_path / "run"
    sets = ["training.iterations=3", "train.grid.0.steps=[2]", "train.grid.1.tol=[0.05]",
            "test=[{solver: euler, steps: [2, 4]}]"]
    argv = ["run", str(SMOKE), "--out", str(out), "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    text = (out / "suite.yaml").read_text()
    assert text.startswith(f"# {SMOKE} with --set training.iterations=3 --set")
    recorded = yaml.safe_load(text)
    assert recorded["training"]["iterations"] == 3
    assert recorded["test"] == [{"solver": "euler", "steps": [2, 4]}]
    suite, _ = read_suite(out / "suite.yaml")
    assert keys(suite) == keys(read_suite(SMOKE, sets)[0])
    table = pd.read_csv(out / "results.csv")
    assert set(table["cell"]) == set(keys(suite))  # keys of the suite as run
    assert set(table["test_steps"].dropna()) == {2, 4}
    log = pd.read_csv(out / "training.csv")
    assert log.groupby("cell")["iteration"].max().eq(2).all()  # 3 iterations, not the file's 20
    # Without --set the file's own text is recorded, comments included.
    assert read_suite(SMOKE)[1] == SMOKE.read_text()
