"""The leaderboard: per dataset, every trained configuration of one or more runs, ranked by
reference accuracy (higher first), ties broken by the absolute ODE gap (smaller first). Runs with
diagnostics add the seeds' ``effect`` verdicts and the mean ``flip_fraction`` and
``fold_fraction``. Time-series regression configurations have no accuracy: they rank by their
reference trajectory error
(``mse_ref``, lower first), and the board gets ``mse_ref`` and ``mse_ref_ratio`` columns.

A configuration is (run, model, train solver, train steps or tol); its numbers are the means over
its seeds (``seeds`` says how many), built from each run's ``results.csv`` alone. Written as
Markdown, CSV and a self-contained HTML page (``leaderboard.html``).
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ..core.files import check_writable_dir, write_text
from ..core.schema import DIAGNOSTICS
from .gate import load_table
from .page import table, write_page
from .summary import legend, shown, summarize
from .tables import read_table, write_csv

CONFIG = ["dataset", "run", "model", "training", "train_solver", "train_steps", "train_tol"]
DIAGNOSED = ["flip_fraction", "fold_fraction"]  # only where a run has diagnostics.csv


def leaderboard(run_dirs: list[str | Path]) -> pd.DataFrame:
    frames = []
    for d in run_dirs:
        path = Path(d) / "diagnostics.csv"
        diagnostics = read_table(path, DIAGNOSTICS, what="diagnostics table") \
            if Path(d).is_dir() and path.exists() else None
        summary = summarize(load_table(d), diagnostics)
        frames.append(summary.assign(run=Path(d).name))
    df = pd.concat(frames, ignore_index=True)
    df["train_steps"] = df["train_steps"].astype("float64")  # groupby keys: NaN, not <NA>
    # the metrics the board shows (outputs/summary.py METRICS), always or only where a run has
    # them (a time-series regression's mse columns), read when the board is built
    numbers = [m.name for m in shown("leaderboard")]
    present = [m.name for m in shown("leaderboard_present")]
    extra = [c for c in present + DIAGNOSED if c in df.columns]
    verdicts = {"effect": ("effect", _verdict)} if "effect" in df.columns else {}
    agg = (df.groupby(CONFIG, dropna=False)
           .agg(seeds=("seed", "nunique"), acc_ref_std=("acc_ref", "std"),
                **{c: (c, "mean") for c in numbers + extra}, **verdicts, n_failed=("n_failed", "sum"))
           .reset_index())
    agg["abs_gap"] = agg["ode_gap"].abs()
    # one ascending key for both kinds: minus the reference accuracy, or the reference error
    agg["rank_key"] = -agg["acc_ref"]
    if "mse_ref" in extra:
        agg["rank_key"] = agg["rank_key"].fillna(agg["mse_ref"])
    agg = agg.sort_values(["dataset", "rank_key", "abs_gap"], na_position="last")
    agg.insert(0, "rank", agg.groupby("dataset").cumcount() + 1)
    agg["train_steps"] = agg["train_steps"].astype("Int64")
    return agg.drop(columns=["abs_gap", "rank_key"])[
        ["rank", *CONFIG, "seeds", "acc_ref", "acc_ref_std", *[c for c in numbers if c != "acc_ref"],
         *list(verdicts), *extra, "n_failed"]
    ].reset_index(drop=True)


def _verdict(effects: pd.Series) -> str:
    """The seeds' verdicts: the common one, or each with its count (``fold 3, mixed 2``)."""
    counts = effects.dropna().value_counts()
    if counts.empty:
        return ""
    return str(counts.index[0]) if len(counts) == 1 else ", ".join(f"{k} {v}" for k, v in counts.items())


_MARKDOWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "\n": " ", "\r": " ",
                           "`": "\\`", "[": "\\[", "]": "\\]"})


def md_text(v: object) -> str:
    """Text as one Markdown table cell or heading shows it, never as markup: ``<``, ``>`` and
    ``&`` as HTML entities (a renderer passes raw HTML through), ``|`` escaped (it would split the
    cell), links and code spans escaped, line breaks as spaces (a label from a hand-edited table
    may hold any of them)."""
    return str(v).translate(_MARKDOWN)


def _cell(v) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return ""
    return f"{v:.4g}" if isinstance(v, float) else md_text(v)


def markdown(board: pd.DataFrame) -> str:
    """One Markdown table per dataset; every text cell through :func:`md_text`."""
    out = []
    cols = [c for c in board.columns if c != "dataset"]
    for dataset, part in board.groupby("dataset", sort=True):
        out += [f"## {md_text(dataset)}", "", "| " + " | ".join(md_text(c) for c in cols) + " |",
                "|" + "|".join("---:" for _ in cols) + "|"]
        out += ["| " + " | ".join(_cell(v) for v in row) + " |"
                for row in part[cols].itertuples(index=False)]
        out.append("")
    return "\n".join(out)


def _legend() -> str:
    return ("Per dataset, every trained configuration of the runs named, ranked by acc_ref (higher "
            "first; ties: the smaller |ode_gap|). Numbers are means over the configuration's seeds "
            "(seeds: how many; acc_ref_std = the spread of acc_ref over them). "
            f"{legend(shown('leaderboard') + shown('leaderboard_present'))}; n_failed = failed test "
            "rows. Time-series configurations rank by mse_ref, lower first. A model that learned "
            "an ODE has ode_gap near 0; a ResNet in disguise ranks low with a large ode_gap.")


def html_page(board: pd.DataFrame, runs: list[str], path: Path) -> Path:
    """The board as one self-contained HTML page: one table per dataset, each in its own scroll
    container with a sticky header (outputs/page.py)."""
    cols = [c for c in board.columns if c != "dataset"]
    parts = ["<h1>robustbench_ode leaderboard</h1>",
             f'<p class="muted">Runs: {html.escape(", ".join(runs))}. {len(board)} configurations.</p>',
             f'<p class="muted">{html.escape(_legend())}</p>']
    for dataset, part in board.groupby("dataset", sort=True):
        parts += [f"<h2>{html.escape(str(dataset))}</h2>",
                  table(part[cols], table_id=f"board-{dataset}")]
    return write_page(path, "robustbench_ode leaderboard", parts)


def write_leaderboard(run_dirs: list[str | Path],
                      out_dir: str | Path) -> tuple[Path, Path, Path, str]:
    """``leaderboard.md``, ``.csv`` and ``.html`` in ``out_dir``; returns their paths and the
    Markdown text."""
    board = leaderboard(run_dirs)  # every input read and checked before anything is written
    out_dir = Path(out_dir)
    check_writable_dir(out_dir)
    md = markdown(board)
    write_text(out_dir / "leaderboard.md", md)
    write_csv(board, out_dir / "leaderboard.csv")
    page = html_page(board, [Path(d).name for d in run_dirs], out_dir / "leaderboard.html")
    return out_dir / "leaderboard.md", out_dir / "leaderboard.csv", page, md
