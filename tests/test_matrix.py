"""All-pairs matrices: every entry equals the pairwise measure; factorizations reused."""

from __future__ import annotations

import numpy as np
import pytest

import repscope
from repscope import InputError
from repscope.alignment.matrix import alignment_matrix
from repscope.alignment.methods import align


@pytest.fixture
def reps():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((60, 5))
    return {
        "a": base @ rng.standard_normal((5, 8)) + 0.1 * rng.standard_normal((60, 8)),
        "b": base @ rng.standard_normal((5, 6)) + 0.5 * rng.standard_normal((60, 6)),
        "c": rng.standard_normal((60, 4)),
    }


@pytest.mark.parametrize("method", ["cka", "cca", "svcca", "mutual-knn", "rsa", "pwcca"])
def test_entries_equal_pairwise_measure(reps, method):
    res = alignment_matrix(reps, method)
    names = list(reps)
    assert res.names == tuple(names)
    for i, ni in enumerate(names):
        for j, nj in enumerate(names):
            expected = align(reps[ni], reps[nj], method)["score"]
            assert res.scores[i, j] == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("method", ["cka", "cca", "mutual-knn", "rsa"])
def test_symmetric_with_unit_diagonal(reps, method):
    S = alignment_matrix(list(reps.values()), method).scores
    np.testing.assert_allclose(S, S.T)
    np.testing.assert_allclose(np.diag(S), 1.0, rtol=1e-10)
    assert S[0, 1] > S[0, 2]  # shared latent structure beats noise


def test_ridge_is_directional(reps):
    res = alignment_matrix(reps, "ridge")
    assert res.scores[0, 1] == pytest.approx(repscope.ridge_alignment(reps["a"], reps["b"]).score)
    assert res.scores[0, 1] != pytest.approx(res.scores[1, 0])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"a": np.ones((10, 2))}, r"1 representation\(s\) given"),
        (
            {"a": np.zeros((10, 2)) + np.arange(10)[:, None], "b": np.ones((9, 2))},
            r"different numbers of rows \(a: 10, b: 9\)",
        ),
    ],
)
def test_bad_input(bad, message):
    with pytest.raises(InputError, match=message):
        alignment_matrix(bad)
    with pytest.raises(InputError, match="method='nope' is not known"):
        alignment_matrix({"a": np.eye(5), "b": np.eye(5)}, "nope")
