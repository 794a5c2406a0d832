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
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import SuiteError
from ..core.files import read_text, show_path
from ..core.schema import CONTRIBUTIONS, DENSITY_GRID, DIAGNOSTICS, FAN, SAMPLES, TRAINING
from .critical import write_critical
from .figures import FIGURES, Sources
from .page import figure_html, table, write_page
from .summary import legend as metric_legend
from .summary import seed_spread, shown, summarize
from .tables import is_density, is_regression, read_results, read_table, run_table, training_log, write_csv

MAX_JSON_BYTES = 1 << 20

log = logging.getLogger(__name__)

# Shown in the summary table of the report (the CSV keeps every column): the metrics that declare
# it (outputs/summary.py METRICS); for time-series regression suites the accuracy columns are empty,
# and the metrics shown on a regression report replace them.
_IDENTITY = ["dataset", "model", "training", "train_solver", "train_steps", "train_tol", "seed",
             "train_status"]


def _page(results: pd.DataFrame) -> str:
    """The summary page of this kind of run: ``report`` (classification), ``regression``
    (time series) or ``density`` (flows)."""
    return "regression" if is_regression(results) else "density" if is_density(results) else "report"


_CLOSING = {
    "regression": "A model that learned an ODE has mse_ref_ratio near 1; mse_worst_ratio includes the "
                  "coarsest test steps, where every model's error grows, so it ranks models rather than "
                  "separating ODEs from discrete maps.",
    "density": "A solver-robust flow has nll_gap near 0 (its likelihood holds under an accurate solve) "
               "and energy_ref no larger than energy_train (its samples do not fall apart); a flow that "
               "is a density only under its train solver has a large positive nll_gap.",
    "report": "A model that learned an ODE has ode_gap near 0 (acc_ref close to acc_train); a ResNet "
              "in disguise has a large ode_gap. worst_drop includes the test points coarser than "
              "training (down to one step), where every model can fall to chance, so it is large for "
              "ODEs too: it ranks models, it does not separate them; worst_drop_finer counts only the "
              "test points at least as accurate as the train configuration, so it is near 0 for a "
              "model that learned an ODE.",
}
_SPREAD = ["nll_train", "nll_ref", "nll_gap", "energy_train", "energy_ref"]
_SPREAD_LEGEND = ('<p class="muted">Per train configuration: the seed mean of each density metric and '
                  "its standard deviation over seeds (NAME_std); critical_steps, where shown, is the "
                  "coarsest swept train step count from which no check raises the test NLL by more "
                  "than 0.02 nats/dim over the train configuration's (critical.csv: both thresholds)."
                  "</p>")


def _spread(summary: pd.DataFrame) -> list[str]:
    """The density run's seed-spread table (heading, legend, table)."""
    spread = seed_spread(summary, _SPREAD)
    if "critical_steps" in summary.columns:
        keys = [c for c in ("dataset", "model", "training", "train_solver") if c in summary.columns]
        crit = summary.drop_duplicates(keys)[keys + ["critical_steps"]]
        spread = spread.merge(crit, on=keys, how="left")
    return ["<h2>Seed spread</h2>", _SPREAD_LEGEND, table(spread, table_id="spread")]


_DIAGNOSTICS_SHOWN = ["dataset", "model", "training", "train_solver", "train_steps", "train_tol", "seed",
                      "effect", "flip_fraction", "flips_at_fold_share", "fold_fraction", "fold_near_fraction",
                      "ref_fold_fraction", "min_log_det", "crossing_fraction", "flips_concentrated_share",
                      "diagnostics_status", "diagnostics_message"]
_DIAGNOSTICS_LEGEND = (
    '<p class="muted">On the first test samples of each model (docs/diagnostics.md): '
    "flip_fraction = samples classified differently under the train configuration and the reference "
    "solve; flips_at_fold_share = of those, the share at which the train solver's map folds space "
    "(det <= 0, which no ODE flow does) at their flip step, at the sample or on a probe segment to a "
    "neighbour; fold_fraction = samples with det <= 0 at their own point, fold_near_fraction = at a "
    "fold of the map (ref_fold_fraction: the reference flow, 0 by Liouville's formula); "
    "flips_concentrated_share = flips whose largest transported local error is at least half the "
    "sum. effect, with one-sided 95% bounds: robust (flip rate below 0.02), fold (most flips at a "
    "fold), accumulation (most flips neither at a fold nor made by one step), mixed otherwise, "
    "undetermined with fewer than 5 flips.</p>")



def _reference(results: pd.DataFrame) -> str:
    """The reference solve of the table's rows, in words (for the summary's legend): "dopri5 at tol
    1e-07", or "not marked" for a table without ``is_reference`` rows."""
    if "is_reference" not in results.columns:
        return "not marked"
    ref = results[results["is_reference"].fillna(False).astype(bool)]
    names = sorted({f"{s} at tol {t:g}" if pd.notna(t) else str(s)
                    for s, t in zip(ref["test_solver"], ref["test_tol"])})
    return ", ".join(names) if names else "not marked"


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
    found = run_table(path.parent, path.name)
    return read_table(found, schema, what=found.name) if found is not None else None


