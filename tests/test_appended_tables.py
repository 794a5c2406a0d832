"""The runner appends each finished unit's rows to results.csv and training.csv (O(1) per cell)
and assembles the tables from the store once at the end: the appended tables must hold exactly
the rows of the assembled ones, whole (every column), only in completion order."""

from __future__ import annotations

import shutil

import pandas as pd

from robustbench_ode.config import parse_suite
from robustbench_ode.run import runner

SUITE = {
    "name": "appended",
    "dataset": {"name": "sphere2", "n_train": 96, "n_test": 48},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 6, "batch_size": 32, "lr": 0.01},
    "train": {"seeds": [0, 1], "grid": [{"solver": "euler", "steps": [1, 3]},
                                        {"solver": "dopri5", "tol": [0.01]}]},
    "test": [{"solver": "euler", "step_factors": [1, 2]}, {"solver": "rk4", "steps": [4]},
             {"solver": "dopri5", "tol": [0.001]}],
    "diagnostics": {"enabled": False},
}
WALL_CLOCK = ("seconds", "_per_s")


def _rows(path) -> pd.DataFrame:
    df = pd.read_csv(path)
    df = df.drop(columns=[c for c in df.columns if c.endswith(WALL_CLOCK)])
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


def test_appended_tables_equal_the_assembled_ones(tmp_path, monkeypatch):
    kept = tmp_path / "appended"
    kept.mkdir()
    real = runner._assemble
    calls = []

    def spy(todo, suite, store, unstored, out_dir, *args, **kwargs):
        if calls:  # the final assembly: keep the tables as the units appended them
            for name in ("results.csv", "training.csv"):
                shutil.copy(out_dir / name, kept / name)
        calls.append(len(todo))
        return real(todo, suite, store, unstored, out_dir, *args, **kwargs)

    monkeypatch.setattr(runner, "_assemble", spy)
    monkeypatch.setattr(runner, "write_report_safely", lambda run_dir: None)
    out = tmp_path / "out"
    report = runner.run_suite(parse_suite(SUITE), out, progress=False)
    assert len(calls) == 2 and len(report.trained) == 6
    for name in ("results.csv", "training.csv"):
        appended, assembled = _rows(kept / name), _rows(out / name)
        assert len(assembled) > 0
        pd.testing.assert_frame_equal(appended, assembled, obj=name)
