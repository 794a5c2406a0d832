"""The numbers README.md and docs/ state are the committed runs'. Every numeric pipe table of
README.md and docs/**/*.md is registered in tests/published_tables.py to the test here (or in
tests/test_dupont.py, or the diagnostics' tests/test_published_diagnostics.py) that recomputes
it from a committed ``results/*/`` file or a registry, or marked as a definition (no measured
number) or timing; an unregistered table fails ``test_every_numeric_table_is_registered_to_its_source``.
BENCHMARKS.md is exempt: it holds performance data (timings) only. The tables are written by hand,
so a rerun that moves a number, or an edit that mistypes one, fails here."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
R = "docs/reproductions.md"
CELL = re.compile(r"^\**(?P<mean>\d\.\d{3})\**(?: \((?P<low>\d\.\d{2})-(?P<high>\d\.\d{2})\))?$")


def _stated(found: re.Match, acc: pd.Series) -> bool:
    """The cell says the mean to 3 decimals (and the min-max to 2), as Python formats them."""
    spread = (f"{acc.min():.2f}", f"{acc.max():.2f}")
    return found["mean"] == f"{acc.mean():.3f}" and found["low"] in (None, spread[0]) \
        and found["high"] in (None, spread[1])


def _headline() -> tuple[list[str], list[list[str]]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## At the paper's scale: `suites/sphere2.yaml`", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines() if line.startswith("|")]
    header, body = [c.strip() for c in rows[0]], [[c.strip() for c in r] for r in rows[2:]]
    return header, body


def _accuracies(results: pd.DataFrame, train_steps: int, column: str) -> pd.Series:
    rows = results[(results["train_solver"] == "euler") & (results["train_steps"] == train_steps)]
    if column == "reference":
        picked = rows[rows["is_reference"]]
    else:
        solver, steps = column.lower().split()
        picked = rows[(rows["test_solver"] == solver) & (rows["test_steps"] == int(steps))]
    return picked["accuracy"]


def test_the_readme_headline_table_is_the_committed_run():
    header, body = _headline()
    assert header[0] == "trained with" and len(body) >= 4
    results = pd.read_csv(ROOT / "results" / "sphere2" / "results.csv")
    checked = 0
    for row in body:
        train_steps = int(re.fullmatch(r"Euler (\d+) steps?", row[0]).group(1))
        for column, cell in zip(header[1:], row[1:]):
            found = CELL.match(cell)
            assert found, f"README headline: {row[0]} / {column}: {cell!r} is not 'mean' or 'mean (low-high)'"
            acc = _accuracies(results, train_steps, column)
            assert len(acc) == 5, (row[0], column, len(acc))  # five seeds
            assert _stated(found, acc), (row[0], column, cell)
            checked += 1
    assert checked == len(body) * (len(header) - 1)


GRID_HEADER = re.compile(r"^\| (?P<dim>dimension, )?train steps \\ (?P<solver>\w+) test steps \|")


# The markdown files whose grid tables are checked: any file can be added (the lead points it at
# the new README); a file without such a table adds nothing.
MARKDOWN = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]


def _grid_tables(path: str = "docs/reproductions.md") -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(results folder, solver, header, rows) of every 'train steps \\ SOLVER test steps' table in
    the markdown file ``path`` (relative to the repository root); the folder is the last committed
    run named above the table in its section (else the first one named in the section)."""
    text = (ROOT / path).read_text()
    tables = []
    for section in text.split("\n## ")[1:]:
        def runs(part: str) -> list[str]:
            return [name for name in re.findall(r"results/([a-z0-9_]+)", part)
                    if (ROOT / "results" / name / "results.csv").is_file()]

        lines = section.splitlines()
        for i, line in enumerate(lines):
            found = GRID_HEADER.match(line)
            if not found:
                continue
            named = runs("\n".join(lines[:i]))[-1:] or runs(section)[:1]
            assert named, f"a table in section {lines[0]!r} names no committed run"
            rows = []
            for body in lines[i + 2:]:
                if not body.startswith("|"):
                    break
                rows.append([c.strip() for c in body.strip().strip("|").split("|")])
            header = [c.strip() for c in line.strip().strip("|").split("|")]
            tables.append((named[0], found["solver"].lower(), header, rows))
    return tables


@pytest.mark.parametrize("path", MARKDOWN)
def test_the_grid_tables_are_the_committed_runs(path):
    """Every 'train steps \\ SOLVER test steps' table of a markdown file: each mean is the
    mean over seeds of the committed run's accuracy (trained and tested with that solver), each
    min-max the range; the reference column is the reference rows."""
    tables = _grid_tables(path)
    assert len(tables) >= (6 if path == "docs/reproductions.md" else 0)
    for run, solver, header, rows in tables:
        results = pd.read_csv(ROOT / "results" / run / "results.csv")
        for row in rows:
            label = row[0].split(", ")
            mine = results[(results["train_solver"] == solver) & (results["train_steps"] == int(label[-1]))]
            if len(label) == 2:  # "3-D, 2": the dataset of that dimension
                dim = label[0].removesuffix("-D")
                mine = mine[mine["dataset"].str.fullmatch(rf"\D+{dim}")]
            assert len(mine), (run, row[0])
            for column, cell in zip(header[1:], row[1:]):
                if not cell:
                    continue
                found = CELL.match(cell)
                assert found, (run, row[0], column, cell)
                if column.startswith("reference"):
                    acc = mine[mine["is_reference"]]["accuracy"]
                else:
                    at = (mine["test_solver"] == solver) & (mine["test_steps"] == int(column))
                    acc = mine[at]["accuracy"]
                where = f"{run}: {solver} {row[0]} / {column}"
                assert len(acc), where
                assert _stated(found, acc), (where, cell)


