"""``DIR/report.html``: one self-contained page (images embedded as base64) built from a run
directory's tables alone: the suite, the environment, the summary, every figure of
:data:`~robustbench_ode.outputs.figures.FIGURES` with its caption, and the failed cells.

Also writes ``DIR/summary.csv``, ``DIR/critical.csv`` (when the run swept train step counts) and
the figures as PNG files beside it. The one place a run's outputs are derived from its tables.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import SuiteError
from ..core.files import read_text, show_path
from ..core.schema import CONTRIBUTIONS, DIAGNOSTICS, FAN, TRAINING
from .critical import write_critical
from .figures import FIGURES, Sources
from .page import figure_html, table, write_page
from .summary import summarize
from .tables import is_regression, read_results, read_table, training_log, write_csv

MAX_JSON_BYTES = 1 << 20

# Shown in the summary table of the report (the CSV keeps every column).
_SUMMARY_SHOWN = ["dataset", "model", "training", "train_solver", "train_steps", "train_tol", "seed",
                  "train_status", "acc_train", "acc_ref", "ode_gap", "worst_drop", "nfe_train",
                  "nfe_ref", "drift", "n_failed"]
# For time-series regression suites the accuracy columns are empty: the mse columns replace them.
_REGRESSION_SHOWN = ["dataset", "model", "training", "train_solver", "train_steps", "train_tol",
                     "seed", "train_status", "mse_train", "mse_ref", "mse_ref_ratio", "mse_worst",
                     "mse_worst_ratio", "nfe_train", "nfe_ref", "drift", "n_failed"]

_DIAGNOSTICS_SHOWN = ["dataset", "model", "training", "train_solver", "train_steps", "train_tol", "seed",
                      "effect", "flip_fraction", "flips_at_fold_share", "fold_fraction", "ref_fold_fraction",
                      "min_log_det", "crossing_fraction", "topk_share_median", "diagnostics_status",
                      "diagnostics_message"]
_DIAGNOSTICS_LEGEND = (
    '<p class="muted">On the first test samples of each model (docs/diagnostics.md): '
    "flip_fraction = samples classified differently under the train configuration and the reference "
    "solve; flips_at_fold_share = of those, the share whose class changes at a step where the train "
    "solver's one-step map folds space (det <= 0, which no ODE flow does); fold_fraction = samples "
    "with at least one folding step (ref_fold_fraction: the same for the reference flow, 0 for a true "
    "ODE); topk_share_median = share of the global error carried by its 3 largest transported local "
    "errors. effect: robust (flip_fraction < 0.01), fold (flips_at_fold_share >= 0.5), accumulation "
    "(at most 10% of the flipped samples ever fold), mixed otherwise.</p>")



def _reference(results: pd.DataFrame) -> str:
    """The reference solve of the table's rows, in words (for the summary's legend)."""
    if "is_reference" not in results.columns:
        return "the reference solve"
    ref = results[results["is_reference"].fillna(False).astype(bool)]
    names = sorted({f"{s} at tol {t:g}" if pd.notna(t) else str(s)
                    for s, t in zip(ref["test_solver"], ref["test_tol"])})
    return "the reference solve (" + ", ".join(names) + ")" if names else "the reference solve"


def read_json_object(path: str | Path, what: str = "JSON file") -> dict[str, Any]:
    """A JSON object (``meta.json``); NaN is read (runs before 0.2 wrote it), anything else that is
    not a JSON object is a one-line SuiteError naming the file."""
    text = read_text(path, MAX_JSON_BYTES, what)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        raise SuiteError(f"{show_path(path)}: not valid JSON{where}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{show_path(path)}: a {what} holds a JSON object, got {type(data).__name__}")
    return data


def _optional(path: Path, schema) -> pd.DataFrame | None:
    return read_table(path, schema, what=path.name) if path.exists() else None


def write_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 before_writing: Callable[[], None] | None = None) -> Path:
    """Build ``out_dir/report.html`` (and ``summary.csv``, ``critical.csv``, the PNGs) from the
    files of the run folder ``run_dir`` (``out_dir``: the run folder itself by default; another
    one re-reports a run from a read-only archive). Every input is read, and checked, before
    anything is written: a malformed one is a one-line SuiteError naming it. ``before_writing``
    runs after the inputs are read and before the first write (the command line checks, and
    makes, ``--out`` there, so a bad input leaves no empty folder behind)."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    results = read_results(run_dir / "results.csv")
    log = training_log(run_dir)
    training = read_table(log, TRAINING, what=log.name) if log is not None else pd.DataFrame()
    diagnostics, contributions, fan = (_optional(run_dir / name, schema) for name, schema in (
        ("diagnostics.csv", DIAGNOSTICS), ("contributions.csv", CONTRIBUTIONS), ("fan.csv", FAN)))
    meta = read_json_object(run_dir / "meta.json", "meta.json") if (run_dir / "meta.json").exists() else {}
    suite_text = (read_text(run_dir / "suite.yaml", 1 << 20, "suite file", allow_empty=True)
                  if (run_dir / "suite.yaml").exists() else "")
    summary = summarize(results, diagnostics)
    if before_writing is not None:
        before_writing()
    write_csv(summary, out_dir / "summary.csv")
    critical_path = write_critical(results, out_dir)
    critical = (pd.read_csv(io.StringIO(read_text(critical_path, 64 << 20, "critical table")))
                if critical_path is not None else None)
    title = f"robustbench_ode report: {meta.get('suite', run_dir.name)}"

    regression = is_regression(results)
    reference = html.escape(_reference(results))
    legend = ('<p class="muted">One row per trained model (seed). mse = mean squared trajectory '
              "error over the test set: mse_train at the model's own train solver and steps, "
              f"mse_ref under {reference}; mse_ref_ratio = mse_ref / mse_train; mse_worst = the "
              "largest on the test grid, mse_worst_ratio = mse_worst / mse_train; drift = mean "
              "relative distance of the predicted trajectories, train configuration vs reference "
              "solve. A model that learned an ODE has ratios near 1.</p>") if regression else (
              '<p class="muted">One row per trained model (seed). acc_train = test accuracy at the '
              f"model's own train solver and steps; acc_ref = test accuracy under {reference}; "
              "ode_gap = acc_train - acc_ref; worst_drop = acc_train - the worst accuracy on the "
              "test grid; drift = mean relative distance of the final states, train configuration "
              "vs reference solve; nfe = field evaluations per solve of one batch. A model that "
              "learned an ODE has ode_gap and worst_drop near 0; a ResNet in disguise has a large "
              "ode_gap.</p>")
    shown = _REGRESSION_SHOWN if regression else _SUMMARY_SHOWN
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="muted">{len(summary)} trained models, {len(results)} test rows, '
             f"{int((results['status'] != 'ok').sum())} failed test rows.</p>",
             "<h2>Summary</h2>", legend,
             table(summary[[c for c in shown if c in summary.columns]], table_id="summary")]
    if diagnostics is not None and not diagnostics.empty:
        parts += ["<h2>Why models break</h2>", _DIAGNOSTICS_LEGEND,
                  table(diagnostics[[c for c in _DIAGNOSTICS_SHOWN if c in diagnostics.columns]],
                        table_id="diagnostics")]
    sources = Sources(results, training, critical, diagnostics, contributions, fan)
    for figure in FIGURES:
        heading = figure.heading.replace("Accuracy", "Trajectory MSE") if regression else figure.heading
        path = figure.draw(sources, out_dir / figure.file)
        if path is not None:
            parts += [f"<h2>{html.escape(heading)}</h2>", figure_html(path, figure.caption)]
    failed = results[results["status"] != "ok"]
    parts.append("<h2>Failed cells</h2>")
    if failed.empty:
        parts.append("<p>None: every test row has status ok.</p>")
    else:
        cols = [c for c in ("dataset", "train_solver", "train_steps", "train_tol", "seed",
                            "test_solver", "test_steps", "test_tol", "status", "message")
                if c in failed.columns]
        parts.append(table(failed[cols], wrap=True, table_id="failed"))
    parts += ["<h2>Suite</h2>", f"<pre>{html.escape(suite_text)}</pre>",
              "<h2>Environment</h2>",
              table(pd.DataFrame({"key": list(meta), "value": [str(v) for v in meta.values()]}),
                    wrap=True, table_id="environment")]
    return write_page(out_dir / "report.html", title, parts)


def write_report_safely(run_dir: str | Path) -> Path | None:
    """For the end of a run: a report that cannot be built is a warning, not a failed suite
    (the tables are already written, and ``report DIR`` can retry)."""
    try:
        return write_report(run_dir)
    except Exception as exc:  # noqa: BLE001
        text = str(exc).splitlines()[0] if str(exc) else ""
        print(f"robustbench-ode: warning: report not written: {type(exc).__name__}: {text}"[:300])
        return None
