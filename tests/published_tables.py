"""Every pipe table of README.md and docs/**/*.md, and where each numeric one's numbers come from.

A table is named by (doc, nearest heading, first header cell). ``SOURCES`` maps each numeric
table to one of:

- ``"tests/<file>.py::<test>"``: that test recomputes the table from a committed ``results/*/``
  file (or from a registry, e.g. a solver's order and stages from the solver registry);
- ``"definition: ..."``: the table states no measured number (column meanings, config defaults,
  limits, guarantees and the tests that check them); its digits are names, defaults or counts
  that the code declares;
- ``"timing: ..."``: wall-clock performance data of one machine, not a result of the benchmark;
- ``"pending: ..."``: a measured table not yet recomputed by any test. ``test_no_table_is_pending``
  lists these; it is an expected failure until the list is empty, so the debt stays visible.

BENCHMARKS.md is not scanned: it holds performance data only (timings of the fast paths, the
executors and the scaling runs), which depend on the machine and are not committed results.
docs/reproductions.md and README.md are not exempt. Parsing pipe tables is done by hand (a few
lines) because the markdown libraries we ship do not keep the heading a table sits under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULE = re.compile(r"^\|[\s:|-]+\|?\s*$")


@dataclass(frozen=True)
class Table:
    doc: str
    heading: str
    first: str  # the first header cell
    line: int
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.doc, self.heading, self.first)

    @property
    def numeric(self) -> bool:
        return any(re.search(r"\d", cell) for row in self.rows for cell in row)


def _cells(line: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|")))


def docs() -> list[str]:
    return ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))]


def tables(doc: str) -> list[Table]:
    """The pipe tables of one markdown file (outside code fences), with their nearest heading."""
    lines = (ROOT / doc).read_text().splitlines()
    found, heading, fence, i = [], "(top)", False, 0
    while i < len(lines):
        line = lines[i]
        fence ^= line.startswith("```")
        if not fence and re.match(r"^#+ ", line):
            heading = line.lstrip("#").strip()
        if not fence and line.startswith("|") and i + 1 < len(lines) and RULE.match(lines[i + 1]):
            end = i + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            header = _cells(line)
            found.append(Table(doc, heading, header[0], i + 1, header,
                               tuple(_cells(r) for r in lines[i + 2:end])))
            i = end
            continue
        i += 1
    return found


def table(doc: str, heading: str, first: str) -> Table:
    """The one table registered under this key (the first, if a section repeats a header)."""
    return next(t for t in tables(doc) if t.key == (doc, heading, first))


T = "tests/test_published_numbers.py::"
DIAGNOSTICS = "tests/test_published_diagnostics.py"  # written by the diagnostics re-run
R = "docs/reproductions.md"
SOURCES: dict[tuple[str, str, str], str] = {
    ("README.md", "The effect in one minute", "trained with"):
        T + "test_the_readme_demo_table_is_the_committed_run",
    ("README.md", "At the paper's scale: `suites/sphere2.yaml`", "trained with"):
        T + "test_the_readme_headline_table_is_the_committed_run",
    ("docs/adaptation.md", "Turning it on", "key"): "definition: the adaptation config's keys and defaults",
    ("docs/architecture.md", "To add X, edit Y", "to add"): "definition: where each axis is edited",
    ("docs/cnf.md", "The task", "column"): "definition: result columns",
    ("docs/cnf.md", "Datasets (`datasets/density.py`)", "name"): "definition: the density dataset registry",
    ("docs/cnf.md",
     "Summary metrics and the critical step count (`outputs/summary.py`, `outputs/critical.py`)",
     "metric"): "definition: the density metric records",
    ("docs/cnf.md", "Committed results: `results/cnf_toy`", "dataset"):
        "tests/test_published_cnf.py::test_the_cnf_results_table_is_the_committed_run",
    ("docs/diagnostics.md", "The verdict (`robustbench_ode/diagnostics/verdict.py`)", "constant"):
        DIAGNOSTICS,
    ("docs/diagnostics.md", "The fold test (`robustbench_ode/diagnostics/folds.py`)", "construction"):
        DIAGNOSTICS,
    ("docs/diagnostics.md", "Fold diagnostics: how to read them", "column"):
        "definition: diagnostics columns",
    ("docs/diagnostics.md", "Windermere decomposition: how to read it", "column"): "definition: fan columns",
    ("docs/diagnostics.md", "Cost", "steps"): "timing: wall seconds of one diagnostics run",
    ("docs/diagnostics.md", "The quick suite (`make results-bench`; `results/quick/summary.csv`, "
     "`diagnostics.csv`)", "train steps"): DIAGNOSTICS,
    ("docs/diagnostics.md", "The XOR fan (`make results-bench`; `results/xor_fan/`, re-diagnosed with the "
     "fold test above)", "train steps"): DIAGNOSTICS,
    ("docs/diagnostics.md",
      "The regularised models (`suites/regularization.yaml`; `results/regularization/`)",
     "training"): DIAGNOSTICS,
    ("docs/dupont.md", "g(x) = -x in 1-D: `suites/dupont_reflection.yaml`", "seed"):
        "tests/test_dupont.py::test_the_reflection_table_is_the_committed_run",
    ("docs/dupont.md", "Concentric rings: `results/anode`", "dataset"):
        "tests/test_dupont.py::test_the_concentric_rings_table_is_the_committed_anode_run",
    ("docs/images.md", "Datasets", "name"): "definition: the image dataset registry",
    ("docs/metrics.md", "Metrics, report, leaderboard, regression gate (reference)", "metric"):
        "definition: metric formulas",
    ("docs/metrics.md", "Metrics, report, leaderboard, regression gate (reference)", "trained with"):
        "definition: a worked example of the metric formulas (made-up accuracies, not a run)",
    ("docs/performance.md", "Performance: the fast paths and how to check them", "fast path"):
        "definition: fast paths and their equality tests",
    ("docs/reliability.md",
      "The bounded YAML loader (`config/loader.py`, `core/files.py`, `core/preview.py`)",
     "limit"): "definition: the loader's size limits (constants in config/loader.py)",
    ("docs/reliability.md",
      "The bounded YAML loader (`config/loader.py`, `core/files.py`, `core/preview.py`)",
     "guarantee"): "definition: guarantees and their tests",
    ("docs/reliability.md", "The integrity-checked store (`run/store.py`, `run/manifest.py`)", "guarantee"):
        "definition: guarantees and their tests",
    ("docs/reliability.md", "Every subcommand is guarded (`cli.py`, `commands.py`, `outputs/tables.py`, "
     "`outputs/gate.py`)", "guarantee"): "definition: guarantees and their tests",
    ("docs/reliability.md", "Kills and resume", "guarantee"): "definition: guarantees and their tests",
    ("docs/reliability.md", "Property tests: how many examples", "test"):
        "definition: hypothesis settings of the property tests",
    (R, "Reproductions: the published figures against ours", "figure"):
        T + "test_the_status_table_critical_counts_are_the_committed_run",
    (R, "Sphere2: Euler training, tested over a grid of step counts (Ott et al., Figure on Sphere2)",
     "train steps \\ Euler test steps"): T + "test_the_grid_tables_are_the_committed_runs",
    (R, "Sphere2: Euler training, tested over a grid of step counts (Ott et al., Figure on Sphere2)", ""):
        T + "test_the_published_against_ours_table_is_the_committed_run",
    (R, "Sphere2: midpoint- and rk4-trained models, and the critical step count per train solver",
     "train steps \\ midpoint test steps"): T + "test_the_grid_tables_are_the_committed_runs",
    (R, "Sphere2: midpoint- and rk4-trained models, and the critical step count per train solver",
     "train steps \\ rk4 test steps"): T + "test_the_grid_tables_are_the_committed_runs",
    (R, "The 256-step model's shortfall at 64 test steps: training length, learning rate, seeds",
     "256-step model"): T + "test_the_sphere2_investigation_table_is_the_committed_run",
    (R, "The 256-step model's shortfall at 64 test steps: training length, learning rate, seeds", "data"):
        T + "test_the_sphere2_shortfall_table_and_conclusion_are_the_committed_runs",
    (R, "Step adaptation at paper scale (threshold 0.1, as published)", "seed"):
        T + "test_the_adaptation_table_is_the_committed_runs",
    (R, "Concentric spheres in 3 and 10 dimensions (released work)",
     "dimension, train steps \\ Euler test steps"): T + "test_the_grid_tables_are_the_committed_runs",
    (R, "Concentric spheres in 900 dimensions (released work)", "train steps \\ Euler test steps"):
        T + "test_the_grid_tables_are_the_committed_runs",
    (R, "Adjoint training on Sphere2 (the talk's appendix)", "train steps"):
        T + "test_the_adjoint_table_is_the_committed_runs",
    (R, "Fashion-MNIST at full size, NODE against ANODE", "model"):
        T + "test_the_fashion_mnist_table_is_the_committed_run",
    (R, "Three minima (released work; our construction)", "train steps \\ Euler test steps"):
        T + "test_the_grid_tables_are_the_committed_runs",
    (R, "Tolerance adaptation at paper scale (fehlberg2, threshold 0.1)", "seed"):
        T + "test_the_tolerance_adaptation_table_is_the_committed_run",
    (R, "The effect, measured (`make bench`)", "train steps \\ test steps"):
        T + "test_the_quick_suite_table_is_the_committed_run",
    (R, "Lady Windermere's fan: the XOR case", "trained with"):
        T + "test_the_xor_tables_are_the_committed_run",
    (R, "ResNet baselines", "blocks"): T + "test_the_resnet_tables_are_the_committed_runs",
    (R, "Augmented neural ODEs", "dataset"): T + "test_the_anode_table_is_the_committed_run",
    (R, "Gradient method: autograd or the adjoint", "train solver"):
        T + "test_the_gradient_memory_table_is_the_committed_run",
    (R, "Regularised dynamics", "training"): T + "test_the_regularised_table_is_the_committed_run",
    (R, "Time series", "trained with \\ tested with"): T + "test_the_time_series_table_is_the_committed_run",
    ("docs/resnet.md", "Measured: Sphere2, the quick suite's grid", "train steps = blocks"):
        T + "test_the_resnet_tables_are_the_committed_runs",
    ("docs/robustness.md", "Metrics (`summary.csv`, one row per trained model)", "column"):
        "definition: summary columns",
    ("docs/scaling.md", "What is tested, and what is not", "path"): "definition: paths and their tests",
    ("docs/solvers.md", "Adaptive solves end on t1 with the method's own solution", "method"):
        T + "test_the_endpoint_table_is_the_committed_study_output",
    ("docs/solvers.md", "Solvers from the command line and Python (moved from the README)", "name"):
        T + "test_the_solver_tables_are_the_registry",
    ("docs/time_series.md", "Datasets (`robustbench_ode/datasets/timeseries.py`)", "name"):
        "definition: the time-series dataset registry",
    ("docs/time_series.md", "Van der Pol, measured (`suites/van_der_pol.yaml`)", "test solver"):
        T + "test_the_van_der_pol_table_is_the_committed_run",
    ("docs/torchode.md", "torchode backend", "name"): T + "test_the_solver_tables_are_the_registry",
    ("docs/torchode.md", "Semantics (the module docstring is the reference)", ""):
        "definition: semantics of the torchode backend",
    ("docs/xor_fan.md", "Pieces", "piece"): "definition: modules of the XOR study",
    ("docs/xor_fan.md", "Why the effect happens", "trained"):
        T + "test_the_xor_mechanism_table_is_the_snippet_the_doc_gives",
    ("docs/xor_fan.md", "Results", "trained with"): T + "test_the_xor_tables_are_the_committed_run",
}