def test_the_adaptation_table_is_the_committed_runs():
    """docs/reproductions.md's adaptation table: final steps, accuracies, drop and the ratios to
    the critical count under both definitions (strict, adaptation; fixed checks), recomputed from
    results/adaptation and results/sphere2's critical table."""
    from robustbench_ode.outputs.critical import adapted_vs_critical, critical_table

    text = (ROOT / "docs" / "reproductions.md").read_text()
    lines = text.split("| seed | initial steps (heuristic) |", 1)[1].splitlines()[2:]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]
    rows = rows[:next((i for i, r in enumerate(rows) if not r[0].isdigit()), len(rows))]
    critical = critical_table(pd.read_csv(ROOT / "results" / "sphere2" / "results.csv"))
    table = adapted_vs_critical(pd.read_csv(ROOT / "results" / "adaptation" / "results.csv"), critical)
    table = table.set_index("seed")
    assert len(rows) == 5
    for seed, _init, final, _range, acc, check, drop, strict, adapt, _ref in rows:
        r = table.loc[int(seed)]
        assert int(final) == r.final_steps, seed
        assert acc == f"{r.train_accuracy:.3f}" and check == f"{r.check_accuracy:.3f}", seed
        assert drop == f"{100 * r['drop']:.1f} pt", seed
        assert strict == f"{r.ratio_to_critical_strict:.2f}", seed
        assert adapt == f"{r.ratio_to_critical_adaptation:.2f}", seed


def test_the_sphere2_critical_counts_stated_in_reproductions():
    """docs/reproductions.md, Sphere2 'Critical step count': both rules, both check sets."""
    from robustbench_ode.outputs.critical import critical_table

    t = critical_table(pd.read_csv(ROOT / "results" / "sphere2" / "results.csv"))
    t = t.set_index(["train_solver", "critical_rule", "critical_checks"])
    stated = {("euler", "strict"): 256, ("midpoint", "strict"): 32, ("rk4", "strict"): 8,
              ("euler", "adaptation"): 128, ("midpoint", "adaptation"): 16, ("rk4", "adaptation"): 4}
    for (solver, rule), steps in stated.items():
        for checks in ("fixed", "fixed+adaptive"):
            assert t.loc[(solver, rule, checks), "critical_steps"] == steps, (solver, rule, checks)
    euler = t.loc[("euler", "strict", "fixed")]
    assert (euler.critical_steps_min, euler.critical_steps_max) == (128, 256)
    assert round(euler.critical_steps_mean) == 205 and round(euler.critical_steps_std) == 70
    adapt = t.loc[("euler", "adaptation", "fixed")]
    assert (adapt.critical_steps_min, adapt.critical_steps_max) == (64, 128)
    assert t.loc[("euler", "strict", "fixed+adaptive"), "critical_per_seed"] == "0:256 1:- 2:- 3:256 4:128"
    assert t.loc[("rk4", "strict", "fixed+adaptive"), "critical_per_seed"] == "0:8 1:8 2:128 3:4 4:8"


def test_the_sphere2_why_they_break_paragraph_is_the_committed_diagnosis():
    """docs/reproductions.md's "Why they break": every count and percentage recomputed from
    results/sphere2/diagnostics.csv (Euler-trained models, seeds pooled)."""
    text = (ROOT / "docs" / "reproductions.md").read_text()
    para = " ".join(text[text.index("**Why they break** (`results/sphere2"):].split("\n\n")[0].split())
    d = pd.read_csv(ROOT / "results" / "sphere2" / "diagnostics.csv")
    e = d[d["train_solver"] == "euler"]
    by = e.groupby("train_steps")

    def pct(steps: int, column: str) -> str:
        return f"{100 * by.get_group(steps)[column].mean():.0f} %"

    counts = {s: g["effect"].value_counts().to_dict() for s, g in by}
    assert counts[1] == {"fold": 5} and counts[2] == {"fold": 5}
    assert counts[4] == {"fold": 3, "mixed": 2} and counts[8] == {"accumulation": 4, "mixed": 1}
    assert counts[128] == {"accumulation": 3, "robust": 1, "undetermined": 1}
    assert counts[256] == {"accumulation": 1, "robust": 1, "undetermined": 3}
    assert all(counts[s] == {"accumulation": 5} for s in (16, 32, 64))
    assert f"along {pct(1, 'fold_segment_fraction')[:-2]} % and {pct(2, 'fold_segment_fraction')}" in para
    assert f"{pct(1, 'flips_at_fold_share')[:-2]} % and {pct(2, 'flips_at_fold_share')} of the flips" in para
    assert f"along {pct(8, 'fold_segment_fraction')} of the segments, {pct(8, 'flips_at_fold_share')}" in para
    assert all(by.get_group(s)["fold_fraction"].max() == 0 for s in (16, 32, 64, 128, 256))
    flips = [100 * by.get_group(s)["flip_fraction"].mean() for s in (16, 32, 64, 128, 256)]
    assert (f"{flips[0]:.0f} % of the samples flip at 16 steps, {flips[1]:.0f} % at 32, {flips[2]:.0f} % at "
            f"64, {flips[3]:.1f} % at 128 and {flips[4]:.1f} % at 256") in para
    undetermined = e[(e["train_steps"] == 256) & (e["effect"] == "undetermined")]["flips"]
    assert f"{undetermined.min():.0f} to {undetermined.max():.0f} flips in 256 samples" in para
    assert d["ref_fold_fraction"].max() == 0 and "`ref_fold_fraction` 0" in para


SHORTFALL = {("per seed", "10 000"): ("sphere2_shortfall", "sphere2", "it10k"),
             ("per seed", "20 000"): ("sphere2_shortfall", "sphere2", "it20k"),
             ("per seed", "40 000"): ("sphere2_shortfall_40k", "sphere2", "it40k"),
             ("one file", "10 000"): ("sphere2_shortfall", "sphere2_fixed", "it10k"),
             ("one file", "20 000"): ("sphere2_shortfall", "sphere2_fixed", "it20k")}


