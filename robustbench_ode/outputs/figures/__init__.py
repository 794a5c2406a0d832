"""Every figure a run's report shows, in one list (:data:`FIGURES`), each built from the run's
tables alone. Adding a figure: a drawing function in one of this package's modules and one entry
here (docs/architecture.md). The XOR fan's pictures need the trained models and live in
:mod:`robustbench_ode.studies.xor_fan`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .density import density_heatmaps, sample_scatter
from .diagnostics import contributions_over_time, fan, verdicts
from .layout import TrainLayout
from .results import accuracy_vs_test_steps, transfer_heatmap, work_precision
from .style import chance_levels
from .training import gradient_cost, nfe_over_training, steps_over_training, training_curves


@dataclass
class Sources:
    """The tables of one run a figure may draw from, and the run's train configurations as every
    figure shows them (:class:`~.layout.TrainLayout`: one label, colour and row grouping per
    configuration, the same in each figure)."""

    results: pd.DataFrame
    training: pd.DataFrame
    critical: pd.DataFrame | None = None
    diagnostics: pd.DataFrame | None = None
    contributions: pd.DataFrame | None = None
    fan: pd.DataFrame | None = None
    density_grid: pd.DataFrame | None = None
    samples: pd.DataFrame | None = None
    layout: TrainLayout = field(init=False)

    def __post_init__(self) -> None:
        self.layout = TrainLayout(self.results, self.training, self.diagnostics, self.contributions,
                                  self.fan, self.density_grid, self.samples)


@dataclass(frozen=True)
class Figure:
    file: str
    heading: str
    caption: str  # what it shows, and what the robust and the non-robust pattern look like
    draw: Callable[[Sources, Path], Path | None]  # None: the run has nothing to show here


FIGURES: list[Figure] = [
    Figure("accuracy_vs_steps.png", "Accuracy against test steps",
           "Test accuracy of each trained model (one line per train configuration: the mean over "
           "seeds, in a band from the lowest seed to the highest) against the test step count, one "
           "panel per test solver; adaptive test solvers against the tolerance, tighter to the "
           "right. The axis spans 0 to 1; the dashed line is chance (always predicting the test set's most "
           "frequent class). Lines that coincide keep apart by marker shape and size. A model that "
           "learned an ODE keeps its accuracy from its own step count on, at finer steps and with "
           "more accurate solvers: a flat line at the right. One that learned its train solver's "
           "discrete map (a ResNet in disguise) peaks at its own train step count and falls at "
           "finer steps and under accurate solvers, often to the chance line. A density run "
           "(continuous normalising flows) shows the test NLL in nats per dimension instead "
           "(lower is better, linear within 1 of 0 and logarithmic beyond): a solver-robust flow's "
           "line is flat from its own step count on; a coarse flow that is a density only under "
           "its train solver has its lowest NLL there and a much higher one under accurate solvers.",
           lambda s, p: accuracy_vs_test_steps(s.results, p, s.layout)),
    Figure("density_heatmaps.png", "Densities: train configuration x test solver (2-D flows)",
           "The log-density each flow (one row per train configuration, its lowest seed) assigns "
           "to the window [-4, 4]^2 under its own train solver, finer test solves and the reference "
           "(columns; one colour scale per row, from the row's highest value down 12 nats). A "
           "solver-robust flow's row is the same picture in every column. A coarse flow that is a "
           "density only under its train solver shows its data's shape in the first column and a "
           "different, smeared or shifted one under the accurate solves: the likelihood it "
           "reported belongs to no density the ODE defines.",
           lambda s, p: density_heatmaps(s.density_grid, p, s.layout)),
    Figure("density_samples.png", "Samples: own solver against the reference (2-D flows)",
           "Held-out data (left) and samples solved back from the same base draws under the flow's "
           "own train solver (middle) and the reference solve (right), one row per train "
           "configuration (lowest seed). A solver-robust flow's two sample columns match each "
           "other and the data; a flow whose samples fall apart under the accurate solve is a "
           "generator only under its train solver (energy_ref in the summary says how far).",
           lambda s, p: sample_scatter(s.samples, p, s.layout)),
    Figure("transfer_heatmap.png", "Transfer heatmap (train steps x test steps)",
           "Mean test accuracy over seeds (colour on a fixed 0-1 scale; trajectory MSE on a log "
           "scale for time-series suites) for every pair of train step count (rows) and test step "
           "count (columns), one panel per fixed-step test solver; step-trained models only. A "
           "robust model keeps its row bright from its own train step count rightwards; a ResNet "
           "in disguise is bright only at and near its own step count and dark to the right.",
           lambda s, p: transfer_heatmap(s.results, p, s.layout)),
    Figure("work_precision.png", "Work-precision of the learned models",
           "Test error (1 - accuracy, on a fixed 0-1 axis; the dashed line is chance's error) "
           "against field evaluations per solve of one batch, one curve per test solver, one panel "
           "per train configuration, seeds averaged; trajectory MSE for time-series suites. For an "
           "ODE model the error falls or settles as the work grows, the same for every solver; a "
           "model whose error rises with more work was fitted to one discretisation.",
           lambda s, p: work_precision(s.results, p, s.layout)),
    Figure("training_curves.png", "Training curves",
           "Loss and accuracy on the training batch (not the test set; the accuracy on a 0-1 axis, "
           "dashed: the test set's chance level), field evaluations and solver steps per forward "
           "solve, against the iteration; one line per train configuration, the seeds' range as a "
           "band, coinciding lines apart by line style and width. These show whether and how fast "
           "a model learned, not whether it is robust: a coarse model's training accuracy can be "
           "as high as a fine one's.",
           lambda s, p: training_curves(s.training, p, chance_levels(s.results), s.layout)),
    Figure("nfe_over_training.png", "NFE over training (adaptive train solves)",
           "Field evaluations per forward solve of adaptive train solves against the iteration, one "
           "line per model or training of the suite (the seeds' range as a band), one panel per "
           "dataset: a growing NFE means the learned dynamics get harder to solve (augmented "
           "models, ANODE, are expected to stay flatter than plain NODEs).",
           lambda s, p: nfe_over_training(s.training, p, s.layout)),
    Figure("gradient_cost.png", "Gradient cost against the step count",
           "Memory autograd keeps for the backward pass and field evaluations per iteration "
           "(forward and backward), against the Euler train step count, one line per training "
           "(log axes, means over iterations and seeds): autograd's memory grows with the steps, "
           "the adjoint's does not, and it pays with backward evaluations.",
           lambda s, p: gradient_cost(s.training, p)),
    Figure("diagnostics_verdicts.png", "Why models break: the verdicts",
           "Each trained model's flip fraction (test samples the train configuration classifies "
           "differently from the reference solve) against the share of those flips that happen at "
           "a step where the train solver's one-step map folds space (det <= 0). Robust models sit "
           "left of the vertical line; above the horizontal line the model relies on folds no ODE "
           "flow can make (a ResNet); flips without folds are accumulated error (docs/diagnostics.md).",
           lambda s, p: verdicts(s.diagnostics, p) if s.diagnostics is not None else None),
    Figure("diagnostics_contributions.png", "When the error arises",
           "The global error of the train configuration is the sum of its local errors carried to "
           "the end time by the flow (Lady Windermere's fan). Per train configuration: the share "
           "of that sum each stretch of time contributes (median over samples, 10-90% band; "
           "flipped samples dashed). Accumulated error is spread over the trajectory; a spike "
           "marks a step that alone moves samples, typically a fold or a very coarse step.",
           lambda s, p: (contributions_over_time(s.contributions, p, s.layout)
                         if s.contributions is not None else None)),
    Figure("diagnostics_fan.png", "The fan over the data (2-D states)",
           "For a few test samples (lowest seed): the points w_k, the reference flow of the train "
           "solver's k-th point to the end time, from z_ref(T) (circle) to the train "
           "configuration's end state (square); bold: samples whose class flips. A true ODE's fan "
           "is a dot; long or crossing fans are the error the train solver's steps carry.",
           lambda s, p: fan(s.fan, p, s.layout) if s.fan is not None else None),
    Figure("adaptation_steps.png", "Step count in force (adapted training)",
           "The train step count (or tolerance) the adaptation algorithm keeps over the iterations, "
           "one line per seed; where the run swept train step counts, the grid-searched critical "
           "step count as a dashed line (seed-averaged) and a grey band (per-seed range). An "
           "adaptation that works settles near or above the critical count.",
           lambda s, p: steps_over_training(s.training, p, s.critical)),
]

__all__ = ["FIGURES", "Figure", "Sources", "TrainLayout"]
