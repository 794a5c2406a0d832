"""The critical step count: the coarsest training step count at which a model behaves as an ODE.

Built from ``results.csv`` of a suite that sweeps fixed train step counts. For one trained model
(one cell), the *drop* of a check is its train-configuration accuracy minus its accuracy under the
check; only losses count, a gain is a drop of 0. The checks are

- the train solver at 2x and 4x the train steps (``step_factors`` 2 and 4), and
- every solver of higher order than the train solver, at every step factor >= 1 tested.

A train step count N *keeps its accuracy* when the largest drop over its checks, averaged over
seeds, is at most ``tol`` (default 0.02, i.e. 2 points). The critical step count of a
(dataset, model, train solver) is the smallest swept N that keeps its accuracy *and* every larger
swept N does too: a model stuck at chance keeps its (chance) accuracy at any test step, so a lone
coarse pass below a failing count is not taken as the critical point. The seed spread comes from
the same rule applied to each seed's own drops.

A model that did not learn (train-configuration accuracy more than ``learned_margin`` below the
best one of its group) is left out: its flat accuracy says nothing about ODE behaviour, and its
failed training says nothing about the step count either. A group in which no model learned at
all (every train-configuration accuracy within ``learned_margin`` of chance, the accuracy of
always predicting the test set's most frequent class) has no critical step count: its row says
``critical_status: not_learned`` with the best accuracy and chance in ``critical_note``, and the
step columns are empty. ``critical_status`` is ``ok`` when a critical count was found and
``not_found`` when the sweep has no count from which every larger one keeps its accuracy.

Two definitions are in use and ``critical.csv`` (:func:`critical_table`) has both, each with two
check sets: ``critical_rule`` ``strict`` (``tol`` 0.02, the default above) and ``adaptation``
(``tol`` = the adaptation algorithm's own threshold, 0.1: the gap at which
``training/adaptation.py`` halves the step), ``critical_checks`` ``fixed`` (the checks above:
test rows with a step count) and ``fixed+adaptive`` (also every adaptive higher-order test row,
e.g. dopri5 at a tolerance). ``critical_per_seed`` lists each seed's own critical count
(``seed:steps``, ``-`` where that seed has none). The summary's ``critical_steps`` is the strict,
fixed one.

**Density runs** (rows with ``nll`` and no accuracy: continuous normalising flows, docs/cnf.md)
use the same rule on the test negative log-likelihood in nats per dimension: a check's *drop* is
its NLL minus the train configuration's (only a rise counts: the flow is worse than its train
solver claims, the NLL gap of ``nll_gap``), and the thresholds (:data:`DENSITY_RULES`) are in
nats per dimension: ``strict`` 0.02 (the likelihood off by a factor exp(0.02) = 1.02 per
dimension, the 2 % of the accuracy rule read as a density ratio) and ``adaptation`` 0.1 (a factor
1.105 per dimension; the density task has no step adaptation, the name keeps critical.csv's two
rules). A flow has no chance level and no "did not learn" test (its NLL has no floor to compare
with), so every trained flow counts.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..solvers import SOLVERS
from .tables import is_density, is_regression, write_csv

KEYS = ["dataset", "model", "training", "train_solver"]
RULES = {"strict": 0.02, "adaptation": 0.1}  # tol of each definition (module docstring)
DENSITY_RULES = {"strict": 0.02, "adaptation": 0.1}  # nats per dimension (module docstring)
CHECKS = {"fixed": False, "fixed+adaptive": True}
COLUMNS = KEYS + ["critical_steps", "critical_steps_mean", "critical_steps_std", "critical_steps_min",
                  "critical_steps_max", "critical_seeds", "swept_steps", "critical_tol",
                  "critical_status", "critical_note", "critical_per_seed"]
TABLE_COLUMNS = KEYS + ["critical_rule", "critical_checks"] + COLUMNS[len(KEYS):]


def _order(name: str) -> int:
    return SOLVERS.get(name).order if name in SOLVERS else -1


def _named(results: pd.DataFrame) -> pd.DataFrame:
    # tables from before suites could list trainings have a single, unnamed one
    return results if "training" in results.columns else results.assign(training="default")


def _measure(results: pd.DataFrame) -> tuple[str, float]:
    """The score a drop is measured on and its sign: accuracy (a fall is a drop), or a density
    table's nll (a rise is a drop)."""
    return ("nll", -1.0) if is_density(results) else ("accuracy", 1.0)