@functools.cache  # the test asks for each row three times; each reads a 10 MB training log
def _shortfall_cells(folder: str, dataset: str, training: str) -> list[str]:
    """One row of the shortfall table as docs/reproductions.md writes it, from the committed run."""
    from robustbench_ode.outputs.tables import read_training

    d = pd.read_csv(ROOT / "results" / folder / "results.csv")
    d = d[(d["dataset"] == dataset) & (d["training"] == training)]
    log = read_training(ROOT / "results" / folder / "training.csv.gz")
    log = log[(log["dataset"] == dataset) & (log["training"] == training)]

    def euler(steps: int) -> pd.Series:
        return d[(d["test_solver"] == "euler") & (d["test_steps"] == steps)].sort_values("seed")["accuracy"]

    last = log[log["iteration"] > log["iteration"].max() - 1000].groupby("seed")["loss"].mean()
    return [" ".join(f"{a:.3f}" for a in euler(64)), f"{euler(64).mean():.3f}", f"{euler(128).mean():.3f}",
            f"{euler(256).mean():.3f}", f"{d[d['is_reference']]['accuracy'].mean():.3f}",
            " ".join(f"{v:.3f}" for v in last)]


def test_the_sphere2_shortfall_table_and_conclusion_are_the_committed_runs():
    """docs/reproductions.md, 'Five seeds: the data construction and training to a plateau': every
    cell of its table, and the conclusion's means and ranges, from the two committed runs."""
    text = (ROOT / "docs" / "reproductions.md").read_text()
    section = text[text.index("**Five seeds: the data construction"):text.index("## Step adaptation")]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| per seed") or line.startswith("| one file")]
    assert sorted((r[0], r[1]) for r in rows) == sorted(SHORTFALL)
    for row in rows:
        assert row[2:] == _shortfall_cells(*SHORTFALL[(row[0], row[1])]), row[:2]
    para = " ".join(section[section.index("**Conclusion.**"):].split())
    means = {k: _shortfall_cells(*v)[1] for k, v in SHORTFALL.items()}
    assert (f"from {means['per seed', '10 000']} to {means['per seed', '20 000']} to "
            f"{means['per seed', '40 000']}") in para
    assert f"gives {means['one file', '10 000']} and {means['one file', '20 000']}" in para

    def spread(data: str) -> str:
        acc = [float(a) for k, v in SHORTFALL.items() if k[0] == data
               for a in _shortfall_cells(*v)[0].split()]
        return f"{min(acc):.2f}-{max(acc):.2f}"

    assert f"{spread('one file')} over its seeds, against {spread('per seed')}" in para


# --- every table of README.md and docs/ is registered (tests/published_tables.py) -----------------

def _tables():
    import published_tables

    return published_tables, [t for d in published_tables.docs() for t in published_tables.tables(d)]


def test_every_numeric_table_is_registered_to_its_source():
    """A numeric pipe table of README.md or docs/ that ``published_tables.SOURCES`` does not name
    fails here in one line naming the doc, the heading and the first header cell; a registered
    test must exist (the diagnostics file is written by the diagnostics re-run)."""
    pt, found = _tables()
    unregistered = [f"{t.doc}:{t.line}: table under '{t.heading}' starting '{t.first}' has no source in "
                    "tests/published_tables.py" for t in found if t.numeric and t.key not in pt.SOURCES]
    assert not unregistered, "\n".join(unregistered)
    stale = sorted(set(pt.SOURCES) - {t.key for t in found if t.numeric})
    assert not stale, f"registered tables not in the docs any more: {stale}"
    for key, source in pt.SOURCES.items():
        kind = source.split(":", 1)[0]
        assert kind in ("definition", "timing", "pending") or source.startswith("tests/"), (key, source)
        if "::" in source:
            path, name = source.split("::")
            assert f"def {name}(" in (ROOT / path).read_text(), f"{key}: {source} does not exist"


def test_the_meta_test_sees_an_unregistered_table(tmp_path, monkeypatch):
    import published_tables as pt

    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# t\n\n## Numbers\n\n| a | b |\n|---|---|\n| x | 0.5 |\n")
    monkeypatch.setattr(pt, "ROOT", tmp_path)
    [t] = pt.tables("README.md")
    assert t.numeric and t.key == ("README.md", "Numbers", "a") and t.key not in pt.SOURCES


def test_no_table_is_pending():
    pt, _ = _tables()
    pending = {k: v for k, v in pt.SOURCES.items() if v.startswith("pending")}
    assert not pending, "\n".join(f"{k[0]} / {k[1]}: {v}" for k, v in pending.items())


def _mean_table_check(run: str, table, pick_row, pick_column, fmt: str = "{:.3f}") -> int:
    """Every non-empty cell of ``table`` is the mean accuracy (formatted ``fmt``, optionally bold)
    over the rows ``pick_row(results, label) & pick_column(results, column)`` select."""
    results = pd.read_csv(ROOT / "results" / run / "results.csv")
    checked = 0
    for row in table.rows:
        for column, cell in zip(table.header[1:], row[1:]):
            acc = results[pick_row(results, row[0]) & pick_column(results, column)]["accuracy"]
            assert len(acc), (run, row[0], column)
            assert cell.strip("*") == fmt.format(acc.mean()), (table.doc, row[0], column, cell)
            checked += 1
    return checked


def _solver_column(results: pd.DataFrame, column: str) -> pd.Series:
    """'Euler 16', 'rk4 128', 'dopri5 1e-3' or 'reference' as a row mask."""
    if column == "reference":
        return results["is_reference"]
    solver, at = column.lower().split()
    mask = (results["test_solver"] == solver) & ~results["is_reference"]
    if "e-" in at:
        return mask & (results["test_tol"] == float(at))
    return mask & (results["test_steps"] == int(at))


def test_the_readme_demo_table_is_the_committed_run():
    """README 'The effect in one minute': means over the two seeds of results/demo."""
    import published_tables as pt

    t = pt.table("README.md", "The effect in one minute", "trained with")

    def trained(results: pd.DataFrame, label: str) -> pd.Series:
        steps = int(re.fullmatch(r"Euler (\d+) steps", label).group(1))
        return (results["train_solver"] == "euler") & (results["train_steps"] == steps)

    assert _mean_table_check("demo", t, trained, _solver_column) == 16


