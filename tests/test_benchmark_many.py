"""benchmark() on several models in one call: a dict on one dataset, a list of (label, model,
data) over several; one table with model and dataset labels, one summary, a leaderboard, one report."""

import torch

import robustbench_ode as rb
from tests.test_assert_is_ode import Plain, rings

SETTINGS = {"grid": [{"solver": "euler", "steps": [1, 4]}], "reference": {"solver": "dopri5", "tol": 1e-4},
            "diagnostics": False}


def test_a_dict_of_models_gives_one_table_summary_leaderboard_and_report(tmp_path):
    torch.manual_seed(0)
    m1, m2, data = Plain(2).eval(), Plain(64).eval(), rings(60, 1)
    result = rb.benchmark({"euler2": m1, "euler64": m2}, data, report=tmp_path, **SETTINGS)
    assert sorted(result.table["model"].unique()) == ["euler2", "euler64"]
    assert sorted(result.summary["model"]) == ["euler2", "euler64"]
    assert sorted(result.leaderboard["model"]) == ["euler2", "euler64"]
    assert list(result.leaderboard["rank"]) == [1, 2]
    alone = rb.benchmark(m1, data, model_label="euler2", **SETTINGS)
    mine = result.table[result.table["model"] == "euler2"].drop(columns="eval_seconds")
    assert mine.reset_index(drop=True).equals(alone.table.drop(columns="eval_seconds"))
    assert result.report is not None and result.report.exists()
    assert (tmp_path / "leaderboard.csv").exists()


def test_a_list_over_several_datasets_labels_each():
    torch.manual_seed(0)
    m, a, b = Plain(2).eval(), rings(40, 1), rings(40, 2)
    result = rb.benchmark([("m", m, a), ("m2", m, b), ("m3", m, a)], None, **SETTINGS)
    assert result.summary[["model", "dataset"]].values.tolist() == [
        ["m", "custom/0"], ["m2", "custom/1"], ["m3", "custom/0"]]
    assert set(result.leaderboard["dataset"]) == {"custom/0", "custom/1"}
