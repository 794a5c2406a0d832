"""The two tables every run writes, declared once: their columns, types and meanings.

``results.csv`` has one row per (trained model, test configuration); ``training.csv`` one row per
(trained model, training iteration). Every row of either table has every column of its schema
(empty where a column does not apply), whichever path produced it: single-seed or seed-stacked
training, adapted, regularised, adjoint or time-series cells, re-tested stored models and
``benchmark()``. The row builders (:mod:`robustbench_ode.harness.rows`,
:mod:`robustbench_ode.training.log`) start from these lists, the tables are read back with these
types (:mod:`robustbench_ode.outputs.tables`), and ``tests/test_schema.py`` checks every path
against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["int", "float", "str", "bool"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    meaning: str


# The columns naming the trained model a row belongs to: the same in both tables.
CELL_COLUMNS = (
    Column("cell", "str", "the cell's content key (a hash of everything that determines the trained model)"),
    Column("dataset", "str", "dataset label (its name unless the suite labels it)"),
    Column("model", "str", "model label (its name unless the suite labels it)"),
    Column("training", "str", "training label ('default' unless the suite labels it)"),
    Column("seed", "int", "seed of data, initialisation and batch order"),
    Column("train_solver", "str", "solver the model was trained with"),
    Column("train_steps", "int", "train step count (fixed-step; an adapted cell's final count)"),
    Column("train_tol", "float", "train rtol = atol (adaptive; an adapted cell's final tolerance)"),
)

RESULTS = (
    *CELL_COLUMNS[1:8],
    Column("test_solver", "str", "solver of this test configuration"),
    Column("test_steps", "int", "test step count (fixed-step rows)"),
    Column("test_tol", "float", "test rtol = atol (adaptive rows)"),
    Column("accuracy", "float", "test accuracy (classification; empty for time series)"),
    Column("mse", "float", "mean squared trajectory error (time series; empty for classifiers)"),
    Column("nll", "float", "density: mean test negative log-likelihood, nats per dimension"),
    Column("bpd", "float", "density of quantised data (digits): test NLL in bits per dimension"),
    Column("energy_distance", "float", "density: energy distance of base samples solved back vs held-out"),
    Column("loss", "float", "mean test loss"),
    Column("nfe", "float", "field evaluations per batch solve (mean over evaluation batches)"),
    Column("status", "str", "ok, non_finite, max_steps, oom, lost, failed or skipped"),
    CELL_COLUMNS[0],
    Column("adapted", "bool", "whether the train solve was adapted during training"),
    Column("test_control", "str", "step-size control of an adaptive test solve: batch or per_sample"),
    Column("test_factor", "float", "the step or tolerance factor a test point came from"),
    Column("is_train_config", "bool", "this row is the train configuration"),
    Column("is_reference", "bool", "this row is the reference solve of the robustness metrics"),
    Column("steps_taken", "float", "accepted steps per batch solve (mean over batches)"),
    Column("accepted", "float", "accepted steps per batch solve (adaptive)"),
    Column("rejected", "float", "rejected steps per batch solve (adaptive)"),
    Column("message", "str", "why a row failed"),
    Column("n_test", "int", "test samples"),
    Column("chance", "float", "accuracy of always predicting the test set's most frequent class"),
    Column("eval_seconds", "float", "wall time of this test configuration"),
    Column("drift", "float", "train row: mean relative distance of final states, train vs reference"),
    Column("train_status", "str", "outcome of training: ok, diverged, max_steps, oom or failed"),
    Column("train_message", "str", "why training stopped early"),
    Column("train_seconds", "float", "wall time of training (a seed group's, divided among its seeds)"),
)

TRAINING = (
    *CELL_COLUMNS,
    Column("iteration", "int", "training iteration, from 0"),
    Column("loss", "float", "training loss of the batch (with penalties when regularised)"),
    Column("accuracy", "float", "accuracy on the training batch (classification)"),
    Column("mse", "float", "trajectory MSE on the training batch (time series)"),
    Column("nll", "float", "density: the batch's negative log-likelihood, nats per dimension"),
    Column("nfe", "int", "field evaluations of the forward solve"),
    Column("nfe_backward", "int", "field evaluations of the backward pass (0 for autograd)"),
    Column("steps", "int", "accepted steps of the forward solve"),
    Column("saved_mb", "float", "memory autograd keeps for the backward pass (empty when not recorded)"),
    Column("solve_status", "str", "status of the forward solve"),
    Column("seconds", "float", "wall time of the iteration (a seed group's, divided among its seeds)"),
    Column("images_per_s", "float", "training samples per second"),
    Column("peak_gpu_mb", "float", "peak GPU memory (CUDA only)"),
    Column("steps_in_force", "int", "adapted training: the step count in force"),
    Column("tol_in_force", "float", "adapted training: the tolerance in force"),
    Column("check_acc_train", "float", "adaptation check: train solver's batch accuracy"),
    Column("check_acc_test", "float", "adaptation check: the more accurate solver's batch accuracy"),
    Column("check_acc_trial", "float", "adaptation check: accuracy at the step or tol tried"),
    Column("check_decision", "str", "adaptation check: halve, halve_capped, grow, keep or revert"),
    Column("check_nfe", "int", "adaptation check: its own field evaluations"),
    Column("task_loss", "float", "regularised training: the loss without penalties"),
    Column("kinetic", "float", "regularised training: kinetic-energy integral (batch mean)"),
    Column("jacobian", "float", "regularised training: Jacobian-Frobenius integral (batch mean)"),
)

# The diagnostics of each trained model (diagnostics.csv; robustbench_ode/diagnostics): why it
# breaks. How to read each number: docs/diagnostics.md.
DIAGNOSTICS = (
    *CELL_COLUMNS,
    Column("diagnostics_status", "str", "ok, not_computed (with the reason) or failed"),
    Column("diagnostics_message", "str", "why not computed, samples left out"),
    Column("diagnostics_method", "str", "the diagnosis method (a stored one of another is recomputed)"),
    Column("effect", "str", "verdict: robust, fold, accumulation, mixed or undetermined"),
    Column("train_config", "str", "the train configuration diagnosed"),
    Column("reference_config", "str", "the reference solve"),
    Column("n_samples", "float", "test samples diagnosed (the first ones of the test split)"),
    Column("state_dim", "float", "flattened state size"),
    Column("steps", "float", "train steps diagnosed"),
    Column("transport_blocks", "float", "terms of the Windermere sum (steps, or blocks of steps)"),
    Column("non_finite_fraction", "float", "samples whose train solve was not finite"),
    Column("ref_failed_fraction", "float", "samples the reference could not transport"),
    Column("fold_fraction", "float", "samples with det(dPsi_h/dz) <= 0 at their own point at some step"),
    Column("fold_step_fraction", "float", "(sample, step) pairs with det <= 0 at the sample"),
    Column("min_log_det", "float", "smallest log|det| of the train one-step maps at the samples"),
    Column("fold_near_fraction", "float", "samples at a fold of the map (own point or probe segment)"),
    Column("fold_segments", "float", "probe segments of the fold test"),
    Column("fold_probes", "float", "probe points carried through the train map"),
    Column("fold_segment_fraction", "float", "probe segments along which the train map folds"),
    Column("fold_map_first_step", "float", "first step (0-based) at which the map folds on the data"),
    Column("fold_map_steps", "float", "steps at which the map folds on the data"),
    Column("crossing_fraction", "float", "2-D states: sample pairs whose discrete trajectories cross"),
    Column("crossing_pairs", "float", "pairs checked for crossings"),
    Column("ref_fold_fraction", "float", "samples at which the reference flow folds (0: Liouville)"),
    Column("ref_min_log_det", "float", "smallest log det of the reference flow over a step (Liouville)"),
    Column("ref_crossing_fraction", "float", "crossing_fraction of the reference flow"),
    Column("flips", "float", "samples classified differently under train config and reference"),
    Column("flip_fraction", "float", "flips among the used samples"),
    Column("flip_fraction_high", "float", "one-sided 95% upper bound of the flip rate"),
    Column("flips_at_fold_share", "float", "flips at a fold of the map at their flip step"),
    Column("flips_at_fold_low", "float", "one-sided 95% lower bound of that share"),
    Column("flips_at_fold_high", "float", "one-sided 95% upper bound of that share"),
    Column("flips_with_fold_share", "float", "flipped samples at a fold of the map at any step"),
    Column("flips_concentrated_share", "float", "flips whose largest transported error is half the sum"),
    Column("flips_concentrated_high", "float", "one-sided 95% upper bound of that share"),
    Column("flip_time_median", "float", "median time at which a flipped sample's class first changes"),
    Column("accuracy_train", "float", "accuracy of the diagnosed samples, train configuration"),
    Column("accuracy_ref", "float", "accuracy of the diagnosed samples, reference"),
    Column("global_error_median", "float", "median ||z_N - z_ref(T)||"),
    Column("top1_share_median", "float", "median share of the global error carried by the largest term"),
    Column("cancellation_median", "float", "median ||global error|| / sum of term norms"),
    Column("cost_s", "float", "seconds the diagnosis took"),
    Column("cost_train_s", "float", "of which the train points"),
    Column("cost_fold_s", "float", "of which the fold test (samples and probes)"),
    Column("cost_ref_fold_s", "float", "of which the reference and its log det"),
    Column("cost_transport_s", "float", "of which the transport to the end time"),
)

# The distribution of the transported local errors over time, per model (contributions.csv).
CONTRIBUTIONS = (
    *CELL_COLUMNS,
    Column("t", "float", "middle of the time bin"),
    Column("share_q10", "float", "10% quantile over samples of a bin's share of the sum of term norms"),
    Column("share_median", "float", "median share"),
    Column("share_q90", "float", "90% quantile"),
    Column("flipped_share_median", "float", "median share among flipped samples"),
)

# 2-D states: transported points w_k of a few samples, for the fan figure (fan.csv).
FAN = (
    *CELL_COLUMNS,
    Column("sample", "int", "test sample"),
    Column("block", "int", "transport block k: w_k is the reference flow of z_k to the end time"),
    Column("t", "float", "time t_k of z_k"),
    Column("x", "float", "first coordinate of w_k"),
    Column("y", "float", "second coordinate of w_k"),
    Column("label", "int", "the sample's label"),
    Column("flipped", "bool", "the sample's class differs between train configuration and reference"),
)

# 2-D flows: log-density on the window, per (model, test solve), for the heat maps (density_grid.csv;
# written by robustbench_ode.studies.cnf_figures from the stored cells).
DENSITY_GRID = (
    *CELL_COLUMNS,
    Column("test_config", "str", "the solve: 'train' (the model's own), a solver and steps, or 'reference'"),
    Column("x", "float", "first coordinate of the grid cell's centre"),
    Column("y", "float", "second coordinate of the grid cell's centre"),
    Column("log_density", "float", "log p(x, y) under that solve (empty where it failed)"),
)

# 2-D flows: samples solved back from the base under a solve, and held-out data (samples.csv).
SAMPLES = (
    *CELL_COLUMNS,
    Column("sampler", "str", "'train' (the model's own solve), 'reference', or 'data' (held out)"),
    Column("x", "float", "first coordinate"),
    Column("y", "float", "second coordinate"),
)

# A training row's own columns: a cell's stored log (the cell columns are added in the suite's table).
LOG = TRAINING[len(CELL_COLUMNS):]

RESULT_NAMES = tuple(c.name for c in RESULTS)
TRAINING_NAMES = tuple(c.name for c in TRAINING)
LOG_NAMES = tuple(c.name for c in LOG)
DIAGNOSTIC_NAMES = tuple(c.name for c in DIAGNOSTICS[len(CELL_COLUMNS):])


def kinds(columns: tuple[Column, ...]) -> dict[str, Kind]:
    return {c.name: c.kind for c in columns}