def test_the_quick_suite_table_is_the_committed_run():
    """docs/reproductions.md 'The effect, measured': results/quick, Euler tests, seeds pooled."""
    import published_tables as pt

    t = pt.table(R, "The effect, measured (`make bench`)", "train steps \\ test steps")

    def trained(results: pd.DataFrame, label: str) -> pd.Series:
        return (results["train_solver"] == "euler") & (results["train_steps"] == int(label))

    def tested(results: pd.DataFrame, column: str) -> pd.Series:
        return (results["test_solver"] == "euler") & (results["test_steps"] == int(column))

    assert _mean_table_check("quick", t, trained, tested) == 40



def test_the_solver_tables_are_the_registry():
    """docs/solvers.md's and docs/torchode.md's solver tables: each name's order, stages and kind
    are the solver registry's (a non-result source: the entries' declared metadata)."""
    import published_tables as pt

    from robustbench_ode.solvers.catalog import SOLVERS

    listed = pt.table("docs/solvers.md", "Solvers from the command line and Python (moved from the README)",
                      "name")
    for name, order, stages, kind, _note in listed.rows:
        s = SOLVERS.get(name.strip("`"))
        assert (int(order), int(stages), kind) == (s.order, s.stages, s.kind.value), (name, s)
    assert {r[0].strip("`") for r in listed.rows} == {n for n in SOLVERS.names() if n != "exact"}
    for name, _stepper, order, stages, _note in pt.table("docs/torchode.md", "torchode backend", "name").rows:
        s = SOLVERS.get(name.strip("`"))
        assert (int(order), int(stages)) == (s.order, s.stages), name


def _xor_accuracy(results: pd.DataFrame, steps: int, seed: int, column: str) -> str:
    rows = results[(results["train_steps"] == steps) & (results["seed"] == seed)]
    if column == "train config":
        rows = rows[rows["is_train_config"]]
    elif column == "exact flow":
        rows = rows[rows["test_solver"] == "exact"]
    else:
        solver, at = column.replace(" steps", "").split()
        rows = rows[(rows["test_solver"] == solver) & (rows["test_steps"] == int(at))]
    assert len(rows) == 1, (steps, seed, column)
    return f"{rows['accuracy'].iloc[0]:.2f}"


def test_the_xor_tables_are_the_committed_run():
    """docs/xor_fan.md 'Results' (one row per seed, or seeds that agree) and docs/reproductions.md's
    XOR table (seeds 0 / 1 / 2 in one cell), from results/xor_fan."""
    import published_tables as pt

    results = pd.read_csv(ROOT / "results" / "xor_fan" / "results.csv")
    results = results[results["train_solver"] == "euler"]
    t = pt.table("docs/xor_fan.md", "Results", "trained with")
    for row in t.rows:
        steps = int(row[0].split()[1])
        for column, cell in zip(t.header[2:], row[2:]):
            assert {cell} == {_xor_accuracy(results, steps, int(s), column) for s in row[1].split(", ")}, row
    t = pt.table(R, "Lady Windermere's fan: the XOR case", "trained with")
    for row in t.rows:
        steps = int(re.match(r"euler (\d+), seeds 0 / 1 / 2", row[0]).group(1))
        for column, cell in zip(t.header[1:], row[1:]):
            assert cell == " / ".join(_xor_accuracy(results, steps, s, column) for s in (0, 1, 2)), row


def _close(cell: str, value: float) -> bool:
    """``cell`` is ``value`` rounded to the decimals the cell shows (bold allowed)."""
    text = cell.strip("*")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(float(text) - value) <= 0.5 * 10 ** -decimals + 1e-12


INVESTIGATION = {"10 000 it, lr 1e-4 (published)": ("sphere2", "default"),
                 "40 000 it, lr 1e-4": ("sphere2_investigation", "lr1e-4_40k"),
                 "10 000 it, lr 1e-3": ("sphere2_investigation", "lr1e-3_10k")}


def test_the_sphere2_investigation_table_is_the_committed_run():
    """docs/reproductions.md's 256-step model table: accuracies and last-1000-iteration losses of
    seeds 0 and 1 from results/sphere2 and results/sphere2_investigation (the verdict column is the
    diagnostics': tests/test_published_diagnostics.py)."""
    import published_tables as pt

    from robustbench_ode.outputs.tables import read_training

    t = pt.table(R, "The 256-step model's shortfall at 64 test steps: training length, learning rate, seeds",
                 "256-step model")
    assert t.header[-2:] == ("loss", "verdict") and len(t.rows) == 6
    label = ""
    logs: dict[tuple[str, str], pd.DataFrame] = {}  # each log read once (results/sphere2's is 42 MB)
    for row in t.rows:
        label = row[0] or label
        folder, training = INVESTIGATION[label]
        d = pd.read_csv(ROOT / "results" / folder / "results.csv")
        d = d[(d["training"] == training) & (d["train_steps"] == 256) & (d["seed"] == int(row[1]))]
        for column, cell in zip(t.header[2:-2], row[2:-2]):
            acc = d[_solver_column(d, column)]["accuracy"]
            assert len(acc) == 1 and _close(cell, acc.iloc[0]), (label, row[1], column, cell)
        if (folder, training) not in logs:
            log = read_training(ROOT / "results" / folder / "training.csv.gz")
            logs[folder, training] = log[(log["training"] == training) & (log["train_steps"] == 256)]
        log = logs[folder, training]
        log = log[log["seed"] == int(row[1])]
        last = log[log["iteration"] > log["iteration"].max() - 1000]["loss"].mean()
        assert _close(row[-2], last), (label, row[1], "loss", row[-2], last)


def _mean_range(acc: pd.Series) -> str:
    return f"{acc.mean():.3f} ({acc.min():.2f}-{acc.max():.2f})"


