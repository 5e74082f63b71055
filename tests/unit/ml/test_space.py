"""space: the params syntax of algorithms, its errors and its grid."""

import optuna
import pytest

from mlkube.ml import errors, space


def test_parse_every_form():
    dims = space.parse(
        {
            "C": 1.0,
            "depth": [3, None],
            "n": {"int": [10, 20]},
            "s": {"uniform": [0.1, 0.9]},
            "lr": {"loguniform": [0.001, 1]},
            "weights": {"0": 1, "1": 5},
        },
        field="algorithms[0].params",
    )
    assert dims == {
        "C": space.Fixed(1.0),
        "depth": space.Choice((3, None)),
        "n": space.Range("int", 10, 20),
        "s": space.Range("uniform", 0.1, 0.9),
        "lr": space.Range("loguniform", 0.001, 1),
        "weights": space.Fixed({"0": 1, "1": 5}),
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"C": []}, r"algorithms\[0\].params.C: an empty list"),
        ({"C": {"loguniform": [0, 1]}}, r"params.C.loguniform: bounds must be positive"),
        ({"n": {"int": [5, 1]}}, r"params.n.int: low 5 is above high 1"),
        ({"n": {"int": [1.5, 3]}}, r"params.n.int: bounds must be integers"),
        ({"n": {"uniform": [1]}}, r"params.n.uniform: expected \[low, high\]"),
        ({"n": [[1, 2]]}, r"params.n: choice \[1, 2\] must be"),
    ],
)
def test_syntax_errors_name_the_field(params, message):
    with pytest.raises(errors.InvalidSpec, match=message):
        space.parse(params, field="algorithms[0].params")


def test_grid_discretises_ranges():
    dims = space.parse({"a": [1, 2], "n": {"int": [1, 3]}, "lr": {"loguniform": [0.01, 10]}, "k": "x"}, field="p")
    points = space.grid(dims, points=4)
    assert len(points) == 2 * 3 * 4
    assert sorted({p["lr"] for p in points}) == pytest.approx([0.01, 0.1, 1.0, 10.0])
    assert all(p["k"] == "x" for p in points)


def test_suggest_stays_inside_the_space():
    dims = space.parse({"n": {"int": [2, 4]}, "lr": {"loguniform": [0.01, 0.1]}, "c": ["a", "b"], "f": 7}, field="p")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        point = space.suggest(study.ask(), dims, prefix="rf")
        assert 2 <= point["n"] <= 4 and 0.01 <= point["lr"] <= 0.1 and point["c"] in "ab" and point["f"] == 7