def cell_drops(results: pd.DataFrame, adaptive_checks: bool = False) -> pd.DataFrame:
    """One row per fixed-step, non-adapted cell with status ok: its largest accuracy drop over the
    checks (NaN when the suite tested none of them); ``adaptive_checks``: also over the adaptive
    test rows (no ``test_steps``) of solvers of higher order than the train solver. A density
    table's drop is the rise of its nll, and ``train_accuracy`` holds minus the train nll (so
    "higher is better" holds for the column either way)."""
    results = _named(results)
    score, sign = _measure(results)
    df = results[(results["status"] == "ok") & results["train_steps"].notna()
                 & results["train_tol"].isna()]
    if "adapted" in df.columns:
        df = df[~df["adapted"].fillna(False).astype(bool)]
    rows = []
    has_chance = "chance" in df.columns
    for (_cell, *ident), part in df.groupby(["cell"] + KEYS + ["seed", "train_steps"], sort=False):
        train = part[part["is_train_config"].fillna(False).astype(bool)]
        if train.empty:
            continue
        base = sign * float(train[score].iloc[0])
        named = dict(zip(KEYS + ["seed", "train_steps"], ident))
        solver, steps = named["train_solver"], int(named["train_steps"])
        same = part[(part["test_solver"] == solver) & part["test_steps"].isin([2 * steps, 4 * steps])]
        fixed = part["test_steps"].notna() & (part["test_steps"] >= steps)
        if adaptive_checks:
            fixed = fixed | part["test_steps"].isna()
        higher = part[(part["test_solver"].map(_order) > _order(solver)) & fixed]
        checks = pd.concat([same, higher])
        drop = float(np.maximum(base - sign * checks[score], 0.0).max()) if len(checks) else math.nan
        chance = float(train["chance"].iloc[0]) if has_chance else math.nan
        rows.append(dict(zip(KEYS + ["seed", "train_steps"], ident), train_accuracy=base, drop=drop,
                         n_checks=len(checks), chance=chance))
    return pd.DataFrame(rows, columns=KEYS + ["seed", "train_steps", "train_accuracy", "drop", "n_checks",
                                              "chance"])


def _smallest_stable(drops: pd.Series, tol: float) -> float:
    """Smallest index (step count) from which every larger one keeps its accuracy; NaN if none."""
    drops = drops.dropna().sort_index()
    critical = math.nan
    for steps in reversed(drops.index.tolist()):
        if drops[steps] > tol:
            break
        critical = float(steps)
    return critical


def critical_steps(results: pd.DataFrame, tol: float = 0.02,
                   learned_margin: float = 0.1, adaptive_checks: bool = False) -> pd.DataFrame:
    """Per (dataset, model, train solver): the critical step count from seed-averaged drops, and
    the per-seed critical values' mean, std, min and max. Empty if the table sweeps no steps, and
    for time-series regression tables (the rule is about accuracy; they have none)."""
    if is_regression(results):
        return pd.DataFrame(columns=COLUMNS)
    drops = cell_drops(results, adaptive_checks)
    if is_density(results):
        learned_margin = math.inf  # no flow is left out (module docstring)
    out = []
    for ident, part in drops.groupby(KEYS, sort=False):
        unlearned = part["train_accuracy"] < part["train_accuracy"].max() - learned_margin
        part = part.assign(drop=part["drop"].mask(unlearned))
        swept = sorted(int(s) for s in part["train_steps"].unique())
        if len(swept) < 2:
            continue  # one step count is no sweep
        best, chance = float(part["train_accuracy"].max()), float(part["chance"].max())
        if math.isfinite(chance) and best <= chance + learned_margin:
            out.append(dict(zip(KEYS, ident), critical_seeds=0, swept_steps=" ".join(map(str, swept)),
                            critical_tol=tol, critical_status="not_learned",
                            critical_note=f"no model learned: best train-configuration accuracy "
                                          f"{best:.3f}, chance {chance:.3f}"))
            continue
        mean_drop = part.groupby("train_steps")["drop"].mean()  # NaN only if no seed learned
        seeds = [(seed, _smallest_stable(p.set_index("train_steps")["drop"], tol))
                 for seed, p in part.groupby("seed")]
        per_seed = np.array([c for _, c in seeds])
        finite = per_seed[np.isfinite(per_seed)]
        critical = _smallest_stable(mean_drop, tol)
        out.append(dict(zip(KEYS, ident), critical_steps=critical,
                        critical_steps_mean=finite.mean() if len(finite) else math.nan,
                        critical_steps_std=finite.std(ddof=1) if len(finite) > 1 else math.nan,
                        critical_steps_min=finite.min() if len(finite) else math.nan,
                        critical_steps_max=finite.max() if len(finite) else math.nan,
                        critical_seeds=len(finite), swept_steps=" ".join(map(str, swept)),
                        critical_tol=tol, critical_status="ok" if math.isfinite(critical) else "not_found",
                        critical_note="" if math.isfinite(critical) else
                        "no swept step count from which every larger one keeps its accuracy",
                        critical_per_seed=" ".join(f"{seed}:{c:.0f}" if math.isfinite(c) else f"{seed}:-"
                                                   for seed, c in seeds)))
    return pd.DataFrame(out, columns=COLUMNS)


