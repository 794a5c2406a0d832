"""The CI gate: a run's ``results.csv`` against a baseline table, row by row (``regress``).

A row is identified by its dataset, model, training, seed, train configuration and test configuration
(:data:`KEY`), not by the cell hash, which changes with the package version. A regression is:

- ``accuracy``: accuracy dropped by more than ``acc_tol`` (absolute);
- ``nfe``: NFE per solve rose by more than ``nfe_tol`` (relative);
- ``mse``: the trajectory error of a time-series row rose by more than ``mse_tol`` (relative: an
  error spans decades, so an absolute tolerance would fit one scale only);
- ``status``: the status got worse (see :attr:`robustbench_ode.core.status.Status.severity`);
- ``missing``: a baseline row has no counterpart in the run.

Rows new in the run are not regressions (a grown grid is fine).

Before any row is compared, :func:`check_comparable` refuses two tables whose suites differ in
anything but what is tested (:data:`TESTED_ONLY`: the test grid, the reference solve, the
diagnostics, the names) or the settings that never change a trained model (training's
speed-only settings): one line naming each differing setting with both values. Refusing, rather
than matching rows by cell key and listing the unmatched ones, because the line says *which*
setting differs (what the user must change), while a cell key only says that something does, and
changes with the package version, which would make every version bump look like "nothing to
compare". A table's suite is the validated suite its run recorded: ``owner.json`` (else
``suite.yaml``) in the run folder, or for a baseline file ``NAME.csv`` the ``NAME.suite.yaml``
beside it (``make baseline`` writes both). A table without one is compared by row key only, and
the command says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import SPEED_ONLY, parse_suite
from ..config.loader import parse_yaml
from ..core.errors import SuiteError
from ..core.files import read_text, show_path
from ..core.preview import clip, preview
from ..core.status import Status
from .tables import read_results

KEY = ["dataset", "model", "training", "seed", "train_solver", "train_steps", "train_tol", "test_solver",
       "test_steps", "test_tol"]


@dataclass(frozen=True)
class Regression:
    kind: str  # accuracy, mse, nfe, status, missing
    row: str  # the row's key, readable
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.row}: {self.detail}"


def load_table(path: str | Path) -> pd.DataFrame:
    """A results table from a CSV file or a run directory (its ``results.csv``): a missing,
    unreadable or malformed table (no key or metric column, no rows, text in a number column) is
    a one-line SuiteError naming the file (outputs/tables.py)."""
    return read_results(Path(path))


def load_baseline(path: str | Path) -> pd.DataFrame:
    """A baseline for :func:`regressions`: a results table whose finished rows each carry a metric
    (an accuracy or a trajectory error), so that a table stripped of its numbers cannot pass."""
    table = load_table(path)
    ok = table["status"] == "ok"
    bare = ok & table["accuracy"].isna() & table["mse"].isna()
    if bare.any():
        row = int(bare.to_numpy().nonzero()[0][0]) + 1
        raise SuiteError(f"{show_path(path)}: row {row} has status ok but no accuracy or mse; a "
                         "baseline row carries the metric it guards")
    return table


def _key_text(v) -> str:
    # Tolerances go through float arithmetic (factor x train tol): compare them to 9 digits.
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "-"
    return f"{v:.9g}" if isinstance(v, float) else str(v)


def _keyed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["_key"] = [" ".join(f"{c}={_key_text(v)}" for c, v in zip(KEY, vals) if _key_text(v) != "-")
                  for vals in df[KEY].itertuples(index=False)]
    # Per-sample step control is a test point of its own; batch (or a table from before the
    # test_control column was filled) keeps the key it always had.
    if "test_control" in df.columns:
        per_sample = df["test_control"].astype("string").fillna("").eq("per_sample")
        df.loc[per_sample, "_key"] = df.loc[per_sample, "_key"] + " test_control=per_sample"
    return df.drop_duplicates("_key").set_index("_key")


def _severity(status) -> int:
    return Status.parse(status).severity


def regressions(run: pd.DataFrame, baseline: pd.DataFrame, acc_tol: float = 0.02,
                nfe_tol: float = 0.10, mse_tol: float = 0.10) -> list[Regression]:
    run_k, base_k = _keyed(run), _keyed(baseline)
    out: list[Regression] = []
    for key, base in base_k.iterrows():
        if key not in run_k.index:
            out.append(Regression("missing", key, "row of the baseline is not in the run"))
            continue
        new = run_k.loc[key]
        if _severity(new["status"]) > _severity(base["status"]):
            out.append(Regression("status", key, f"{base['status']} -> {new['status']}"))
            continue  # a failed row has no accuracy to compare
        if pd.notna(base["accuracy"]) and pd.notna(new["accuracy"]) \
                and new["accuracy"] < base["accuracy"] - acc_tol:
            out.append(Regression("accuracy", key, f"{base['accuracy']:.4f} -> {new['accuracy']:.4f} "
                                  f"(tolerance {acc_tol:g})"))
        if "mse" in base.index and "mse" in new.index and pd.notna(base["mse"]) \
                and pd.notna(new["mse"]) and new["mse"] > base["mse"] * (1 + mse_tol):
            out.append(Regression("mse", key, f"{base['mse']:.4g} -> {new['mse']:.4g} "
                                  f"(tolerance {mse_tol:.0%})"))
        if pd.notna(base["nfe"]) and pd.notna(new["nfe"]) and new["nfe"] > base["nfe"] * (1 + nfe_tol):
            out.append(Regression("nfe", key, f"{base['nfe']:g} -> {new['nfe']:g} "
                                  f"(tolerance {nfe_tol:.0%})"))
    return out


def comparison(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Side by side, one line per row key of either table: accuracy, NFE and status of A and B
    and their differences (B - A)."""
    cols = ["accuracy", "nfe", "status"]
    ka, kb = _keyed(a)[cols], _keyed(b)[cols]
    both = ka.merge(kb, how="outer", left_index=True, right_index=True, suffixes=("_a", "_b"))
    both["d_accuracy"] = both["accuracy_b"] - both["accuracy_a"]
    both["d_nfe"] = both["nfe_b"] - both["nfe_a"]
    both = both[["accuracy_a", "accuracy_b", "d_accuracy", "nfe_a", "nfe_b", "d_nfe", "status_a",
                 "status_b"]]
    both.index.name = "row"
    return both.reset_index()


