"""Property-based: every malformed suite gives exit code 2 and one line on stderr, never a traceback.

Each example starts from a valid suite and breaks it in one way that must be rejected: a wrong
type, an unknown key, a missing required key, an empty grid, a zero/negative or absurd number, an
unknown name, or a file that is not a YAML mapping. In-process through ``cli.main`` (fast).
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustbench_ode import cli
from robustbench_ode.datasets.catalog import DATASETS
from robustbench_ode.models.catalog import MODELS
from robustbench_ode.solvers.catalog import SOLVERS

VALID = {
    "name": "prop",
    "dataset": {"name": "sphere2", "n_train": 64, "n_test": 32},
    "model": {"name": "ott_conv1d", "width": 4},
    "training": {"iterations": 5, "batch_size": 16, "lr": 0.01},
    "train": {"seeds": [0, 1], "grid": [{"solver": "euler", "steps": [2, 4]},
                                        {"solver": "dopri5", "tol": [0.01]}]},
    "test": [{"solver": "euler", "step_factors": [0.5, 1]}, {"solver": "rk4", "steps": [4]},
             {"solver": "dopri5", "tol": [0.001]}],
}

# (path, kind of value it holds). Paths index into VALID.
INT_PATHS = [("dataset", "n_train"), ("dataset", "n_test"), ("model", "width"),
             ("training", "iterations"), ("training", "batch_size"), ("training", "max_steps"),
             ("training", "eval_batch_size"), ("training", "checkpoint_every"),
             ("train", "grid", 0, "steps", 0), ("test", 1, "steps", 0)]
POS_FLOAT_PATHS = [("training", "lr"), ("train", "grid", 1, "tol", 0), ("test", 2, "tol", 0),
                   ("test", 0, "step_factors", 0)]
STR_PATHS = [("name",), ("dataset", "name"), ("model", "name"), ("train", "grid", 0, "solver"),
             ("test", 0, "solver")]
LIST_PATHS = [("train", "seeds"), ("train", "grid"), ("test",), ("train", "grid", 0, "steps"),
              ("train", "grid", 1, "tol"), ("test", 1, "steps"), ("test", 0, "step_factors")]
MAP_PATHS = [(), ("dataset",), ("model",), ("training",), ("train",), ("train", "grid", 0), ("test", 1)]
REQUIRED = [("name",), ("dataset",), ("model",), ("train",), ("test",), ("dataset", "name"),
            ("model", "name"), ("train", "grid"), ("train", "grid", 0, "solver"), ("test", 0, "solver")]
ALL_PATHS = INT_PATHS + POS_FLOAT_PATHS + STR_PATHS + LIST_PATHS


def _set(doc, path, value):
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def _del(doc, path):
    node = doc
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


# every registered name (a drawn "unknown" name must not be one: rk4_38 was drawn once)
REGISTERED = set(SOLVERS) | set(DATASETS) | set(MODELS)
names = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
not_a_number = st.one_of(names.filter(lambda s: not _numeric(s)), st.lists(st.integers(), max_size=2),
                         st.dictionaries(names, st.integers(), min_size=1, max_size=2))
not_a_list = st.one_of(st.integers(), names, st.dictionaries(names, st.integers(), min_size=1, max_size=2))
not_a_map = st.one_of(st.integers(), names, st.lists(st.integers(), max_size=3), st.none())


def _numeric(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return s.lower() in ("true", "false", "yes", "no", "on", "off", "null", "~")


@st.composite
def malformed(draw):
    """A YAML text that must be rejected."""
    doc = copy.deepcopy(VALID)
    kind = draw(st.sampled_from(["wrong_type", "unknown_key", "missing", "empty", "non_positive",
                                 "absurd", "unknown_name", "not_a_mapping", "not_yaml"]))
    if kind == "wrong_type":
        path = draw(st.sampled_from(ALL_PATHS + MAP_PATHS[1:]))
        if path in INT_PATHS:
            value = draw(st.one_of(not_a_number, st.floats(0.1, 1e3).filter(lambda f: f != int(f))))
        elif path in POS_FLOAT_PATHS:
            value = draw(not_a_number)
        elif path in STR_PATHS:
            value = draw(st.one_of(st.integers(), st.lists(st.integers(), min_size=1, max_size=2),
                                   st.none()))
        elif path in LIST_PATHS:
            value = draw(not_a_list)
        else:
            value = draw(not_a_map)
        _set(doc, path, value)
    elif kind == "unknown_key":
        where = draw(st.sampled_from(MAP_PATHS))
        node = _get(doc, where)
        key = draw(names.filter(lambda k: k not in node and k not in ("data_seed",)))
        node[key] = draw(st.one_of(st.integers(), names))
    elif kind == "missing":
        _del(doc, draw(st.sampled_from(REQUIRED)))
    elif kind == "empty":
        _set(doc, draw(st.sampled_from(LIST_PATHS)), [])
    elif kind == "non_positive":
        path = draw(st.sampled_from([p for p in INT_PATHS + POS_FLOAT_PATHS
                                     if p != ("training", "checkpoint_every")]))
        _set(doc, path, draw(st.one_of(st.integers(-10**9, 0), st.floats(-1e9, 0.0))))
    elif kind == "absurd" and draw(st.booleans()):  # a grid product beyond MAX_CELLS / MAX_TESTS
        n = draw(st.integers(101, 150))
        if draw(st.booleans()):
            _set(doc, ("train", "seeds"), list(range(n)))
            _set(doc, ("train", "grid", 0, "steps"), list(range(1, n + 1)))
        else:
            _set(doc, ("test", 1, "steps"), list(range(1, 1_000 + n)))
    elif kind == "absurd":
        path = draw(st.sampled_from(INT_PATHS + [("training", "lr"), ("train", "seeds", 0)]))
        _set(doc, path, draw(st.integers(10**12, 10**30)))
    elif kind == "unknown_name":
        path = draw(st.sampled_from(STR_PATHS[1:]))
        _set(doc, path, draw(names.filter(lambda s: s not in REGISTERED)))
    elif kind == "not_a_mapping":
        return yaml.safe_dump(draw(not_a_map))
    else:
        return draw(st.sampled_from(["name: [unclosed", "a: b: c", "\tname: x", "{", "key: 'open",
                                     "- a\nb: c"]))
    return yaml.safe_dump(doc)


SEEN = []


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=malformed())
def test_malformed_suite_exits_2_with_one_line(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.yaml"
        path.write_text(text)
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = cli.main(["validate", str(path)])
    message = err.getvalue()
    assert code == 2, f"accepted:\n{text}\nstdout: {out.getvalue()}"
    assert "Traceback" not in message
    assert message.count("\n") == 1 and message.startswith("robustbench-ode: error: "), message
    SEEN.append(text)


def test_hypothesis_ran_enough_examples():
    # runs after the property test in file order: the acceptance asks for >= 500 generated suites
    if not SEEN:
        test_malformed_suite_exits_2_with_one_line()
    assert len(SEEN) >= 500


def test_valid_base_suite_is_accepted(tmp_path, capsys):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(VALID))
    assert cli.main(["validate", str(path)]) == 0