def test_the_published_against_ours_table_is_the_committed_run():
    """docs/reproductions.md, Sphere2 'The comparison': our column from results/sphere2 (5 seeds)."""
    import published_tables as pt

    heading = "Sphere2: Euler training, tested over a grid of step counts (Ott et al., Figure on Sphere2)"
    t = pt.table(R, heading, "")
    ours = {row[0]: row[2].replace("**", "") for row in t.rows}
    results = pd.read_csv(ROOT / "results" / "sphere2" / "results.csv")

    def at(train: int, column: str) -> pd.Series:
        return _accuracies(results, train, column)

    assert ours["256 steps, tested at 1 step"] == _mean_range(at(256, "euler 1"))
    assert ours["256 steps, tested at 64"] == _mean_range(at(256, "euler 64"))
    assert ours["256 steps, tested at 128 / 256 / 512"] == " / ".join(
        _mean_range(at(256, f"euler {n}")) for n in (128, 256, 512))
    rows = results[(results["train_solver"] == "euler") & (results["train_steps"] == 256)]
    dopri = rows[(rows["test_solver"] == "dopri5") & (rows["test_tol"] == 1e-5) & ~rows["is_reference"]]
    assert ours["256 steps, rk4 at 128, dopri5 at 1e-5"] == (
        f"{_mean_range(at(256, 'rk4 128'))}, {_mean_range(dopri['accuracy'])}")
    assert at(2, "euler 2").min() == 1.0 and ours["2 steps, tested at 2"] == "1.000 (all five)"
    two = results[(results["train_solver"] == "euler") & (results["train_steps"] == 2)]
    fine = two[(two["test_solver"] == "euler") & (two["test_steps"] >= 4)]
    means = fine.groupby("test_steps")["accuracy"].mean()
    per_seed = fine.groupby("seed")["accuracy"].agg(["min", "max"]).sort_values("max")
    low, high = per_seed.iloc[:3], per_seed.iloc[3:]
    assert ours["2 steps, tested at 4 or more"] == (
        f"{means.min():.2f}-{means.max():.2f} ({fine['accuracy'].min():.2f}-{fine['accuracy'].max():.2f}): "
        f"three seeds at {low['min'].min():.2f}-{low['max'].max():.2f}, "
        f"two at {high['min'].min():.2f}-{high['max'].max():.2f}")


def test_the_status_table_critical_counts_are_the_committed_run():
    """docs/reproductions.md's status table: the critical counts it quotes are results/sphere2's
    critical.csv (strict rule, fixed checks), and each 'N seeds' of a run is the run's seed count."""
    import published_tables as pt

    from robustbench_ode.outputs.critical import critical_table

    t = pt.table(R, "Reproductions: the published figures against ours", "figure")
    status = {row[0]: row[2] for row in t.rows}
    c = critical_table(pd.read_csv(ROOT / "results" / "sphere2" / "results.csv"))
    c = c[(c["critical_rule"] == "strict") & (c["critical_checks"] == "fixed")].set_index("train_solver")
    counts = ", ".join(f"{name} {int(c.loc[s, 'critical_steps'])}" for name, s in
                       (("Euler", "euler"), ("midpoint", "midpoint"), ("rk4", "rk4")))
    assert f"**run**: {counts} (below)" == status["Critical step count per train solver"]
    for row in t.rows:
        seeds = re.search(r"(\d) seeds", row[2])
        suite = re.fullmatch(r"`suites/(\w+)\.yaml`", row[1])
        if seeds and suite and (ROOT / "results" / suite[1] / "results.csv").is_file():
            n = pd.read_csv(ROOT / "results" / suite[1] / "results.csv")["seed"].nunique()
            assert int(seeds[1]) == n, (row[0], n)


def _spheres_gaps() -> pd.DataFrame:
    """|accuracy - reference accuracy| in points of every rk4 8/32/128 and dopri5 1e-3 row of
    results/spheres, with the model's (dataset, train steps, seed)."""
    r = pd.read_csv(ROOT / "results" / "spheres" / "results.csv")
    model = ["dataset", "train_solver", "train_steps", "seed"]
    ref = r[r["is_reference"]].set_index(model)["accuracy"]
    rk4 = (r["test_solver"] == "rk4") & r["test_steps"].isin([8, 32, 128])
    dopri = (r["test_solver"] == "dopri5") & (r["test_tol"] == 1e-3) & ~r["is_reference"]
    rows = r[rk4 | dopri].copy()
    rows["gap"] = 100 * (rows["accuracy"] - rows.set_index(model).index.map(ref).to_numpy()).abs()
    return rows


def test_the_spheres_accurate_solver_sentence_is_the_committed_run():
    """docs/reproductions.md, spheres 3-D/10-D: 'rk4 ... within X points for every model but ...,
    dopri5 ... within Z ... (W ..., V ...)', each number the largest gap in the committed run."""
    text = " ".join((ROOT / R).read_text().split())
    g = _spheres_gaps()
    out = (g["dataset"] == "spheres10") & (g["seed"] == 2)
    rk4, dopri = g[g["test_solver"] == "rk4"], g[g["test_solver"] == "dopri5"]
    rk4_out = rk4[out.loc[rk4.index] & (rk4["train_steps"] == 32)]
    dopri_out = dopri[out.loc[dopri.index] & dopri["train_steps"].isin([32, 128])]
    dopri_out = dopri_out.set_index("train_steps")["gap"]
    assert rk4_out["gap"].max() > rk4[~rk4.index.isin(rk4_out.index)]["gap"].max()
    stated = (f"rk4 at 8, 32 and 128 steps gives the reference's accuracy to within "
              f"{rk4[~rk4.index.isin(rk4_out.index)]['gap'].max():.1f} points for every model but the "
              f"10-D 32-step seed 2 ({rk4_out['gap'].max():.1f} at rk4 8), dopri5 at 1e-3 to within "
              f"{dopri[~out.loc[dopri.index]]['gap'].max():.1f} for every model but the 10-D seed-2 ones "
              f"({dopri_out[32]:.1f} points for the 32-step, {dopri_out[128]:.1f} for the 128-step model)")
    assert stated in text, stated