def write_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 before_writing: Callable[[], None] | None = None,
                 timings: dict[str, float] | None = None) -> Path:
    """Build ``out_dir/report.html`` (and ``summary.csv``, ``critical.csv``, the PNGs) from the
    files of the run folder ``run_dir`` (``out_dir``: the run folder itself by default; another
    one re-reports a run from a read-only archive). Every input is read, and checked, before
    anything is written: a malformed one is a one-line SuiteError naming it. ``before_writing``
    runs after the inputs are read and before the first write (the command line checks, and
    makes, ``--out`` there, so a bad input leaves no empty folder behind). ``timings``: given, its
    ``figures`` is set to the seconds the figures took (meta.json's breakdown, run/meta.py)."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    results = read_results(run_dir / "results.csv")
    log = training_log(run_dir)
    training = read_table(log, TRAINING, what=log.name) if log is not None else pd.DataFrame()
    diagnostics, contributions, fan, density_grid, samples = (
        _optional(run_dir / name, schema) for name, schema in (
            ("diagnostics.csv", DIAGNOSTICS), ("contributions.csv", CONTRIBUTIONS), ("fan.csv", FAN),
            ("density_grid.csv", DENSITY_GRID), ("samples.csv", SAMPLES)))
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

    page = _page(results)
    regression = page == "regression"
    reference = html.escape(_reference(results))
    metrics = shown(page)
    legend = (f'<p class="muted">One row per trained model (seed); the reference solve is {reference}. '
              f"{html.escape(metric_legend(metrics))}. {_CLOSING[page]}</p>")
    columns = _IDENTITY + [m.name for m in metrics]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="muted">{len(summary)} trained models, {len(results)} test rows, '
             f"{int((results['status'] != 'ok').sum())} failed test rows.</p>",
             "<h2>Summary</h2>", legend,
             table(summary[[c for c in columns if c in summary.columns]], table_id="summary")]
    parts += _deployment(summary)
    if diagnostics is not None and not diagnostics.empty:
        parts += ["<h2>Why models break</h2>", _DIAGNOSTICS_LEGEND,
                  table(diagnostics[[c for c in _DIAGNOSTICS_SHOWN if c in diagnostics.columns]],
                        table_id="diagnostics")]
    if page == "density":
        parts += _spread(summary)
    sources = Sources(results, training, critical, diagnostics, contributions, fan, density_grid, samples)
    drawing = time.perf_counter()
    for figure in FIGURES:
        heading = (figure.heading.replace("Accuracy", "Trajectory MSE") if regression else
                   figure.heading.replace("Accuracy", "NLL") if page == "density" else figure.heading)
        path = figure.draw(sources, out_dir / figure.file)
        if path is not None:
            parts += [f"<h2>{html.escape(heading)}</h2>", figure_html(path, figure.caption)]
    if timings is not None:
        timings["figures"] = time.perf_counter() - drawing
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
              "<h2>Environment</h2>", environment_note(meta),
              table(pd.DataFrame({"key": list(meta), "value": [str(v) for v in meta.values()]}),
                    wrap=True, table_id="environment")]
    return write_page(out_dir / "report.html", title, parts)


def _deployment(summary: pd.DataFrame) -> list[str]:
    """The deployment recommendation of each model (the metrics shown on ``deployment``)."""
    metrics = [m for m in shown("deployment") if m.name in summary.columns]
    if not metrics or summary[metrics[0].name].isna().all():
        return []
    legend = ('<p class="muted">Which solver to deploy each model with: '
              f"{html.escape(metric_legend(metrics))}; "
              "the reference row counts, so a model no cheaper configuration matches is deployed "
              "with the reference solve.</p>")
    columns = _IDENTITY[:-1] + ["acc_ref"] + [m.name for m in metrics]
    return ["<h2>Deployment</h2>", legend,
            table(summary[[c for c in columns if c in summary.columns]], table_id="deployment")]


def environment_note(meta: dict) -> str:
    """Which invocation the environment table describes. ``meta.json`` is the last ``run`` on the
    folder; cells it loaded were computed by earlier invocations, whose environment the folder
    does not keep: say so, with the counts, rather than let the table pass for every cell's."""
    if not meta:
        return '<p class="muted">No meta.json: the environment of this run was not recorded.</p>'
    started, finished = meta.get("started", "?"), meta.get("finished", "not recorded")
    counts = {k: meta.get(k) for k in ("trained", "retested", "loaded")}
    text = (f"The last invocation of run on this folder (started {started}, finished {finished}, "
            f"revision {meta.get('git_revision') or 'unknown'})")
    if any(isinstance(v, int) for v in counts.values()):
        text += (f": it trained {counts['trained'] or 0} cells, retested {counts['retested'] or 0} "
                 f"and loaded {counts['loaded'] or 0} from earlier invocations")
        if counts["loaded"] or counts["retested"]:
            text += ("; the loaded (and retested cells' training) were computed by an earlier "
                     "invocation whose environment this folder does not record")
    # a revision hash is one long word: let it wrap on a phone's width
    return f'<p class="muted" style="overflow-wrap:anywhere">{html.escape(text)}.</p>'


def write_report_safely(run_dir: str | Path, timings: dict[str, float] | None = None) -> Path | None:
    """For the end of a run: a report that cannot be built is a warning, not a failed suite
    (the tables are already written, and ``report DIR`` can retry)."""
    try:
        return write_report(run_dir, timings=timings)
    except Exception as exc:  # noqa: BLE001
        text = str(exc).splitlines()[0] if str(exc) else ""
        log.warning("report not written: %s: %s", type(exc).__name__, text)  # stderr, one line
        return None
