"""Comparison plots are drawn exactly when the training log has something to compare."""

import pandas as pd

from robustbench_ode.outputs.figures import training as comparison_plots


def _log(**cols) -> pd.DataFrame:
    rows = []
    for training in ("autograd", "adjoint"):
        for steps in (2, 8):
            for it in range(3):
                rows.append({"dataset": "sphere2", "model": "node", "training": training, "seed": 0,
                             "train_steps": steps, "train_tol": None, "iteration": it, "nfe": steps,
                             "nfe_backward": 0 if training == "autograd" else steps,
                             "saved_mb": 0.1 * steps if training == "autograd" else 0.01, **cols})
    return pd.DataFrame(rows)


def test_gradient_cost_needs_two_step_counts(tmp_path):
    assert comparison_plots.gradient_cost(_log(), tmp_path / "g.png").is_file()
    one = _log()
    one = one[one["train_steps"] == 2]
    assert comparison_plots.gradient_cost(one, tmp_path / "h.png") is None
    assert comparison_plots.gradient_cost(_log().drop(columns="saved_mb"), tmp_path / "i.png") is None


def test_nfe_over_training_needs_adaptive_cells_and_variants(tmp_path):
    log = _log().assign(train_steps=None, train_tol=1e-3)
    log["model"] = ["node" if i % 2 else "anode" for i in range(len(log))]
    assert comparison_plots.nfe_over_training(log, tmp_path / "n.png").is_file()
    assert comparison_plots.nfe_over_training(_log(), tmp_path / "m.png") is None  # no adaptive cell
    single = log.assign(model="node", training="default")
    assert comparison_plots.nfe_over_training(single, tmp_path / "o.png") is None  # nothing to compare