def test_the_biased_accuracy_premise_is_cited_and_its_arithmetic_holds():
    """docs/reproductions.md's premise about the released evaluation: cited to the released code's
    lines (checked against boschresearch/numerics_independent_neural_odes@bce9be8b:
    util/model_evaluation.py 36 divides by ``batch_size``, 54 passes ``opts.batch_size``, 57 takes
    the mean over batches; data/create_dataloader.py 28 builds the loader with that batch size),
    and the capped score of a perfect model on 1000 points in batches of 128."""
    text = " ".join((ROOT / R).read_text().split())
    for cite in ("commit bce9be8b", "`util/model_evaluation.py` line 36", "line 54", "line 57",
                 "(`data/create_dataloader.py` line 28)"):
        assert cite in text, cite
    full, last = divmod(1000, 128)
    capped = (full + last / 128) / (full + 1)
    assert f"({full} + {last}/128) / {full + 1} = {capped:.3f}" in text


def _config(results: pd.DataFrame, label: str, side: str) -> pd.Series:
    """'euler 20', 'dopri5 tol 1e-3', 'rk4 2' or '... (reference)' as a mask on the train or test
    columns (``side``: 'train' or 'test'); the reference row only where the label says so."""
    words = label.lower().replace(" (reference)", "").replace("tol ", "").split()
    mask = results[f"{side}_solver"] == words[0]
    if "e-" in words[1]:
        mask &= results[f"{side}_tol"] == float(words[1])
    else:
        mask &= results[f"{side}_steps"] == int(words[1])
    if side == "test":
        mask &= results["is_reference"] == label.endswith("(reference)")
    return mask


def test_the_van_der_pol_table_is_the_committed_run():
    """docs/time_series.md, Van der Pol: test MSE, mean over the 3 seeds of results/van_der_pol, to
    the digits each cell shows."""
    import published_tables as pt

    t = pt.table("docs/time_series.md", "Van der Pol, measured (`suites/van_der_pol.yaml`)", "test solver")
    results = pd.read_csv(ROOT / "results" / "van_der_pol" / "results.csv")
    for row in t.rows:
        for column, cell in zip(t.header[1:], row[1:]):
            mse = results[_config(results, row[0], "test") & _config(results, column, "train")]["mse"]
            assert len(mse) == 3 and _close(cell, mse.mean()), (row[0], column, cell, mse.mean())


def test_the_adjoint_table_is_the_committed_runs():
    """docs/reproductions.md, adjoint training: per seed (0 / 1), the adjoint from
    results/sphere2_adjoint, autograd from the same seeds of results/sphere2."""
    import published_tables as pt

    t = pt.table(R, "Adjoint training on Sphere2 (the talk's appendix)", "train steps")
    runs = {g: pd.read_csv(ROOT / "results" / f / "results.csv")
            for g, f in (("adjoint", "sphere2_adjoint"), ("autograd", "sphere2"))}
    for steps, gradient, seeds, *cells in t.rows:
        assert seeds == "0 / 1"
        r = runs[gradient]
        r = r[(r["train_solver"] == "euler") & (r["train_steps"] == int(steps))]
        picks = [r["is_train_config"], _solver_column(r, "euler 512"), r["is_reference"]]
        for pick, cell in zip(picks, cells):
            rows = r[pick].set_index("seed").loc[[0, 1]]
            shown = ["non-finite" if status == "non_finite" else f"{acc:.3f}"
                     for status, acc in zip(rows["status"], rows["accuracy"])]
            assert cell == " / ".join(shown), (steps, gradient, cell)


def test_the_fashion_mnist_table_is_the_committed_run():
    """docs/reproductions.md, Fashion-MNIST at full size: means over 3 seeds, reference min-max."""
    import published_tables as pt

    t = pt.table(R, "Fashion-MNIST at full size, NODE against ANODE", "model")
    results = pd.read_csv(ROOT / "results" / "fashion_mnist_full" / "results.csv")
    for model, trained, own, euler32, ref in t.rows:
        r = results[(results["model"] == model.lower()) & _config(results, trained, "train")]
        assert r["seed"].nunique() == 3, (model, trained)
        assert own == f"{r[r['is_train_config']]['accuracy'].mean():.3f}", (model, trained)
        assert euler32 == f"{r[_solver_column(r, 'euler 32')]['accuracy'].mean():.3f}", (model, trained)
        assert ref == _mean_range(r[r["is_reference"]]["accuracy"]), (model, trained)


def test_the_anode_table_is_the_committed_run():
    """docs/reproductions.md, augmented neural ODEs: the dopri5-1e-3-trained model at its train
    configuration (accuracy, NFE), the Euler-4-trained one at its train configuration and under
    the reference (accuracy, NFE); means over the seeds of results/anode, to the digits shown."""
    import published_tables as pt

    t = pt.table(R, "Augmented neural ODEs", "dataset")
    results = pd.read_csv(ROOT / "results" / "anode" / "results.csv")
    for dataset, model, acc, nfe, euler, ref, ref_nfe in t.rows:
        r = results[(results["dataset"] == dataset) & (results["model"] == model)]
        dopri = r[_config(r, "dopri5 1e-3", "train") & r["is_train_config"]]
        four = r[_config(r, "euler 4", "train")]
        train, reference = four[four["is_train_config"]], four[four["is_reference"]]
        for cell, value in ((acc, dopri["accuracy"]), (nfe, dopri["nfe"]), (euler, train["accuracy"]),
                            (ref, reference["accuracy"]), (ref_nfe, reference["nfe"])):
            assert len(value) and _close(cell, value.mean()), (dataset, model, cell, value.mean())


