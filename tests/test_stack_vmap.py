"""Seed stacking for every model family (issue 31): S seeds trained as one stack (the field's
own stacked form, else torch.vmap of the model's forward, training/forward.py) equal the seeds
trained one by one, losses and weights, for every registered family that declares itself
stackable; a family declared not stackable really fails under vmap. Parametrized over the
registry, so a new family fails here until it has a case."""

from __future__ import annotations

import pytest
import torch
from test_arithmetic import CASES

from robustbench_ode.config import DatasetConfig, ModelConfig, TrainingConfig
from robustbench_ode.harness.build import build_model, load_data
from robustbench_ode.harness.cell import CellConfig
from robustbench_ode.harness.grouping import stack_key
from robustbench_ode.models import MODELS, SolveSpec
from robustbench_ode.models.stacked import can_stack
from robustbench_ode.models.vmapped import VmappedModel
from robustbench_ode.training.forward import StackedForward
from robustbench_ode.training.loop import Member, train, train_model


def seed_cells(name: str, n: int = 2, iterations: int = 4) -> list[CellConfig]:
    """n cells of the family's small case that differ only by seed (Euler: every family trains so)."""
    dataset, data_params, params = CASES[name]
    params = {k: v for k, v in params.items() if k != "fast"}  # the speed switch on: planning stacks
    steps = params.get("blocks", 3)
    training = TrainingConfig(iterations=iterations, batch_size=16, lr=0.01)
    return [CellConfig(dataset=DatasetConfig(name=dataset, **data_params),
                       model=ModelConfig(name=name, **params), training=training, solver="euler",
                       steps=steps, seed=s) for s in range(n)]


@pytest.mark.parametrize("name", MODELS.names())
def test_stacked_training_equals_seed_by_seed(name):
    if name not in CASES:
        pytest.fail(f"model {name!r} is registered but has no case in test_arithmetic.CASES")
    if not MODELS.meta(name).stackable:
        pytest.skip(f"{name} declares itself not stackable (checked below)")
    group = seed_cells(name)
    assert all(stack_key(c) == stack_key(group[0]) is not None for c in group)  # planning stacks them
    datas = [load_data(c) for c in group]
    models = [build_model(c, d) for c, d in zip(group, datas)]
    forward = StackedForward(models, "cpu")
    outcomes = train(forward, [Member(d, c.seed) for d, c in zip(datas, group)],
                     group[0].train_spec, group[0].training)
    for cell, data, outcome in zip(group, datas, outcomes):
        alone = build_model(cell, data)
        ref = train_model(alone, data, cell.train_spec, cell.training, seed=cell.seed)
        assert outcome.status is ref.status and len(outcome.log) == len(ref.log) == 4
        for a, b in zip(outcome.log, ref.log):
            assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        for k, v in alone.state_dict().items():
            assert torch.allclose(outcome.state_dict[k], v, atol=1e-5), (name, k)
    first, second = (o.state_dict for o in outcomes)
    assert any(not torch.equal(first[k], second[k]) for k in first)  # the seeds really differ


@pytest.mark.parametrize("name", MODELS.names())
def test_the_stackable_declaration_is_true(name):
    """A family declared stackable runs under vmap and equals its seeds' own forwards; one declared
    not stackable really fails under vmap (so the declaration is not a guess)."""
    group = seed_cells(name)
    datas = [load_data(c) for c in group]
    models = [build_model(c, d) for c, d in zip(group, datas)]
    x = torch.stack([d.prepare(d.x_train[:8]) for d in datas])
    spec = SolveSpec("euler", steps=group[0].steps)
    if not MODELS.meta(name).stackable:
        with pytest.raises(RuntimeError):
            VmappedModel(models)(x, spec)
        return
    out, stats, finite = VmappedModel(models)(x, spec)
    alone = [m(xi, spec) for m, xi in zip(models, x)]
    assert (stats.nfe, stats.steps) == (alone[0][1].nfe, alone[0][1].steps) and finite.all()
    for o, (r, _) in zip(out, alone):
        assert torch.allclose(o, r, atol=1e-5)


def test_the_matmul_form_is_kept_where_it_exists():
    """Conv1d and MLP fields keep their hand-written stacked form (faster); others take vmap."""
    for name, form in (("ott_conv1d", "StackedClassifier"), ("mlp", "StackedClassifier"),
                       ("ott_conv2d", "VmappedModel"), ("resnet", "VmappedModel")):
        group = seed_cells(name)
        models = [build_model(c, load_data(c)) for c in group]
        assert type(StackedForward(models, "cpu").stack).__name__ == form, name
        assert can_stack(models[0]) == (form == "StackedClassifier")


def test_a_vmap_stacked_group_runs_through_the_harness_as_its_cells_alone(monkeypatch):
    """run_cells trains a vmap-stacked group as one stack (its seeds then tested one by one) and
    hands back each cell's weights as the cell trained alone would have them."""
    from test_fast_paths import SUITE

    from robustbench_ode.config import parse_suite
    from robustbench_ode.harness import execution

    reference = parse_suite(SUITE).reference
    group = seed_cells("resnet_shared")
    forms = []
    real = execution.StackedForward
    monkeypatch.setattr(execution, "StackedForward",
                        lambda models, device: forms.append(real(models, device)) or forms[-1])
    stacked = execution.run_cells(group, [], reference)
    assert [(f.size, type(f.stack)) for f in forms] == [(2, VmappedModel)]  # really one vmap stack
    for cell, result in zip(group, stacked):
        (alone,) = execution.run_cells([cell], [], reference)
        assert result.record.status is alone.record.status
        for k, v in alone.record.weights.load().items():
            assert torch.allclose(result.record.weights.load()[k], v, atol=1e-5), k
