"""Running a suite: every cell in turn, tables rewritten after each, plots at the end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from .adaptation_plots import write_adaptation_plots
from .cell import CellResult, cells, run_cell, test_points
from .config import SuiteConfig, SuiteError
from .critical import write_critical
from .meta import environment, now
from .plots import accuracy_vs_test_steps
from .status import Status
from .tables import read_results, results_frame, training_frame, write_csv


@dataclass
class RunReport:
    out_dir: Path
    results: list[CellResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CellResult]:
        return [r for r in self.results if r.status is not Status.OK
                or any(row["status"] != "ok" for row in r.rows)]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SuiteError(f"--device {device}: CUDA is not available here (allowed: auto, cpu)")
    return device


def run_suite(suite: SuiteConfig, out_dir: Path, device: str = "cpu", progress: bool = True,
              suite_text: str | None = None) -> RunReport:
    device = resolve_device(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "suite.yaml").write_text(suite_text if suite_text is not None
                                        else yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False))
    meta = {"suite": suite.name, "started": now(), **environment(device)}
    _write_json(out_dir / "meta.json", meta)
    report = RunReport(out_dir)
    todo = cells(suite)
    for cell in tqdm(todo, desc=f"suite {suite.name}", unit="cell", disable=not progress):
        result = run_cell(cell, test_points(suite, cell), device=device, progress=progress)
        report.results.append(result)
        _write_tables(report)  # after every cell: nothing computed is lost
    plot = accuracy_vs_test_steps(results_frame(r for res in report.results for r in res.rows),
                                  out_dir / "accuracy_vs_steps.png")
    write_critical(read_results(out_dir / "results.csv"), out_dir)  # critical.py, if steps were swept
    write_adaptation_plots(out_dir)  # adaptation_plots.py, if any cell was adapted
    meta.update(finished=now(), cells=len(todo), failed_cells=len(report.failed),
                plots=[plot.name] if plot else [])
    _write_json(out_dir / "meta.json", meta)
    return report


def _write_tables(report: RunReport) -> None:
    rows = [row for res in report.results for row in res.rows]
    write_csv(results_frame(rows), report.out_dir / "results.csv")
    training = training_frame((res.cell.columns(), res.log) for res in report.results)
    write_csv(training, report.out_dir / "training.csv")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)
