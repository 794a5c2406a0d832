"""The gate knows what it compares (outputs/gate.py, check_comparable): ``regress`` and ``compare``
refuse, in one line naming each differing setting, two runs whose suites train differently; a
change of the test grid, the reference, the diagnostics, the names or a speed-only setting is
comparable; a tampered baseline still fails; a table with no recorded suite is compared by row
key, and the command says so. Run folders are faked from a results table and a suite.yaml (the
record a legacy folder keeps), so nothing trains here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from robustbench_ode.cli import main
from robustbench_ode.outputs.gate import recorded_suite, setting_differences
from robustbench_ode.outputs.tables import read_results, write_csv

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baselines" / "smoke.csv"
SMOKE = yaml.safe_load((ROOT / "suites" / "smoke.yaml").read_text())


def _suite(**changes) -> dict:
    suite = json.loads(json.dumps(SMOKE))
    for path, value in changes.items():
        *head, last = path.split("__")
        node = suite
        for key in head:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    return suite


def _run(tmp_path: Path, name: str, suite: dict, spoil=None) -> Path:
    """A run folder: the committed baseline's rows (optionally changed) and its suite.yaml."""
    folder = tmp_path / name
    folder.mkdir()
    table = read_results(BASELINE)
    write_csv(spoil(table) if spoil else table, folder / "results.csv")
    (folder / "suite.yaml").write_text(yaml.safe_dump(suite))
    return folder


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_the_readme_set_run_is_refused_in_one_line_naming_the_settings(tmp_path, capsys):
    """``run smoke --set training.iterations=500 --set train.seeds=[0,1]`` against the baseline."""
    run = _run(tmp_path, "smoke_500", _suite(training__iterations=500, train__seeds=[0, 1]))
    assert main(["regress", str(run), "--baseline", str(BASELINE)]) == 2
    err = _one_line(capsys)
    assert "not comparable" in err and "training.iterations 500 vs 20" in err, err
    assert "train.seeds [0, 1] vs [0]" in err and "make baseline" in err, err
    assert capsys.readouterr().out == ""  # no REGRESSION lines: nothing was compared


def test_compare_refuses_the_same(tmp_path, capsys):
    run = _run(tmp_path, "lr", _suite(training__lr=0.1))
    assert main(["compare", str(run), str(BASELINE)]) == 2
    assert "training.lr 0.1 vs 0.01" in _one_line(capsys)


@pytest.mark.parametrize("change", [
    {"test": SMOKE["test"] + [{"solver": "midpoint", "steps": [4]}]},  # a grown test grid
    {"reference": {"solver": "dopri5", "tol": 1e-6}},
    {"diagnostics": {"enabled": False}},
    {"name": "smoke_copy", "description": "renamed"},
    {"training": {**SMOKE["training"], "checkpoint_every": 5}},  # speed-only: the same model
])
def test_what_does_not_change_training_is_comparable(tmp_path, capsys, change):
    run = _run(tmp_path, "run", {**SMOKE, **change})
    assert main(["regress", str(run), "--baseline", str(BASELINE)]) == 0
    captured = capsys.readouterr()
    assert "no regressions" in captured.out and "compared by key" not in captured.out
    assert captured.err == "", captured.err


def test_a_tampered_baseline_still_fails(tmp_path, capsys):
    """A baseline whose numbers were raised fails the gate whether or not its suite is recorded
    (the suite check comes before the rows, never instead of them)."""
    run = _run(tmp_path, "run", SMOKE)
    tampered = tmp_path / "tampered.csv"
    table = read_results(BASELINE)
    table.loc[table["status"] == "ok", "accuracy"] += 0.1
    write_csv(table, tampered)
    (tmp_path / "tampered.suite.yaml").write_text(yaml.safe_dump(SMOKE))
    assert main(["regress", str(run), "--baseline", str(tampered)]) == 1
    assert "REGRESSION accuracy:" in capsys.readouterr().out
    (tmp_path / "tampered.suite.yaml").unlink()  # without its suite: compared by key, and said so
    assert main(["regress", str(run), "--baseline", str(tampered)]) == 1
    captured = capsys.readouterr()
    assert "REGRESSION accuracy:" in captured.out and "compared by key only" in captured.out


def test_a_baseline_suite_claiming_other_training_is_refused(tmp_path, capsys):
    run = _run(tmp_path, "run", SMOKE)
    forged = tmp_path / "forged.csv"
    write_csv(read_results(BASELINE), forged)
    (tmp_path / "forged.suite.yaml").write_text(yaml.safe_dump(_suite(model__width=16)))
    assert main(["regress", str(run), "--baseline", str(forged)]) == 2
    assert "model.width 8 vs 16" in _one_line(capsys)


def test_the_record_comes_first_and_a_damaged_one_is_one_line(tmp_path, capsys):
    run = _run(tmp_path, "run", SMOKE)
    dump = recorded_suite(run)
    (run / "owner.json").write_text(json.dumps({"suite": "smoke", "dump": {**dump, "seed_note": 1}}))
    assert [d[0] for d in setting_differences(recorded_suite(run), dump)] == ["seed_note"]
    (run / "owner.json").write_text("{not json")
    assert main(["regress", str(run), "--baseline", str(BASELINE)]) == 2
    assert "owner.json" in _one_line(capsys)


def test_the_committed_baseline_records_the_smoke_suite():
    """make regress runs suites/smoke.yaml against results/baselines/smoke.csv: the baseline's
    recorded suite is that suite's training, so the gate compares rows, not refuses."""
    assert recorded_suite(BASELINE) is not None
    from robustbench_ode.config import load_suite
    smoke = json.loads(json.dumps(load_suite(ROOT / "suites" / "smoke.yaml").model_dump(mode="json")))
    assert setting_differences(recorded_suite(BASELINE), smoke) == []


def test_make_baseline_writes_the_suite_beside_the_table():
    out = subprocess.run(["make", "-n", "baseline"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert "results/baselines/smoke.suite.yaml" in out.stdout, out.stdout
