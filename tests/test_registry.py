import pytest

from robustbench_ode import DATASETS, MODELS, SOLVERS
from robustbench_ode.core.registry import Registry, UnknownNameError


def test_register_get_list_glob():
    reg = Registry("thing")
    reg.register("alpha", 1, "first")
    reg.register("alps", 2, "second")
    reg.register("beta", 3)
    assert reg.get("alps") == 2
    assert reg.names("al*") == ["alpha", "alps"]
    assert [e.description for e in reg.entries("a*")] == ["first", "second"]
    with pytest.raises(ValueError):
        reg.register("beta", 4)


def test_unknown_name_lists_valid_and_closest():
    reg = Registry("thing")
    for name in ("dopri5", "euler", "midpoint"):
        reg.register(name, name)
    with pytest.raises(UnknownNameError) as err:
        reg.get("dopri4")
    msg = str(err.value)
    assert "did you mean 'dopri5'" in msg
    assert "valid: dopri5, euler, midpoint" in msg


@pytest.mark.parametrize("registry", [SOLVERS, MODELS, DATASETS], ids=lambda r: r.kind)
def test_every_entry_has_a_description(registry):
    assert len(registry) >= 3
    for entry in registry.entries():
        assert entry.description.strip(), entry.name


def test_required_solvers_registered():
    for name in ("euler", "midpoint", "heun", "rk4", "rk4_38", "adaptive_heun", "bosh3",
                 "fehlberg2", "dopri5", "dopri8"):
        assert name in SOLVERS
    assert not SOLVERS.get("rk4").adaptive and SOLVERS.get("dopri5").adaptive


@pytest.mark.parametrize("registry", [SOLVERS, MODELS, DATASETS], ids=lambda r: r.kind)
def test_every_entrys_metadata_pickles(registry):
    """Units of work carry their cells' registry metadata to spawned and Ray workers by pickling:
    a closure in an entry's metadata breaks every cell of that model on those executors."""
    import pickle

    for name in registry.names():
        meta = registry.meta(name)
        assert pickle.loads(pickle.dumps(meta)) == meta, name
