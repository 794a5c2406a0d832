"""Acceptance (issue 28, item 8, part): bounded thread and worker counts, ``--out ""`` refused,
CSV output neutralised against formula injection."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tiny_suite import tiny_suite

from robustbench_ode import cli
from robustbench_ode.core.errors import SuiteError
from robustbench_ode.outputs.tables import neutral, write_csv
from robustbench_ode.run import threads

TINY = tiny_suite()


@pytest.mark.parametrize("option", ["--threads", "--workers"])
def test_a_huge_thread_or_worker_count_is_one_line(tmp_path, option, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(json.dumps(TINY))
    assert cli.main(["run", str(suite), "--out", str(tmp_path / "o"), option, str(10**20)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "at most 1024" in err
    assert not (tmp_path / "o").exists()


def test_a_huge_omp_num_threads_is_one_line(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", str(10**20))
    with pytest.raises(SuiteError, match="OMP_NUM_THREADS=100000000000000000000: at most 1024"):
        threads.budget(1)


def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "tiny.yaml"
    suite.write_text(json.dumps(TINY))
    assert cli.main(["run", str(suite), "--out", "", "--no-progress"]) == 2
    assert "--out '': an empty path" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("value, written", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("@SUM(A1)", "'@SUM(A1)"), ("+1+1", "'+1+1"),
    ("-1+cmd", "'-1+cmd"), ("-0.5", "-0.5"), ("euler", "euler"), (3, 3),
])
def test_csv_text_a_spreadsheet_would_run_is_neutralised(tmp_path, value, written):
    assert neutral(value) == written
    write_csv(pd.DataFrame({"label": [value]}), tmp_path / "t.csv")
    assert str(written) in (tmp_path / "t.csv").read_text()
    if written != value:
        assert f"\n{value}" not in (tmp_path / "t.csv").read_text()
