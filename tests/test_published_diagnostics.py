"""The diagnostics numbers the docs state (docs/diagnostics.md, "Measured verdicts"; the verdicts
quoted in docs/reproductions.md) are the committed runs': every cell of a verdict table and each
fold / flip / accumulation number of the prose around it is recomputed from the run's
``diagnostics.csv`` (accuracies from its ``summary.csv``). The tables are written by hand, so a
re-diagnosis that moves a number, or an edit that mistypes one, fails here. Companion of
tests/test_published_numbers.py (the accuracy tables)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def _section(path: str, heading: str) -> str:
    """The text of the markdown section whose heading line starts with ``heading``."""
    text = (ROOT / path).read_text()
    start = text.index(heading)
    ends = [i for i in (text.find("\n## ", start + 1), text.find("\n### ", start + 1)) if i > 0]
    return text[start:min(ends, default=len(text))]


def _table(section: str) -> tuple[list[str], list[list[str]]]:
    """Header and body rows of the first markdown table in ``section``."""
    lines = section.split("\n|", 1)[1].split("\n\n", 1)[0].splitlines()
    lines = ["|" + lines[0], *lines[1:]]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return rows[0], rows[2:]


def _stated(cell: str, value: float) -> bool:
    """``cell`` states ``value``: '-' a missing one, '0' an exact zero, else the value rounded to
    the decimals written."""
    cell = cell.strip("*")
    if cell == "-":
        return value is None or (isinstance(value, float) and math.isnan(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if cell == "0":
        return value == 0
    decimals = len(cell.split(".")[1]) if "." in cell else 0
    return abs(float(cell) - value) <= 0.5 * 10 ** -decimals + 1e-12


def _pct(series: pd.Series) -> str:
    """'a-b' of a share column in whole percent, as the prose writes a range."""
    low, high = round(100 * series.min()), round(100 * series.max())
    return f"{low}-{high}" if low != high else f"{low}"


def _runs(run: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    diag = pd.read_csv(ROOT / "results" / run / "diagnostics.csv")
    summary = pd.read_csv(ROOT / "results" / run / "summary.csv")
    return diag, summary


def _check_table(header: list[str], body: list[list[str]], diag: pd.DataFrame,
                 summary: pd.DataFrame) -> int:
    """Every cell of a (train steps, seed, columns...) verdict table; returns the cells checked.
    A header names a column of diagnostics.csv, or of summary.csv (``acc_*``), or two of them
    joined by ' / ' (``crossing / ref crossing``)."""
    alias = {"crossing": "crossing_fraction", "ref crossing": "ref_crossing_fraction"}
    assert header[:2] == ["train steps", "seed"], header
    checked = 0
    for row in body:
        key = (int(row[0]), int(row[1]))
        d = diag[(diag["train_steps"] == key[0]) & (diag["seed"] == key[1])]
        s = summary[(summary["train_steps"] == key[0]) & (summary["seed"] == key[1])]
        assert len(d) == 1 and len(s) == 1, key
        for name, cell in zip(header[2:], row[2:]):
            names, cells = name.split(" / "), cell.split(" / ")
            assert len(names) == len(cells), (key, name, cell)
            for n, c in zip(names, cells):
                column = alias.get(n, n)
                if column == "effect":
                    assert c.strip("*") == d["effect"].item(), (key, c)
                else:
                    source = s if column.startswith("acc_") else d
                    assert _stated(c, float(source[column].item())), (key, column, c)
                checked += 1
    return checked


def test_stated_reads_a_number_as_written():
    assert _stated("0.336", 0.335938) and not _stated("0.337", 0.335938)
    assert _stated("0", 0.0) and not _stated("0", 0.0001) and _stated("-", float("nan"))
    assert _stated("86", 86.0) and not _stated("87", 86.0) and not _stated("0.0002", 0.0)


def test_the_quick_suite_verdict_table_and_prose_are_the_committed_diagnosis():
    section = _section("docs/diagnostics.md", "### The quick suite")
    diag, summary = _runs("quick")
    header, body = _table(section)
    assert len(body) == len(diag) == 8
    assert _check_table(header, body, diag, summary) == 8 * (len(header) - 2) + 8  # + the crossing pairs
    by = dict(tuple(diag.groupby("train_steps")))
    two, eight, thirty_two, last = by[2], by[8], by[32], by[128]
    assert "69-80 % of the samples have det <= 0" in section  # the per-sample fold at 2 steps
    assert _pct(two["fold_fraction"]) == "69-80" and (two["fold_near_fraction"] == 1).all()
    assert f"{_pct(two['flips_at_fold_share'])} % of the\n  flipped samples" in section
    assert f"near {_pct(eight['fold_near_fraction'])} % of the" in section
    assert f"only {_pct(eight['flips_at_fold_share'])} % of the flips are at a fold" in section
    assert f"error for\n  {_pct(eight['flips_concentrated_share'])} % of them" in section
    assert f"carries {_pct(thirty_two['top1_share_median'])} % of the sum" in section
    assert f"for {_pct(thirty_two['flips_concentrated_share'])} % of the flips" in section
    assert (thirty_two["fold_near_fraction"] == 0).all() and (last["fold_near_fraction"] == 0).all()
    flips = last.set_index("seed")["flips"]
    assert f"Seed 0 flips {flips[0]:.0f} samples" in section
    assert f"Seed 1 flips {flips[1]:.0f} ({100 * flips[1] / 256:.1f} %)" in section
    assert diag["ref_fold_fraction"].max() == 0


def test_the_quick_suite_diagnosis_cost_is_the_committed_one():
    section = _section("docs/diagnostics.md", "### What it adds to a run")
    diag, _ = _runs("quick")
    cost = diag.groupby("train_steps")["cost_s"].agg(["min", "max"])
    assert f"diagnoses took {diag['cost_s'].sum():.0f} s in all" in section
    for steps, (low, high) in cost.iterrows():
        assert f"{low:.1f}-{high:.1f} s at {steps}" in section, steps


def test_the_demo_summary_printed_in_readme_and_docs_is_the_committed_run():
    """The block `run` prints at the end of the demo (README, docs/cli.md, docs/tutorial.md): its
    verdicts and metrics are the committed results/demo/summary.csv as the terminal renders it."""
    from robustbench_ode.outputs.terminal import by_configuration, fitted

    text, _ = fitted(by_configuration(pd.read_csv(ROOT / "results" / "demo" / "summary.csv")))
    assert "fold" in text  # the 2-step models' verdict is part of what is compared
    for path in ("README.md", "docs/cli.md", "docs/tutorial.md"):
        assert text in (ROOT / path).read_text(), path


REGULARIZED = {"plain": ["plain"], "kinetic 1.0": ["kinetic"], "jacobian 0.01": ["jacobian_0.01"],
               "kinetic 1.0 + jacobian 0.01": ["both_0.01"],
               "jacobian 0.1, alone or + kinetic 1.0": ["jacobian", "both"]}
VERDICT_CELL = re.compile(r"^(?P<effects>[a-z, ]+?)(?: \((?P<detail>.*)\))?$")


def _regularized_cell(cell: str, models: pd.DataFrame) -> None:
    """One cell of the regularised verdict table: 'E0, E1 (flips a, b; at a fold x %, y %)' per
    seed, or 'E (all four)' for the two Jacobian-0.1 trainings' four models."""
    found = VERDICT_CELL.match(cell)
    assert found, cell
    models = models.sort_values(["training", "seed"])
    if found["detail"] == "all four":
        assert len(models) == 4 and (models["effect"] == found["effects"]).all(), cell
        return
    assert found["effects"].split(", ") == models["effect"].tolist(), cell
    for part in (found["detail"] or "").split("; "):
        if not part:
            continue
        if part == "none at a fold":
            assert (models["flips_at_fold_share"].fillna(0) == 0).all(), cell
            continue
        name, values = part.split(" ", 1) if part.startswith("flips") else ("at a fold", part[10:])
        column = {"flips": "flip_fraction", "at a fold": "flips_at_fold_share"}[name]
        stated = [v.strip().removesuffix(" %") for v in values.split(", ")]
        scale = 100 if name == "at a fold" else 1
        assert [_stated(s, scale * v) for s, v in zip(stated, models[column])] == [True] * 2, cell


