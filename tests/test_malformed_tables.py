"""Property-based: malformed tables and JSON given to the commands that read them are one-line
errors (exit code 2, one line on stderr, no traceback), never a pandas traceback.

Each example takes a valid run (the committed smoke baseline as its ``results.csv``, a training
log, a ``meta.json``), breaks one file a command reads, and runs the command in-process:
``regress DIR --baseline CSV``, ``report DIR``, ``compare A B``, ``critical CSV [--adapted CSV]``
and ``leaderboard DIRS``. The breakages: an empty or blank file, a header only, garbage bytes, NUL
bytes, text that is not UTF-8, text in a number column, a fraction where a whole number belongs,
a missing key or metric column, an empty key cell, a ragged row, not CSV at all, and a directory
in place of the file; for ``meta.json`` invalid JSON, deep nesting and non-objects. ``verify DIR``
gets the same breakages in one stored cell's ``rows.csv``, ``training.csv`` or ``config.json``
with its manifest, and ``migrate DIR`` as a legacy cell without one (it blesses only a cell that
parses): exit 1, the cell named, no traceback.
"""

from __future__ import annotations

import io
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustbench_ode import cli
from robustbench_ode.config import parse_suite
from robustbench_ode.core.schema import RESULTS
from robustbench_ode.harness.cell import CellRecord, CellResult, InMemory, cells
from robustbench_ode.outputs.tables import RESULTS_FILLED as NOT_EMPTY
from robustbench_ode.outputs.tables import RESULTS_NEED as REQUIRED
from robustbench_ode.run.meta import write_json
from robustbench_ode.run.store import CellStore

