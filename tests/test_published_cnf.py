"""The numbers docs/cnf.md states about the committed toy-flow run (results/cnf_toy) are that run's:
its results table (one row per dataset and train configuration) and its findings, recomputed from
``results/cnf_toy/results.csv`` with the summary's own metrics (outputs/summary.py) and critical
step count (outputs/critical.py). The table is written by hand, so a rerun that moves a number,
or an edit that mistypes one, fails here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from robustbench_ode.outputs import critical, summary
from robustbench_ode.outputs.tables import read_results

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "results" / "cnf_toy"
HEADER = ("| dataset | trained with | seeds | NLL own solver | NLL reference | NLL gap (min to max) "
          "| energy own | energy reference |")


def _config(row: pd.Series) -> str:
    if pd.notna(row["train_steps"]):
        return f"{row['train_solver']} {int(row['train_steps'])}"
    return f"{row['train_solver']} tol {row['train_tol']:g}"


def table_rows(results: pd.DataFrame) -> list[str]:
    """The table's rows as docs/cnf.md states them: seed means to 3 decimals, the gap's seed range."""
    s = summary.summarize(results)
    s = s.assign(config=s.apply(_config, axis=1))
    rows = []
    for (dataset, config), part in s.groupby(["dataset", "config"], sort=False):
        gap = part["nll_gap"]
        rows.append(f"| {dataset} | {config} | {len(part)} | {part['nll_train'].mean():.3f} "
                    f"| {part['nll_ref'].mean():.3f} "
                    f"| {gap.mean():+.3f} ({gap.min():+.3f} to {gap.max():+.3f}) "
                    f"| {part['energy_train'].mean():.3f} | {part['energy_ref'].mean():.3f} |")
    return rows


def per_toy_lines(s: pd.DataFrame) -> list[str]:
    """Each toy's coarsest and finest Euler-trained mean NLL gap, as docs/cnf.md lists them."""
    lines = []
    for dataset, part in s[s["train_solver"] == "euler"].groupby("dataset", sort=False):
        gap = part.groupby("train_steps")["nll_gap"].mean()
        coarse, fine = int(gap.index.min()), int(gap.index.max())
        lines.append(f"- {dataset}: Euler {coarse} {gap[coarse]:+.3f}, "
                     f"Euler {fine} {gap[fine]:+.3f} nats/dim")
    return lines


def _section() -> str:
    text = (ROOT / "docs" / "cnf.md").read_text()
    return text.split("## Committed results: `results/cnf_toy`", 1)[1].split("\n## ", 1)[0]


def _results() -> pd.DataFrame:
    return read_results(RUN / "results.csv")


def test_the_cnf_results_table_is_the_committed_run():
    section = _section()
    stated = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert stated[0] == HEADER
    assert stated[1:] == table_rows(_results())


def test_the_cnf_findings_are_the_committed_run():
    """The findings' sentences: the coarse flow's gap, the fine one's, and the critical count."""
    section = _section()
    s = summary.summarize(_results())
    euler = s[s["train_solver"] == "euler"].groupby("train_steps")["nll_gap"].mean()
    coarse, fine = int(euler.index.min()), int(euler.index.max())
    assert f"Euler {coarse} steps has a mean NLL gap of {euler[coarse]:+.3f} nats/dim" in section
    assert f"Euler {fine} steps {euler[fine]:+.3f}" in section
    for line in per_toy_lines(s):
        assert line in section, line
    table = critical.critical_table(_results())
    fixed = table[table["critical_checks"] == "fixed"]
    for _, row in fixed.iterrows():
        rule = f"{row['critical_rule']} ({row['critical_tol']:g} nats/dim)"
        stated = f"{row['dataset']}: {rule}: {row['critical_steps']:.0f} steps"
        assert stated in section, stated


def test_the_readme_cnf_line_is_the_committed_run():
    """README's CNF sentence: the two-moons flows of the committed summary (seed means) and the
    strict fixed critical step count (critical.csv); other toys a rerun adds do not move it."""
    text = (ROOT / "README.md").read_text()
    line = " ".join(text.split("Continuous normalising flows too", 1)[1].split("\n\n", 1)[0].split())
    s = pd.read_csv(RUN / "summary.csv")
    euler = s[(s["dataset"] == "two_moons") & (s["train_solver"] == "euler")].groupby("train_steps")
    coarse = euler[["nll_train", "nll_gap"]].mean().sort_index().iloc[0]
    steps = int(euler["nll_gap"].mean().sort_index().index[0])
    assert (f"trained with {steps} Euler steps claims an NLL of {coarse['nll_train']:.3f} nats/dim and is "
            f"{coarse['nll_gap']:+.3f} nats/dim worse") in line, line
    c = pd.read_csv(RUN / "critical.csv")
    strict = c[(c["dataset"] == "two_moons") & (c["critical_rule"] == "strict")
               & (c["critical_checks"] == "fixed")]
    (row,) = strict.itertuples()
    assert (f"holds to {row.critical_tol:g} nats/dim (the critical step count) from "
            f"{row.critical_steps:.0f} Euler steps on") in line, line