def test_the_regularised_verdict_table_is_the_committed_diagnosis():
    section = _section("docs/diagnostics.md", "### The regularised models")
    diag, _ = _runs("regularization")
    header, body = _table(section)
    assert header == ["training", "Euler 2", "Euler 8", "dopri5 1e-3"]
    assert [row[0] for row in body] == list(REGULARIZED)
    for row in body:
        trained = diag[diag["training"].isin(REGULARIZED[row[0]])]
        columns = [trained[(trained["train_solver"] == "euler") & (trained["train_steps"] == 2)],
                   trained[(trained["train_solver"] == "euler") & (trained["train_steps"] == 8)],
                   trained[trained["train_solver"] == "dopri5"]]
        for cell, models in zip(row[1:], columns):
            _regularized_cell(cell, models)


def _effects(run: str, **where) -> list[str]:
    d = pd.read_csv(ROOT / "results" / run / "diagnostics.csv")
    for column, value in where.items():
        d = d[d[column] == value]
    return d.sort_values("seed")["effect"].tolist()


def test_the_adapted_models_verdicts_stated_in_reproductions():
    text = (ROOT / "docs" / "reproductions.md").read_text()
    adapted = pd.read_csv(ROOT / "results" / "adaptation" / "diagnostics.csv")
    assert set(adapted["effect"]) == {"accumulation"} and len(adapted) == 5
    assert (adapted["fold_fraction"] == 0).all()
    assert "All five\nverdicts are `accumulation` (no folds)" in text
    tolerance = pd.Series(_effects("adaptation_tolerance")).value_counts().to_dict()
    assert tolerance == {"accumulation": 4, "mixed": 1}
    assert "verdicts `accumulation`, one `mixed`" in text