NUMERIC = [c.name for c in RESULTS if c.kind in ("int", "float")]
WHOLE = [c.name for c in RESULTS if c.kind == "int"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = (ROOT / "results" / "baselines" / "smoke.csv").read_text()
BASE = pd.read_csv(io.StringIO(RESULTS))
TRAINING = "cell,seed,iteration,loss,accuracy,nfe\nc1,0,1,0.7,0.5,2\nc1,0,2,0.6,0.6,2\n"
META = '{"suite": "smoke", "peak_gpu_mb": NaN}\n'  # NaN: as older runs wrote it (still read)
MAX_LINE = 300

CSV_BREAKS = ["empty", "blank", "header_only", "garbage", "nul", "latin1", "non_numeric", "fraction",
              "missing_column", "empty_key", "ragged", "not_csv", "unrelated_columns", "directory"]
TRAINING_BREAKS = ["garbage", "nul", "latin1", "non_numeric", "ragged", "directory"]
JSON_BREAKS = ["empty", "garbage", "nul", "latin1", "truncated", "deep", "array", "string", "not_json",
               "directory"]
# (command, which file it breaks)
SLOTS = [("regress", "run"), ("regress", "baseline"), ("report", "results"), ("report", "training"),
         ("report", "meta"), ("compare", "a"), ("compare", "b"), ("critical", "results"),
         ("critical", "adapted"), ("critical", "training"), ("leaderboard", "one"),
         ("verify", "rows.csv"), ("verify", "training.csv"), ("verify", "config.json")]
TINY = {"name": "tiny", "dataset": {"name": "sphere2", "n_train": 32, "n_test": 16},
        "model": {"name": "ott_conv1d", "width": 2}, "training": {"iterations": 2, "batch_size": 16},
        "train": {"grid": [{"solver": "euler", "steps": [2]}]}, "test": [{"solver": "euler", "steps": [2]}],
        "diagnostics": {"enabled": False}}
TEXTS = ["abc", "1,5", "--", "0x1g", "1e", "∞", "n/a?", "1 2", "true", "[]"]


@st.composite
def broken_csv(draw, breaks=CSV_BREAKS, base=BASE):
    """(kind, bytes or None for a directory) of a broken results table."""
    kind = draw(st.sampled_from(breaks))
    df = base.copy()
    row = draw(st.integers(0, len(df) - 1))
    if kind == "empty":
        return kind, b""
    if kind == "blank":
        return kind, b"\n  \n\t\n"
    if kind == "header_only":
        return kind, (",".join(df.columns) + "\n").encode()
    if kind == "garbage":
        junk = draw(st.binary(min_size=0, max_size=500))
        return kind, junk + draw(st.sampled_from([b"\xff", b"\x00", b"\x80\x81"])) + junk
    if kind == "nul":
        text = df.to_csv(index=False).encode()
        at = draw(st.integers(0, len(text)))
        return kind, text[:at] + b"\x00" + text[at:]
    if kind == "latin1":
        col = draw(st.sampled_from([c for c in df.columns if df[c].dtype == object] or list(df.columns)))
        df[col] = df[col].astype(object)
        df.loc[row, col] = "caf\xe9"
        return kind, df.to_csv(index=False).encode("latin-1")
    if kind == "non_numeric":
        col = draw(st.sampled_from([c for c in NUMERIC if c in df.columns]))
        df[col] = df[col].astype(object)
        df.loc[row, col] = draw(st.sampled_from(TEXTS))
    elif kind == "fraction":
        col = draw(st.sampled_from([c for c in WHOLE if c in df.columns]))
        df[col] = df[col].astype(object)
        df.loc[row, col] = draw(st.sampled_from([1.5, 0.25, 1e30, float("inf"), -2.5]))
    elif kind == "missing_column":
        present = [c for c in REQUIRED if c in df.columns]
        df = df.drop(columns=draw(st.lists(st.sampled_from(present), min_size=1, max_size=3, unique=True)))
    elif kind == "empty_key":
        col = draw(st.sampled_from([c for c in NOT_EMPTY if c in df.columns]))
        df[col] = df[col].astype(object)
        df.loc[row, col] = draw(st.sampled_from([None, "NaN", "nan", "NA", ""]))
    elif kind == "ragged":
        text = df.to_csv(index=False)
        return kind, (text + ",".join(["x"] * (len(df.columns) + draw(st.integers(2, 5)))) + "\n").encode()
    elif kind == "not_csv":
        return kind, draw(st.sampled_from([b"hello world\n", b'"unclosed,quote\n1,2\n', b"{\"a\": 1}\n",
                                           b"<html><body>404</body></html>\n", b"a\n\"b"]))
    elif kind == "unrelated_columns":
        return kind, b"a,b,c\n1,2,3\n4,5,6\n"
    elif kind == "directory":
        return kind, None
    return kind, df.to_csv(index=False).encode()


@st.composite
def broken_json(draw):
    kind = draw(st.sampled_from(JSON_BREAKS))
    data = {"empty": b"", "truncated": b'{"suite": "smo', "array": b"[1, 2]", "string": b'"smoke"',
            "not_json": b"suite: smoke\n", "deep": b"[" * 100_000 + b"]" * 100_000, "nul": b'{"a":\x00}',
            "latin1": b'{"suite": "caf\xe9"}', "directory": None}
    if kind == "garbage":
        return kind, draw(st.binary(max_size=300)) + b"\xff"
    return kind, data[kind]


@st.composite
def case(draw):
    command, slot = draw(st.sampled_from(SLOTS))
    if slot in ("meta", "config.json"):
        broken = draw(broken_json())
    elif slot in ("training", "training.csv"):
        broken = draw(broken_csv(TRAINING_BREAKS, pd.read_csv(io.StringIO(TRAINING))))
    else:
        broken = draw(broken_csv())
    return command, slot, broken, draw(st.booleans()), draw(st.integers(1, 3))


_COUNTER = itertools.count()
SEEN: list[tuple] = []


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="rbt") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def stored_cell(workdir):
    """One cell as the store writes it (for verify): the baseline's first rows as its test rows,
    a two-row training log, a small state dict; its folder under workdir/stored/cells/."""
    cell = cells(parse_suite(json.loads(json.dumps(TINY))))[0]
    rows = [{**r, **cell.columns()} for r in BASE.head(3).to_dict("records")]
    log = [{"iteration": i, "loss": 0.7, "accuracy": 0.5, "nfe": 2} for i in range(2)]
    record = CellRecord(cell, cell.train_spec, weights=InMemory({"w": torch.zeros(3)}))
    result = CellResult(record, rows=rows, log=log)
    (workdir / "stored").mkdir()  # the store makes cells/ in an existing run folder, never its parents
    return CellStore(workdir / "stored").save(result)