# Top-level suite keys that change what is tested, diagnosed or called, never what is trained.
TESTED_ONLY = ("test", "reference", "diagnostics", "description", "name")
RECORD_BYTES = 16 << 20


def _sidecar(csv: Path) -> Path:
    return csv.with_name(csv.name.removesuffix(".csv") + ".suite.yaml")


def _folder_record(folder: Path) -> dict[str, Any] | None:
    record = folder / "owner.json"
    if record.is_file():
        try:
            data = json.loads(read_text(record, RECORD_BYTES, "owner.json"))
        except (ValueError, RecursionError):
            raise SuiteError(f"{show_path(record)}: not a JSON record of a run's suite") from None
        if isinstance(data, dict) and isinstance(data.get("dump"), dict):
            return data["dump"]
        raise SuiteError(f"{show_path(record)}: no suite recorded in it (no 'dump' mapping)")
    return _suite_file(folder / "suite.yaml")


def _suite_file(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    suite = parse_suite(parse_yaml(read_text(path, 1 << 20, "suite file"), show_path(path)), show_path(path))
    return json.loads(json.dumps(suite.model_dump(mode="json")))


def recorded_suite(path: str | Path) -> dict[str, Any] | None:
    """The validated suite (every setting, defaults filled in) of the run a table comes from: a run
    folder's or a ``DIR/results.csv``'s record, or a baseline file's ``NAME.suite.yaml``; None
    when nothing records it. A record that cannot be read is a one-line SuiteError."""
    p = Path(path)
    if p.is_dir():
        return _folder_record(p)
    folder = p.parent
    if p.name == "results.csv" and ((folder / "owner.json").is_file() or (folder / "suite.yaml").is_file()):
        return _folder_record(folder)
    return _suite_file(_sidecar(p))


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    """Dotted paths to leaves; a list of one mapping (a suite's single dataset, model or training)
    is written without its index, as the suite file writes it."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = [("", value[0])] if len(value) == 1 else [(str(i), v) for i, v in enumerate(value)]
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, inner in items:
        out.update(_flat(inner, f"{prefix}.{key}" if key else prefix))
    return out


def setting_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted setting, value in a, value in b) for every setting that differs, leaving out
    :data:`TESTED_ONLY` and training's speed-only settings (they never change a trained model)."""
    keep = [k for k in dict.fromkeys([*a, *b]) if k not in TESTED_ONLY]
    flat_a = {p: v for k in keep for p, v in _flat(a.get(k), k).items()}
    flat_b = {p: v for k in keep for p, v in _flat(b.get(k), k).items()}
    out = []
    for path in dict.fromkeys([*flat_a, *flat_b]):
        if path.split(".")[0] == "training" and path.split(".")[-1] in SPEED_ONLY:
            continue
        if flat_a.get(path, "(unset)") != flat_b.get(path, "(unset)"):
            out.append((path, flat_a.get(path, "(unset)"), flat_b.get(path, "(unset)")))
    return out


def check_comparable(a: str | Path, b: str | Path, hint: str) -> str | None:
    """Raise a one-line SuiteError when the runs of tables ``a`` and ``b`` trained differently
    (module docstring); return a note when a side records no suite (rows compared by key only),
    None when both suites are known and comparable."""
    suite_a, suite_b = recorded_suite(a), recorded_suite(b)
    missing = [show_path(p) for p, s in ((a, suite_a), (b, suite_b)) if s is None]
    if missing:
        return (f"note: no suite recorded for {' and '.join(missing)} (owner.json or suite.yaml beside "
                "it): rows compared by key only, not checked to come from the same training")
    differs = setting_differences(suite_a, suite_b)
    if not differs:
        return None
    shown = "; ".join(f"{path} {preview(va, 24)} vs {preview(vb, 24)}" for path, va, vb in differs[:4])
    more = f" and {len(differs) - 4} more" if len(differs) > 4 else ""
    names = " and ".join(clip("/".join(Path(p).parts[-2:]), 40) for p in (a, b))
    raise SuiteError(clip(f"{names} are not comparable, trained differently: {shown}{more} (only the "
                          f"test grid may differ); {hint}", 270))