def critical_table(results: pd.DataFrame, learned_margin: float = 0.1) -> pd.DataFrame:
    """``critical.csv``: :func:`critical_steps` under each definition of ``RULES`` and each check
    set of ``CHECKS`` (module docstring), one row per (group, rule, checks)."""
    rules = DENSITY_RULES if is_density(results) else RULES
    parts = [critical_steps(results, tol, learned_margin, adaptive).assign(critical_rule=rule,
                                                                            critical_checks=checks)
             for rule, tol in rules.items() for checks, adaptive in CHECKS.items()]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[TABLE_COLUMNS]


def write_critical(results: pd.DataFrame, out_dir: Path) -> Path | None:
    """``critical.csv`` beside ``results.csv`` when the run swept train step counts."""
    table = critical_table(results)
    if table.empty:
        return None
    path = Path(out_dir) / "critical.csv"
    write_csv(table, path)
    return path


def _critical_of(critical: pd.DataFrame, ident: dict) -> dict[str, float]:
    """The critical count of one group: {"": c} from a :func:`critical_steps` table, {"_RULE": c}
    per rule (fixed checks) from a :func:`critical_table`."""
    crit = critical[(critical[KEYS] == pd.Series(ident)).all(axis=1)]
    if "critical_rule" not in crit.columns:
        return {"": float(crit["critical_steps"].iloc[0]) if len(crit) else math.nan}
    crit = crit[crit["critical_checks"] == "fixed"]
    return {f"_{rule}": float(crit.loc[crit["critical_rule"] == rule, "critical_steps"].iloc[0])
            if (crit["critical_rule"] == rule).any() else math.nan for rule in RULES}


def adapted_vs_critical(results: pd.DataFrame, critical: pd.DataFrame, check_solver: str = "rk4",
                        factor: float = 4.0) -> pd.DataFrame:
    """Per adapted cell: its final step count, its train-configuration accuracy, its accuracy with
    ``check_solver`` at ``factor`` x the final steps, the drop, and the ratio of the final step count
    to the grid-searched critical one (the issue's acceptance measures): ``critical_steps`` /
    ``ratio_to_critical`` from a :func:`critical_steps` table, ``critical_steps_RULE`` /
    ``ratio_to_critical_RULE`` for both definitions from a :func:`critical_table`."""
    results, critical = _named(results), _named(critical)
    df = results[results["adapted"].fillna(False).astype(bool) & (results["status"] == "ok")]
    rows = []
    for (_cell, *ident, seed), part in df.groupby(["cell"] + KEYS + ["seed"], sort=False):
        train = part[part["is_train_config"].fillna(False).astype(bool)]
        check = part[(part["test_solver"] == check_solver) & (part["test_factor"] == factor)]
        final = int(part["train_steps"].iloc[0])
        base = float(train["accuracy"].iloc[0]) if len(train) else math.nan
        acc = float(check["accuracy"].iloc[0]) if len(check) else math.nan
        row = dict(zip(KEYS, ident), seed=seed, final_steps=final, train_accuracy=base,
                   check=f"{check_solver}@{factor:g}x", check_accuracy=acc, drop=base - acc)
        for suffix, c in _critical_of(critical, dict(zip(KEYS, ident))).items():
            row[f"critical_steps{suffix}"] = c
            row[f"ratio_to_critical{suffix}"] = final / c if c else math.nan
        rows.append(row)
    return pd.DataFrame(rows)
