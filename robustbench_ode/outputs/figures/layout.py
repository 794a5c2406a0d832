"""The train configurations of one run as every figure shows them: one label each, one fixed
order, one colour each, and the rows of small multiples that a figure with many configurations
splits into.

Built once per run from its tables (:class:`TrainLayout`; the report passes the same one to
every figure, so "euler 64" has one colour in the accuracy figure, the training curves and the
diagnostics), and from a figure's own table when a figure is drawn alone. The order is the
configurations' sorted order (dataset, model, training, train solver, then steps or tolerance
numerically), which is the suite's own for a grid listed coarse to fine; the colours follow it.

Rows (:attr:`TrainLayout.rows`): a figure whose panels would draw more than :data:`MAX_LINES`
train configurations draws one row of panels per group instead: per dataset (each row then has
one chance level), then per train solver, then per train step count or tolerance (the
variants of one solver configuration together), else in consecutive chunks. Colours are given
per row: a row that is one solver's sweep of step counts (or tolerances) gets an ordered ramp,
coarse dark to fine light; any other row the qualitative tab10 colours by position, so that the
same position in two rows (node and anode on each dataset) has the same colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

CONFIG = ["dataset", "model", "training", "train_solver", "train_steps", "train_tol"]
VARIANTS = ("dataset", "model", "training")
MAX_LINES = 10  # train configurations one panel draws before the figure splits into rows
SWEEP_MIN = 3  # a sweep of at least this many step counts gets the ordered ramp


@dataclass(frozen=True)
class Row:
    """One row of small multiples: its title ("" when the figure has one row), its
    configurations in order, and its one dataset (None when it spans several)."""

    title: str
    labels: list[str]
    dataset: str | None = None


def _key(values) -> tuple:
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            out.append(None)
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out.append(float(v))
        else:
            out.append(str(v))
    return tuple(out)


def _config_text(solver, steps, tol) -> str:
    solver = f"{solver} " if pd.notna(solver) else ""
    if pd.notna(steps):
        return f"{solver}{int(steps)}"
    return f"{solver}tol {tol:g}" if pd.notna(tol) else solver.strip() or "?"


class TrainLayout:
    """Labels, order, colours and rows of the train configurations found in ``tables``."""

    def __init__(self, *tables: pd.DataFrame | None) -> None:
        keys = []
        for table in tables:
            if table is None or table.empty:
                continue
            part = table[[c for c in CONFIG if c in table.columns]].drop_duplicates()
            keys += [_key(r) for r in part.reindex(columns=CONFIG).itertuples(index=False)]
        configs = pd.DataFrame(list(dict.fromkeys(keys)), columns=CONFIG)
        self.varying = [c for c in VARIANTS if configs[c].nunique(dropna=False) > 1]
        by = [*VARIANTS, "train_solver", "train_steps", "train_tol"]
        configs = configs.sort_values(by, na_position="last", kind="stable").reset_index(drop=True)
        configs["text"] = [_config_text(s, n, t) for s, n, t in
                           zip(configs.train_solver, configs.train_steps, configs.train_tol)]
        if self.varying:
            prefix = configs[self.varying].astype(str).agg("/".join, axis=1)
            configs["label"] = prefix + ": " + configs["text"]
        else:
            configs["label"] = configs["text"]
        self.configs = configs
        self.datasets = list(dict.fromkeys(configs["dataset"].dropna()))
        self._by_key = {_key(r): label for r, label in
                        zip(configs[CONFIG].itertuples(index=False), configs["label"])}
        self.rows = self._rows()
        self.colours = self._colours()

    @property
    def order(self) -> list[str]:
        return list(self.configs["label"])

    def label(self, df: pd.DataFrame) -> list[str]:
        """Each row's train configuration label (one lookup per configuration: a training log
        has a million rows and a handful of configurations)."""
        cols = [c for c in CONFIG if c in df.columns]
        group = df.groupby(cols, dropna=False, sort=False).ngroup().to_numpy()
        firsts = df[cols][~pd.Series(group).duplicated().to_numpy()].reindex(columns=CONFIG)
        labels = [self._by_key[_key(r)] for r in firsts.itertuples(index=False)]
        return [labels[g] for g in group]

    def colour(self, label: str) -> tuple[float, float, float]:
        return self.colours[label]

    def short(self, label: str, row: Row) -> str:
        """A label without the dataset when its row's title names it."""
        config = self.configs[self.configs["label"] == label].iloc[0]
        drop_dataset = row.dataset is not None and len(self.datasets) > 1
        parts = [str(config[c]) for c in self.varying if not (c == "dataset" and drop_dataset)]
        return f"{'/'.join(parts)}: {config['text']}" if parts else config["text"]

    def rows_for(self, labels) -> list[Row]:
        """The rows restricted to ``labels`` (a figure's configurations), empty rows left out."""
        present = set(labels)
        rows = [Row(r.title, [x for x in r.labels if x in present], r.dataset) for r in self.rows]
        return [r for r in rows if r.labels]

    def _rows(self) -> list[Row]:
        c, datasets = self.configs, self.datasets
        if len(c) <= MAX_LINES:
            return [Row("", list(c["label"]), datasets[0] if len(datasets) == 1 else None)]
        several = len(datasets) > 1
        only = datasets[0] if len(datasets) == 1 else None
        parts = [(d, c[c["dataset"] == d]) for d in datasets] if several else [(only, c)]
        rows = []
        for dataset, part in parts:
            head = dataset if several else ""
            if len(part) <= MAX_LINES:
                rows.append(Row(head, list(part["label"]), dataset))
                continue
            for solver, by_solver in part.groupby("train_solver", sort=False):
                rows += self._split(by_solver, head, solver, dataset)
        return rows

    @staticmethod
    def _split(part: pd.DataFrame, head: str, solver: str, dataset: str | None) -> list[Row]:
        """One train solver's configurations: one row, else one per step count (or tolerance)
        holding its variants, else consecutive chunks of at most MAX_LINES."""
        def title(what: str) -> str:
            return ", ".join(filter(None, [head, f"trained with {what}"]))

        if len(part) <= MAX_LINES:
            return [Row(title(solver), list(part["label"]), dataset)]
        by_config = [g for _, g in part.groupby("text", sort=False)]
        if all(1 < len(g) <= MAX_LINES for g in by_config):
            return [Row(title(g["text"].iloc[0]), list(g["label"]), dataset) for g in by_config]
        size = math.ceil(len(part) / math.ceil(len(part) / MAX_LINES))
        chunks = [part.iloc[i:i + size] for i in range(0, len(part), size)]
        return [Row(title(f"{g['text'].iloc[0]} ... {g['text'].iloc[-1]}"), list(g["label"]), dataset)
                for g in chunks]

    def _colours(self) -> dict[str, tuple[float, float, float]]:
        out: dict[str, tuple[float, float, float]] = {}
        qualitative = sns.color_palette("tab10", 10)
        indexed = self.configs.set_index("label")
        for row in self.rows:
            part = indexed.loc[row.labels]
            sweep = (len(part) >= SWEEP_MIN and part["train_solver"].nunique() == 1
                     and all(part[c].nunique(dropna=False) == 1 for c in VARIANTS))
            if sweep:  # coarse (dark) to fine (light), without viridis' pale yellow end
                ramp = plt.get_cmap("viridis")(np.linspace(0.0, 0.82, len(part)))
                colours = [tuple(float(v) for v in rgba[:3]) for rgba in ramp]
            else:
                colours = [tuple(qualitative[i % len(qualitative)]) for i in range(len(part))]
            out.update(zip(row.labels, colours))
        return out