def test_the_spheres_128_step_verdicts_stated_in_reproductions():
    text = " ".join((ROOT / "docs" / "reproductions.md").read_text().split())
    d = pd.read_csv(ROOT / "results" / "spheres" / "diagnostics.csv")
    last = d[d["train_steps"] == 128]
    ten, three = last[last["dataset"] == "spheres10"], last[last["dataset"] == "spheres3"]
    flips = lambda rows: f"{100 * rows['flip_fraction'].min():.1f}-{100 * rows['flip_fraction'].max():.1f} %"
    assert sorted(ten["effect"]) == ["accumulation", "accumulation", "robust"]
    assert (ten["fold_fraction"] == 0).all()
    assert (f"the 10-D 128-step models flip {flips(ten)} of the samples under the reference (one "
            f"`robust`, two `accumulation` with no folds), the 3-D ones {flips(three)}") in text


def test_the_sphere2_investigation_verdict_column_is_the_committed_diagnosis():
    section = _section("docs/reproductions.md", "**Results** (test accuracy; Euler at the given")
    header, body = _table(section)
    assert header[-1] == "verdict"
    trainings = {"10 000 it, lr 1e-4 (published)": None, "40 000 it, lr 1e-4": "lr1e-4_40k",
                 "10 000 it, lr 1e-3": "lr1e-3_10k"}
    training = None
    for cells in body:
        training = cells[0] or training
        if trainings[training] is None:  # the published-settings cells are results/sphere2's
            run, where = "sphere2", {"train_solver": "euler", "train_steps": 256}
        else:
            run, where = "sphere2_investigation", {"training": trainings[training], "train_steps": 256}
        assert _effects(run, **where)[int(cells[1])] == cells[-1], (training, cells[1])


def test_the_regularised_prose_is_the_committed_diagnosis():
    section = " ".join(_section("docs/diagnostics.md", "### The regularised models").split())
    diag, summary = _runs("regularization")
    def pick(table: pd.DataFrame, training: str, solver: str, steps: int | None = None) -> pd.DataFrame:
        rows = table[(table["training"] == training) & (table["train_solver"] == solver)]
        return rows[rows["train_steps"] == steps] if steps else rows

    plain_two = _pct(pick(diag, "plain", "euler", 2)["fold_fraction"])
    assert f"The plain Euler-2 models fold for {plain_two} %" in section
    assert f"folds drop to {_pct(pick(diag, 'kinetic', 'euler', 2)['fold_fraction'])} %" in section
    both = pick(diag, "both_0.01", "euler", 2).sort_values("seed")
    assert both["effect"].iloc[0] == "accumulation" and both["flips_with_fold_share"].iloc[0] <= 0.1
    regularised = summary[(summary["training"].isin(["kinetic", "jacobian_0.01", "both_0.01"]))
                          & (summary["train_steps"] == 8)]
    gaps = 100 * regularised["ode_gap"]
    assert f"ODE gap ({gaps.min():.0f}-{gaps.max():.0f} points)" in section
    dead = summary[summary["training"].isin(["jacobian", "both"])]
    assert f"(accuracy {dead['acc_train'].min():.2f}-{dead['acc_train'].max():.2f})" in section
    plain = pick(diag, "plain", "dopri5").sort_values("seed")
    gap = pick(summary, "plain", "dopri5").sort_values("seed")["ode_gap"].iloc[1]
    assert plain["effect"].tolist() == ["robust", "accumulation"]
    flips = 100 * plain["flip_fraction"].iloc[1]
    assert f"(flips {flips:.1f} %, accumulation, ODE gap {100 * gap:.1f} points" in section
    assert f"(the plain seed 0: {100 * plain['fold_fraction'].iloc[0]:.0f} %)" in section
    assert (plain["flips_at_fold_share"] == 0).all()


