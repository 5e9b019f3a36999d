"""The high-level API: local_dimension, LocalDimension, preprocessing.

References are independent of the kNN engine: scipy/scikit-learn neighbours, scikit-dimension,
scikit-learn's PCA. Tolerances are stated at each assertion.
"""

from __future__ import annotations

import numpy as np
import pytest
import skdim
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

import repscope
from repscope import InputError, LocalDimension, local_dimension
from repscope.dimension.local import pointwise_dimension
from repscope.preprocessing import drop_duplicates, pca_reduce


def cube(n: int, d: int, D: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rot, _ = np.linalg.qr(rng.standard_normal((D, d)))
    return rng.uniform(size=(n, d)) @ rot.T


def test_profile_equals_estimators_on_reference_knn():
    X = cube(1500, 4, 20)
    ks = [5, 10, 50]
    res = local_dimension(X, k=ks, pca=None)
    dist, _ = NearestNeighbors(n_neighbors=50, algorithm="brute").fit(X).kneighbors()
    expected = pointwise_dimension("mle", dist, ks)
    np.testing.assert_allclose(res.pointwise, expected, rtol=1e-9)  # distances agree to ~1e-12
    for j, k in enumerate(ks):
        assert res.profile[k] == pytest.approx(expected[:, j].mean(), rel=1e-12)


def test_skdim_global_mle_is_harmonic_aggregate():
    X = cube(2000, 6, 30, seed=1)
    ours = local_dimension(X, k=20, aggregate="harmonic", pca=None).profile[20]
    theirs = skdim.id.MLE().fit(X, n_neighbors=20).dimension_
    assert ours == pytest.approx(theirs, rel=1e-6)


@pytest.mark.parametrize(("d", "band"), [(2, 0.1), (5, 0.1), (10, 0.2)])
def test_known_dimension(d, band):
    # Levina-Bickel at K=20 on 3000 uniform points; negative bias grows with d (edge effects)
    res = local_dimension(cube(3000, d, 50, seed=d), k=20)
    assert abs(res.profile[20] - d) <= band * d


def test_pca_default_and_skip():
    X = cube(800, 3, 400, seed=2)
    full = local_dimension(X, k=10)
    assert full.pca == 300
    skipped = local_dimension(X, k=10, pca=None)
    assert skipped.pca is None
    # 3-d data: the top 300 PCs keep every distance, so the two agree to rounding
    np.testing.assert_allclose(full.pointwise, skipped.pointwise, rtol=1e-8)


def test_pca_matches_sklearn():
    X = np.random.default_rng(3).standard_normal((300, 40)) @ np.diag(np.linspace(3, 0.1, 40))
    ours = pca_reduce(X, 10)
    ref = PCA(10, svd_solver="full").fit(X)
    theirs = ref.transform(X)
    signs = np.sign((ours.scores * theirs).sum(0))
    np.testing.assert_allclose(ours.scores, theirs * signs, atol=1e-10)
    assert ours.explained_variance_ratio == pytest.approx(ref.explained_variance_ratio_.sum())


def test_duplicates_dropped_counted_or_raised():
    X = cube(500, 3, 10, seed=4)
    Xd = np.vstack([X, X[:7], -0.0 * X[:1] + X[:1]])
    res = local_dimension(Xd, k=10, pca=None)
    assert res.duplicates_dropped == 8 and res.n_points == 500 and res.n_samples == 508
    np.testing.assert_array_equal(res.kept, np.arange(500))
    assert np.isfinite(res.pointwise).all()
    with pytest.raises(InputError, match="8 duplicate rows"):
        local_dimension(Xd, k=10, duplicates="raise")
    _, kept = drop_duplicates(np.array([[1.0, 0.0], [1.0, -0.0], [2.0, 1.0]]))
    np.testing.assert_array_equal(kept, [0, 2])


def test_duplicates_created_by_pca_are_dropped():
    X = cube(200, 2, 2, seed=5)
    extra = np.zeros((200, 1))
    extra[:100] = 1e-3  # points differing only in a dropped direction
    X3 = np.vstack([np.hstack([X, np.zeros((200, 1))]), np.hstack([X, extra])[:100]])
    X3[200:, 2] = 1e-9
    res = local_dimension(X3, k=5, pca=2)
    assert res.duplicates_dropped > 0
    assert np.isfinite(res.pointwise).all()


def test_default_scales_capped():
    res = local_dimension(cube(120, 3, 6), pca=None)
    assert res.k == (5, 10, 20, 50, 100)
    res = local_dimension(cube(1200, 3, 6), pca=None)
    assert res.k == (5, 10, 20, 50, 100, 200, 500, 1000)


@pytest.mark.parametrize(
    ("X", "kwargs", "match"),
    [
        (np.ones((10, 3)), {}, "all 10 rows of X are identical"),
        (cube(50, 2, 3), {"k": 60}, "k=60 must be < the number of distinct points n_distinct=50"),
        (cube(50, 2, 3), {"estimator": "knn"}, "estimator='knn' is not known"),
        (cube(50, 2, 3), {"aggregate": "max"}, "aggregate='max' is not known"),
        (cube(50, 2, 3), {"pca": 0}, "pca=0 must be >= 1"),
        (cube(50, 2, 3), {"duplicates": "keep"}, "duplicates='keep' is not known"),
        (np.zeros((0, 3)), {}, "X is empty"),
        (np.zeros(5), {}, "must be 2-D"),
    ],
)
def test_bad_input(X, kwargs, match):
    with pytest.raises(InputError, match=match):
        local_dimension(X, **kwargs)


def test_bootstrap_ci_brackets_the_aggregate():
    res = local_dimension(cube(800, 3, 8), k=[10, 20], n_bootstrap=300, random_state=1)
    for k in (10, 20):
        lo, hi = res.ci[k]
        assert lo < res.profile[k] < hi
    again = local_dimension(cube(800, 3, 8), k=[10, 20], n_bootstrap=300, random_state=1)
    assert again.ci == res.ci  # seeded
    assert "ci_low" in res.to_dict()["profile"][0]


def test_every_estimator_runs_through_the_api():
    X = cube(600, 3, 10, seed=6)
    for est in repscope.ESTIMATORS:
        res = local_dimension(X, k=[10, 20], estimator=est, pca=None)
        assert all(1.5 < v < 5 for v in res.profile.values()), (est, res.profile)


def test_sklearn_estimator_contract():
    est = LocalDimension(k=[10, 20], pca=None)
    assert clone(est).get_params() == est.get_params()
    X = cube(700, 3, 10, seed=7)
    assert est.fit(X) is est
    assert est.profile_ == local_dimension(X, k=[10, 20], pca=None).profile
    new = cube(30, 3, 10, seed=70)
    out = est.transform(new)
    assert out.shape == (30, 2) and np.isfinite(out).all()
    # transform of new points = MLE on their neighbours among the fitted points
    dist, _ = NearestNeighbors(n_neighbors=20).fit(X).kneighbors(new)
    np.testing.assert_allclose(out, pointwise_dimension("mle", dist, [10, 20]), rtol=1e-9)
    with pytest.raises(InputError, match="not fitted"):
        LocalDimension().transform(X)
    with pytest.raises(InputError, match="coincide with fitted points"):
        est.transform(X[:3])


def test_torch_input():
    torch = pytest.importorskip("torch")
    X = cube(300, 2, 5)
    a = local_dimension(torch.from_numpy(X), k=10).profile
    assert a == local_dimension(X, k=10).profile


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3))
def test_invariances(seed, scale, shift):
    # rotation, translation, uniform scaling leave pointwise LID unchanged (1e-6 relative:
    # the transformed coordinates are rounded); a row permutation permutes it
    rng = np.random.default_rng(seed)
    X = cube(300, 3, 6, seed=seed)
    base = local_dimension(X, k=[5, 15], pca=None).pointwise
    rot, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    moved = local_dimension(scale * X @ rot + shift, k=[5, 15], pca=None).pointwise
    np.testing.assert_allclose(moved, base, rtol=1e-6)
    perm = rng.permutation(300)
    permuted = local_dimension(X[perm], k=[5, 15], pca=None).pointwise
    np.testing.assert_allclose(permuted, base[perm], rtol=1e-12)