def test_the_tolerance_adaptation_table_is_the_committed_run():
    """docs/reproductions.md, tolerance adaptation: per seed of results/adaptation_tolerance, the
    final tolerance, the NFE of the test solve there and the training log's mean NFE, the
    accuracies and the ODE gap."""
    import published_tables as pt

    t = pt.table(R, "Tolerance adaptation at paper scale (fehlberg2, threshold 0.1)", "seed")
    folder = ROOT / "results" / "adaptation_tolerance"
    results, log = pd.read_csv(folder / "results.csv"), pd.read_csv(folder / "training.csv")
    assert [int(r[0]) for r in t.rows] == sorted(results["seed"].unique().tolist())
    for seed, tol, nfe, acc, factors, ref, gap in t.rows:
        r, lg = results[results["seed"] == int(seed)], log[log["seed"] == int(seed)].sort_values("iteration")
        own = r[r["is_train_config"]]["accuracy"].iloc[0]
        fehlberg = r[(r["test_solver"] == "fehlberg2")].set_index("test_factor")["accuracy"]
        reference = r[r["is_reference"]]["accuracy"].iloc[0]
        assert tol == f"{r['train_tol'].iloc[0]:.1e}".replace("e-0", "e-"), seed
        own_nfe = r[r["is_train_config"]]["nfe"].iloc[0]
        assert nfe == f"{own_nfe:.0f}; {lg['nfe'].mean():.0f}", seed
        assert (acc, ref) == (f"{own:.3f}", f"{reference:.3f}"), seed
        assert factors == f"{fehlberg[0.1]:.3f} / {fehlberg[10.0]:.3f}", seed
        assert gap == f"{100 * (own - reference):.1f} pt", seed


def _resnet_cell(results: pd.DataFrame, blocks: int, column: str) -> float:
    """One resnet-table column, mean over the seeds, for the models with ``blocks`` blocks."""
    r = results[(results["train_solver"] == "euler") & (results["train_steps"] == blocks)]
    column = column.replace(" (reference)", "").replace("euler at N (train)", "train")
    if column.startswith("train"):
        return r[r["is_train_config"]]["accuracy"].mean()
    if column.startswith("dopri5 1e-7"):
        return r[r["is_reference"]]["nfe" if column.endswith("NFE") else "accuracy"].mean()
    factor = re.fullmatch(r"euler (\d)N", column)
    at = f"euler {int(factor[1]) * blocks}" if factor else column
    return r[_solver_column(r, at)]["accuracy"].mean()


def test_the_resnet_tables_are_the_committed_runs():
    """docs/resnet.md's two tables (results/resnet, results/resnet_shared) and docs/reproductions.md's
    ResNet table (separate weights, then 'shared: euler 512 / dopri5 1e-7 / NFE'), seeds pooled."""
    import published_tables as pt

    runs = {n: pd.read_csv(ROOT / "results" / n / "results.csv") for n in ("resnet", "resnet_shared")}
    heading = "Measured: Sphere2, the quick suite's grid"
    tables = [t for t in pt.tables("docs/resnet.md") if t.heading == heading]
    assert len(tables) == 2
    for run, t in zip(("resnet", "resnet_shared"), tables):
        for row in t.rows:
            for column, cell in zip(t.header[1:], row[1:]):
                value = _resnet_cell(runs[run], int(row[0]), column)
                assert _close(cell, value), (run, row[0], column, cell, value)
    t = pt.table(R, "ResNet baselines", "blocks")
    shared = ("euler 512", "dopri5 1e-7 (reference)", "dopri5 1e-7 NFE")
    for row in t.rows:
        blocks = int(row[0])
        for column, cell in zip(t.header[1:-1], row[1:-1]):
            assert _close(cell, _resnet_cell(runs["resnet"], blocks, column)), (row[0], column, cell)
        for column, cell in zip(shared, row[-1].split(" / ")):
            assert _close(cell, _resnet_cell(runs["resnet_shared"], blocks, column)), (row[0], column, cell)


def test_the_time_series_table_is_the_committed_run():
    """docs/reproductions.md, time series: test MSE, mean over the seeds of results/van_der_pol."""
    import published_tables as pt

    t = pt.table(R, "Time series", "trained with \\ tested with")
    results = pd.read_csv(ROOT / "results" / "van_der_pol" / "results.csv")
    for row in t.rows:
        trained = re.sub(r"^(\w+), (?:tol )?(\S+)(?: steps)?.*$", r"\1 \2", row[0])
        for column, cell in zip(t.header[1:], row[1:]):
            tested = column.replace(" (ref.)", " (reference)")
            mse = results[_config(results, trained, "train") & _config(results, tested, "test")]["mse"]
            assert len(mse) == 3 and _close(cell, mse.mean()), (row[0], column, cell, mse.mean())


def test_the_gradient_memory_table_is_the_committed_run():
    """docs/reproductions.md, gradient method: saved MB and forward + backward NFE, means over the
    training log of results/gradient_memory (the s/iteration column is timing, not checked)."""
    import published_tables as pt

    t = pt.table(R, "Gradient method: autograd or the adjoint", "train solver")
    assert t.header[-1].startswith("s/iteration")
    log = pd.read_csv(ROOT / "results" / "gradient_memory" / "training.csv")
    for solver, auto_mb, adj_mb, auto_nfe, adj_nfe, _seconds in t.rows:
        for gradient, mb, nfe in (("autograd", auto_mb, auto_nfe), ("adjoint", adj_mb, adj_nfe)):
            lg = log[(log["training"] == gradient) & _config(log, solver, "train")]
            assert len(lg), (solver, gradient)
            assert _close(mb, lg["saved_mb"].mean()), (solver, gradient, mb, lg["saved_mb"].mean())
            forward, backward = nfe.split(" + ")
            assert _close(forward, lg["nfe"].mean()) and _close(backward, lg["nfe_backward"].mean()), \
                (solver, gradient, nfe, lg["nfe"].mean(), lg["nfe_backward"].mean())


REGULARISED = {"plain": ["plain"], "kinetic 1.0": ["kinetic"], "jacobian 0.01": ["jacobian_0.01"],
               "kinetic 1.0 + jacobian 0.01": ["both_0.01"],
               "jacobian 0.1 (alone or + kinetic 1.0)": ["jacobian", "both"]}


def _regularised_values(r: pd.DataFrame, trained: str, what: str) -> pd.Series:
    """Per model (training setting, seed), one column of the regularisation table."""
    m = r[_config(r, trained, "train")]
    own, ref = m[m["is_train_config"]].set_index(["training", "seed"]), m[m["is_reference"]].set_index(
        ["training", "seed"])
    value = {"accuracy": own["accuracy"], "nfe": own["nfe"], "ref_nfe": ref["nfe"],
             "gap": own["accuracy"] - ref["accuracy"]}[what]
    return value