def _write(path: Path, content: bytes | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


def _run_dir(root: Path, name: str, results: bytes | None = None, training: bytes | None | str = "ok",
             meta: bytes | None | str = "ok") -> Path:
    """A run directory; ``training``/``meta``: "ok", the bytes of a broken file, None a directory."""
    d = root / name
    _write(d / "results.csv", RESULTS.encode() if results is None else results)
    _write(d / "training.csv", TRAINING.encode() if training == "ok" else training)
    _write(d / "meta.json", META.encode() if meta == "ok" else meta)
    return d


def _verify_argv(root: Path, cell: Path, slot: str, broken: bytes | None, legacy: bool) -> list[str]:
    run = root / "run"
    copy = shutil.copytree(cell, run / "cells" / cell.name)
    write_json(run / "meta.json", {"suite": "tiny"})
    if legacy:  # a cell stored before manifests: migrate blesses it only if it parses
        (copy / "manifest.json").unlink()
    (copy / slot).unlink()
    _write(copy / slot, broken)
    return ["migrate" if legacy else "verify", str(run)]


def _argv(root: Path, command: str, slot: str, broken: bytes | None, as_dir: bool, n: int) -> list[str]:
    good = _run_dir(root, "good")
    bad_file = root / "bad" / "results.csv"
    if slot in ("run", "results", "a", "b", "one", "baseline", "adapted"):
        _write(bad_file, broken)
    bad_dir = bad_file.parent
    if command == "regress":
        if slot == "run":
            return ["regress", str(bad_dir), "--baseline", str(good / "results.csv")]
        return ["regress", str(good), "--baseline", str(bad_file)]
    if command == "report":
        if slot == "results":
            return ["report", str(bad_dir)]
        d = _run_dir(root, "run", training=broken if slot == "training" else "ok",
                     meta=broken if slot == "meta" else "ok")
        return ["report", str(d)]
    if command == "compare":
        bad = str(bad_dir if as_dir else bad_file)
        return ["compare", bad, str(good)] if slot == "a" else ["compare", str(good), bad]
    if command == "critical":
        if slot == "results":
            return ["critical", str(bad_file)]
        if slot == "adapted":
            return ["critical", str(good / "results.csv"), "--adapted", str(bad_file)]
        d = _run_dir(root, "adapted", training=broken)
        return ["critical", str(good / "results.csv"), "--adapted", str(d / "results.csv")]
    dirs = [str(_run_dir(root, f"ok{i}")) for i in range(n)]
    dirs.insert(len(dirs) // 2, str(bad_dir))
    return ["leaderboard", *dirs, "--out", str(root / "board")]


@settings(max_examples=400, deadline=5000,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(example=case())
def test_malformed_table_is_one_line_exit_2(example, workdir, stored_cell, capsys):
    command, slot, (kind, broken), as_dir, n = example
    root = workdir / f"e{next(_COUNTER)}"
    if command == "verify":
        argv = _verify_argv(root, stored_cell, slot, broken, as_dir)
    else:
        argv = _argv(root, command, slot, broken, as_dir, n)
    capsys.readouterr()
    code = cli.main(argv)
    out, err = capsys.readouterr()
    what = f"{command} with a broken {slot} ({kind}, {'legacy' if as_dir else 'manifest'})"
    if command == "verify":  # damage is a finding (exit 1, the cell named), not bad input
        assert code == 1, f"{what}: exit {code}\nstdout: {out[:500]}\nstderr: {err[:500]}"
        assert f"damaged {stored_cell.name}: " in out and err == "", f"{what}: {out} {err}"
        assert "Traceback" not in out
        SEEN.append((command, slot, kind))
        return
    assert code == 2, f"{what}: exit {code}\nstdout: {out[:500]}\nstderr: {err[:500]}"
    assert "Traceback" not in err, what
    assert err.endswith("\n") and err.count("\n") == 1, f"{what}: {err}"
    assert len(err) - 1 <= MAX_LINE, f"{what}: {err}"
    assert out == "", f"{what}: printed before failing: {out[:300]}"
    SEEN.append((command, slot, kind))


def test_malformed_tables_ran_every_command():
    assert {c for c, _, _ in SEEN} == {"regress", "report", "compare", "critical", "leaderboard", "verify"}
    assert len(SEEN) >= 400


def test_valid_tables_are_accepted(tmp_path, capsys):
    good = _run_dir(tmp_path, "good")
    assert cli.main(["regress", str(good), "--baseline", str(good / "results.csv")]) == 0
    assert cli.main(["compare", str(good), str(good / "results.csv")]) == 0
    assert cli.main(["critical", str(good / "results.csv")]) == 0
    assert cli.main(["leaderboard", str(good), str(_run_dir(tmp_path, "other")),
                     "--out", str(tmp_path / "board")]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_regress_refuses_a_baseline_without_key_or_metric_columns_or_rows(tmp_path, capsys):
    good = _run_dir(tmp_path, "good")
    for drop in (["test_solver"], ["accuracy"], ["nfe", "status"]):
        bad = _write(tmp_path / f"no_{drop[0]}.csv", BASE.drop(columns=drop).to_csv(index=False).encode())
        assert cli.main(["regress", str(good), "--baseline", str(bad)]) == 2
        err = capsys.readouterr().err
        assert f"no {drop[0]}" in err and str(bad) in err, err
    header = _write(tmp_path / "header.csv", (",".join(BASE.columns) + "\n").encode())
    assert cli.main(["regress", str(good), "--baseline", str(header)]) == 2
    assert "no rows" in capsys.readouterr().err


class _ClosedPipe(io.TextIOBase):
    def write(self, s):
        raise BrokenPipeError(32, "Broken pipe")


def test_closed_stdout_ends_quietly_in_process(tmp_path, monkeypatch, capsys):
    good = _run_dir(tmp_path, "good")
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert cli.main(["compare", str(good), str(good)]) == cli.EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


def test_closed_stdout_pipe_ends_quietly(tmp_path):
    # `compare A B | head -0`: the reader is gone before the first write
    good = _run_dir(tmp_path, "good")
    proc = subprocess.Popen([sys.executable, "-m", "robustbench_ode", "compare", str(good), str(good)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE
    assert err == "", err


def test_meta_json_is_strict_json(tmp_path):
    write_json(tmp_path / "meta.json", {"peak_gpu_mb": float("nan"), "x": [float("inf"), 1.0]})
    text = (tmp_path / "meta.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}")) == \
        {"peak_gpu_mb": None, "x": [None, 1.0]}


@pytest.mark.parametrize("argv", [["report", "{good}/results.csv"], ["report", "{root}/nowhere"],
                                  ["verify", "{good}/results.csv"], ["verify", "{root}"],
                                  ["leaderboard", "{good}", "--out", "{good}/results.csv"],
                                  ["report", "{good}", "--out", "{good}/meta.json"]])
def test_a_file_for_a_folder_and_the_like_are_one_line(tmp_path, capsys, argv):
    good = _run_dir(tmp_path, "good")
    argv = [a.format(good=good, root=tmp_path / "empty") for a in argv]
    (tmp_path / "empty").mkdir()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and len(err) <= 301, err


def test_report_of_a_malformed_run_leaves_no_empty_out_folder(tmp_path, capsys):
    """The inputs are read before --out is made: a bad run folder leaves nothing behind."""
    bad = _run_dir(tmp_path, "bad")
    (bad / "results.csv").write_text("not,a\ntable")
    out = tmp_path / "new" / "report"
    assert cli.main(["report", str(bad), "--out", str(out)]) == 2
    assert "results.csv" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
