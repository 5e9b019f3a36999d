"""Permutation nulls: the fast (precomputed-matrix) paths equal recomputation exactly."""

from __future__ import annotations

import numpy as np
import pytest

import repscope
from repscope import InputError
from repscope.alignment.null import permutation_null


@pytest.fixture
def aligned():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 6))
    return X, X @ rng.standard_normal((6, 5)) + 0.3 * rng.standard_normal((50, 5))


@pytest.mark.parametrize(
    ("method", "kwargs", "reference"),
    [
        ("cka", {}, lambda X, Y: repscope.linear_cka(X, Y)),
        ("cka-rbf", {}, lambda X, Y: repscope.rbf_cka(X, Y)),
        ("rsa", {}, lambda X, Y: repscope.rsa(X, Y)),
        (
            "rsa",
            {"compare": "pearson", "rdm": "euclidean"},
            lambda X, Y: repscope.rsa(X, Y, rdm="euclidean", compare="pearson"),
        ),
    ],
)
def test_fast_path_equals_recomputation(aligned, method, kwargs, reference):
    X, Y = aligned
    res = permutation_null(X, Y, method, n_permutations=20, random_state=3, **kwargs)
    assert res.score == pytest.approx(reference(X, Y), rel=1e-10)
    rng = np.random.default_rng(3)  # the same permutations, recomputed from features
    expected = [reference(X, Y[rng.permutation(50)]) for _ in range(20)]
    np.testing.assert_allclose(res.null, expected, rtol=1e-9, atol=1e-12)


def test_generic_path_and_distance_direction(aligned):
    X, Y = aligned
    res = permutation_null(X, Y, "procrustes", n_permutations=30, random_state=0)
    assert res.score == pytest.approx(repscope.procrustes_distance(X, Y))
    assert res.score < res.null.min()  # aligned data: smaller distance than every shuffle
    assert res.p_value == pytest.approx(1 / 31)
    res = permutation_null(X, Y, "mutual-knn", n_permutations=10, k=5)
    assert res.score == repscope.mutual_knn(X, Y, k=5).score


def test_calibration(aligned):
    X, Y = aligned
    res = permutation_null(X, Y, "cka", n_permutations=199)
    assert res.p_value == pytest.approx(1 / 200) and res.excess > 0.3
    # independent data: p-values spread over (0, 1]; their mean is near 1/2
    rng = np.random.default_rng(5)
    ps = [
        permutation_null(
            rng.standard_normal((40, 4)),
            rng.standard_normal((40, 3)),
            "cka",
            n_permutations=99,
            random_state=i,
        ).p_value
        for i in range(60)
    ]
    assert 0.35 < float(np.mean(ps)) < 0.65
    assert min(ps) < 0.2 and max(ps) > 0.8


def test_seeded(aligned):
    X, Y = aligned
    a = permutation_null(X, Y, "rsa", n_permutations=15, random_state=7)
    b = permutation_null(X, Y, "rsa", n_permutations=15, random_state=7)
    np.testing.assert_array_equal(a.null, b.null)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "nope"}, "method='nope' is not known"),
        ({"n_permutations": 0}, "n_permutations=0 must be >= 1"),
        ({"n_permutations": 2.5}, "not an integer"),
    ],
)
def test_bad_input(aligned, kwargs, message):
    X, Y = aligned
    with pytest.raises(InputError, match=message):
        permutation_null(X, Y, **kwargs)