def test_the_regularised_table_is_the_committed_run():
    """docs/reproductions.md, regularised dynamics: seed means from results/regularization; a
    'low-high' cell (the row pooling two settings) is the range over those models."""
    import published_tables as pt

    t = pt.table(R, "Regularised dynamics", "training")
    r = pd.read_csv(ROOT / "results" / "regularization" / "results.csv")
    columns = [("dopri5 1e-3", "accuracy"), ("dopri5 1e-3", "nfe"), ("dopri5 1e-3", "ref_nfe"),
               ("euler 2", "gap"), ("euler 2", "ref_nfe"), ("euler 8", "gap"), ("euler 8", "ref_nfe")]
    for row in t.rows:
        settings = REGULARISED[row[0]]
        for (trained, what), cell in zip(columns, row[1:]):
            values = _regularised_values(r, trained, what).loc[settings]
            low, _, high = cell.strip("*").partition("-")
            if not high:
                values = pd.Series([values.mean()])
            assert _close(low, values.min()) and _close(high or low, values.max()), \
                (row[0], trained, what, cell, values.to_dict())


def test_the_endpoint_table_is_the_committed_study_output():
    """docs/solvers.md's endpoint table: cell for cell the committed output of
    ``python -m robustbench_ode.studies.endpoint`` (results/endpoint/endpoint.md; the study is
    deterministic, and tests/test_solvers.py checks its mechanism), bold marks aside."""
    import published_tables as pt

    committed = [r for r in (ROOT / "results" / "endpoint" / "endpoint.md").read_text().splitlines()
                 if r.startswith("| ") and not r.startswith("| method")]
    committed = [tuple(c.strip() for c in r.strip().strip("|").split("|")) for r in committed]
    t = pt.table("docs/solvers.md", "Adaptive solves end on t1 with the method's own solution", "method")
    assert [tuple(c.replace("**", "") for c in row) for row in t.rows] == committed


def test_the_readme_critical_sentence_is_the_committed_run():
    """README, paper scale: 'from the critical step count on: N Euler steps (per seed a-b); trained
    with midpoint or rk4 ... at M and K steps', the strict rule with fixed checks of results/sphere2."""
    from robustbench_ode.outputs.critical import critical_table

    text = " ".join((ROOT / "README.md").read_text().split())
    c = critical_table(pd.read_csv(ROOT / "results" / "sphere2" / "results.csv"))
    c = c[(c["critical_rule"] == "strict") & (c["critical_checks"] == "fixed")].set_index("train_solver")
    e = c.loc["euler"]
    stated = (f"from the critical step count on: {int(e.critical_steps)} Euler steps (per seed "
              f"{int(e.critical_steps_min)}-{int(e.critical_steps_max)}); trained with midpoint or rk4 "
              f"they do so at {int(c.loc['midpoint', 'critical_steps'])} and "
              f"{int(c.loc['rk4', 'critical_steps'])} steps")
    assert stated in text, stated


def _numbers(text: str) -> list[str]:
    text = text.replace("w0=", "").replace("w1=", "").replace("dtype=torch.float64", "")
    return re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", text)


def test_the_xor_mechanism_table_is_the_snippet_the_doc_gives():
    """docs/xor_fan.md 'Why the effect happens': the doc's own snippet ('Reproducing the mechanism
    table') retrains seed 0 of suites/xor_fan.yaml (100 iterations on 4 points; the committed
    results.csv holds no weights) and every number of the table is its output, to the digits shown."""
    import contextlib
    import io

    import published_tables as pt

    doc = (ROOT / "docs" / "xor_fan.md").read_text()
    snippet = doc.split("### Reproducing the mechanism table", 1)[1].split("```python", 1)[1]
    snippet = snippet.split("```", 1)[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet.replace('"suites/', f'"{ROOT}/suites/'), "xor_fan.md", "exec"), {})
    printed = {int(line.split()[0]): _numbers(line.split(" ", 1)[1])
               for line in out.getvalue().splitlines() if line.strip()}
    t = pt.table("docs/xor_fan.md", "Why the effect happens", "trained")
    assert len(t.rows) == 3
    for row in t.rows:
        stated = [n for cell in row[1:] for n in _numbers(cell)]
        value = printed[int(row[0].split()[1])]
        assert len(stated) == len(value), (row[0], stated, value)
        wrong = [(s, v) for s, v in zip(stated, value) if not _close(s, float(v))]
        assert not wrong, (row[0], "stated vs printed", wrong)


def test_the_endpoint_sentence_at_1e6_is_the_committed_study_output():
    """docs/solvers.md 'At rtol = atol = 1e-6 the picture is the same (...)': each error is the
    committed output results/endpoint/endpoint_1e-6.md to 2 digits; past and landing NFE equal."""
    rows = {}
    for line in (ROOT / "results" / "endpoint" / "endpoint_1e-6.md").read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = [c.split(" / ") for c in cells[1:]]
    assert all(r[0][1] == r[1][1] for r in rows.values())

    printed = [rows["bosh3"][0][0], rows["bosh3"][1][0], rows["bosh3"][2][0].split(": ")[1],
               rows["dopri8"][0][0], rows["dopri8"][1][0], rows["dopri8"][2][0].split(": ")[1]]
    text = " ".join((ROOT / "docs" / "solvers.md").read_text().split())
    found = re.search(r"\(bosh3 (\S+) -> (\S+), scipy (\S+); dopri8 (\S+) -> (\S+), scipy (\S+); "
                      r"NFE unchanged for every method\)", text)
    assert found, "the 1e-6 sentence of docs/solvers.md"
    for stated, value in zip(found.groups(), printed):
        # 2 digits stated of a 3-digit output: half a unit of the stated digit, plus rounding
        exponent = stated.split("e")[1]
        assert abs(float(stated) - float(value)) <= 0.55 * 10 ** (int(exponent) - 1), (stated, value)