def test_the_three_minima_verdicts_stated_in_reproductions():
    text = " ".join((ROOT / "docs" / "reproductions.md").read_text().split())
    d = pd.read_csv(ROOT / "results" / "three_minima" / "diagnostics.csv")
    by = {n: g.sort_values("seed") for n, g in d.groupby("train_steps")}
    counts = {n: g["effect"].value_counts().to_dict() for n, g in by.items()}
    assert counts == {2: {"fold": 3}, 8: {"mixed": 2, "accumulation": 1}, 32: {"accumulation": 3},
                      128: {"undetermined": 2, "accumulation": 1}}
    assert (pd.concat([by[32], by[128]])["fold_near_fraction"] == 0).all()
    f32 = 100 * by[32]["flip_fraction"]
    last = by[128].set_index("effect")
    assert (f"the 2-step models `fold` ({_pct(by[2]['flips_at_fold_share'])} % of the flips at a fold), "
            f"8 steps 2 `mixed` and 1 `accumulation` (the map folds near {_pct(by[8]['fold_near_fraction'])} "
            f"% of the samples, {_pct(by[8]['flips_at_fold_share'])} % of the flips at a fold), 32 steps "
            f"`accumulation` with no fold ({f32.min():.0f}-{f32.max():.0f} % flips), 128 steps 1 "
            f"`accumulation` ({100 * last.loc['accumulation', 'flip_fraction']:.1f} % flips) and 2 "
            f"`undetermined` ({' and '.join(f'{v:.0f}' for v in sorted(last.loc['undetermined', 'flips']))} "
            "flips of 256)") in text



def test_the_sphere2_midpoint_and_rk4_verdicts_stated_in_reproductions():
    text = " ".join((ROOT / "docs" / "reproductions.md").read_text().split())
    d = pd.read_csv(ROOT / "results" / "sphere2" / "diagnostics.csv")
    rows = {(s, n): g for (s, n), g in d.groupby(["train_solver", "train_steps"])}
    counts = {key: g["effect"].value_counts().to_dict() for key, g in rows.items()}
    coarse = pd.concat([rows["midpoint", 1], rows["midpoint", 2], rows["rk4", 1]])
    assert set(coarse["effect"]) == {"fold"}
    assert (f"(the map folds near {_pct(coarse['fold_near_fraction'])} % of the samples; "
            f"{_pct(coarse['flips_at_fold_share'])} % of the flips are at a fold)") in text
    assert counts["rk4", 2] == {"mixed": 3, "fold": 2} and counts["midpoint", 4] == {"mixed": 5}
    assert counts["midpoint", 8] == {"mixed": 3, "accumulation": 2}
    at_fold = _pct(rows["midpoint", 8]["flips_at_fold_share"])
    assert f"2 `accumulation` ({at_fold} % of the flips at a fold)" in text
    assert counts["midpoint", 16] == {"accumulation": 2, "undetermined": 2, "robust": 1}
    sixteen = rows["midpoint", 16][rows["midpoint", 16]["effect"] == "accumulation"]
    assert (sixteen["fold_near_fraction"] == 0).all()
    flipped = _pct(sixteen["flip_fraction"])
    assert f"midpoint at 16 2 `accumulation` ({flipped} % of the samples flip, no fold)" in text
    assert counts["rk4", 4] == {"mixed": 4, "undetermined": 1}
    assert (f"({_pct(rows['rk4', 4]['flip_fraction'])} % of the samples flip, the map folding near "
            f"{_pct(rows['rk4', 4]['fold_near_fraction'])} % of them)") in text
    assert counts["rk4", 8] == {"robust": 4, "undetermined": 1}
    assert rows["rk4", 8]["flips"].max() == 2 and "1 `undetermined` with 2 flips" in text
    robust = [g for (s, n), g in rows.items() if n >= {"midpoint": 32, "rk4": 16}.get(s, 10**9)]
    assert len(robust) == 7 and all(set(g["effect"]) == {"robust"} for g in robust)


def test_the_sphere2_investigation_two_step_verdicts_stated_in_reproductions():
    text = " ".join((ROOT / "docs" / "reproductions.md").read_text().split())
    d = pd.read_csv(ROOT / "results" / "sphere2_investigation" / "diagnostics.csv")
    two = d[d["train_steps"] == 2]
    assert len(two) == 4 and set(two["effect"]) == {"fold", "mixed"}
    assert f"verdicts `fold` or `mixed` with {_pct(two['fold_fraction'])} % of the samples folding" in text
