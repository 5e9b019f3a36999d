"""Tests for repscope.dimension.scales: hand-computed cases, oracles, invariances, errors."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist, pdist, squareform
from scipy.stats import ortho_group, pearsonr, spearmanr

from repscope._validation import InputError
from repscope.dimension.gromov import gromov_wasserstein_profile, neighbourhood_gw
from repscope.dimension.scales import (
    DimensionalStability,
    dimensional_stability,
    neighbourhood_jaccard,
    pointwise_rank_consistency,
    profile_distance,
)


def brute_knn(X: np.ndarray, k_max: int) -> np.ndarray:
    """Exact kNN by scipy cdist, self excluded, ties broken by the lower index."""
    d = cdist(X, X)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k_max].astype(np.int64)


def ring(n: int) -> np.ndarray:
    angle = 2 * np.pi * np.arange(n) / n
    return np.column_stack([np.cos(angle), np.sin(angle)])


# ---------------------------------------------------------------- dimensional_stability


def test_profile_linear_in_log_k_gives_its_slope_and_closed_form_cv() -> None:
    ks = [10, 20, 40, 80]
    s = dimensional_stability(ks, 5 + 2 * np.log(ks))
    assert s.slope == pytest.approx(2.0, rel=1e-12)
    assert s.slope_without_largest == pytest.approx(2.0, rel=1e-12)
    # ln K = ln 10 + j ln 2 for j = 0..3: population std of j is sqrt(5/4)
    expected_cv = 2 * math.log(2) * math.sqrt(1.25) / (5 + 2 * (math.log(10) + 1.5 * math.log(2)))
    assert s.cv == pytest.approx(expected_cv, rel=1e-12)


def test_jump_at_the_largest_scale_only_moves_the_full_slope() -> None:
    s = dimensional_stability([5, 10, 20, 50, 100], [8.0, 8.0, 8.0, 8.0, 20.0])
    assert s.slope > 0
    assert s.slope_without_largest == pytest.approx(0.0, abs=1e-12)


def test_flat_profile_is_perfectly_stable() -> None:
    s = dimensional_stability([5, 10, 20], [7.0, 7.0, 7.0])
    assert s == DimensionalStability(slope=0.0, slope_without_largest=0.0, cv=0.0)


def test_two_scales_give_nan_slope_without_largest() -> None:
    s = dimensional_stability([10, 20], [3.0, 4.0])
    assert s.slope == pytest.approx(1 / math.log(2), rel=1e-12)
    assert math.isnan(s.slope_without_largest)


def test_stability_ignores_the_order_of_scales() -> None:
    a = dimensional_stability([5, 10, 20, 50], [4.0, 6.0, 7.0, 12.0])
    b = dimensional_stability([50, 5, 20, 10], [12.0, 4.0, 7.0, 6.0])
    assert a == b


@pytest.mark.parametrize(
    ("ks", "values", "match"),
    [
        ([10], [3.0], "has 1 scale"),
        ([10, 10], [3.0, 4.0], "repeats a scale"),
        ([0, 10], [3.0, 4.0], "positive integers"),
        ([5.0, 10.0], [3.0, 4.0], "sequence of integers"),
        ([5, 10, 20], [3.0, 4.0], "one value per K"),
        ([5, 10], [3.0, np.nan], "NaN or infinite"),
        ([5, 10], [-3.0, 1.0], "positive mean"),
    ],
)
def test_dimensional_stability_errors(ks: list, values: list, match: str) -> None:
    with pytest.raises(InputError, match=match):
        dimensional_stability(ks, values)


# ---------------------------------------------------------------- neighbourhood_jaccard


def test_jaccard_hand_computed_line() -> None:
    # points at 0, 1, 3, 7; K = 1, reverse 2-NN sets: {1,2}, {0,2,3}, {0,1,3}, {}
    indices = brute_knn(np.array([[0.0], [1.0], [3.0], [7.0]]), 2)
    np.testing.assert_array_equal(indices, [[1, 2], [0, 2], [1, 0], [2, 1]])
    expected = (1 / 2 + 1 / 3 + 1 / 3 + 0) / 4
    np.testing.assert_allclose(neighbourhood_jaccard(indices, [1]), [expected], rtol=1e-15)


def test_jaccard_on_a_regular_ring_is_one_half() -> None:
    # K even: N_K(x) is the K/2 points on each side, R_2K(x) the K on each side
    indices = brute_knn(ring(60), 12)
    np.testing.assert_allclose(neighbourhood_jaccard(indices, [2, 4, 6]), 0.5, rtol=1e-15)


def jaccard_by_sets(indices: np.ndarray, k: int) -> float:
    n = len(indices)
    reverse = [set() for _ in range(n)]
    for y in range(n):
        for x in indices[y, : 2 * k]:
            reverse[x].add(y)
    scores = []
    for x in range(n):
        near = set(indices[x, :k].tolist())
        scores.append(len(near & reverse[x]) / len(near | reverse[x]))
    return float(np.mean(scores))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jaccard_matches_the_set_definition(seed: int) -> None:
    X = np.random.default_rng(seed).normal(size=(70, 4))
    indices = brute_knn(X, 20)
    ks = [10, 1, 3, 7]
    expected = [jaccard_by_sets(indices, k) for k in ks]
    np.testing.assert_allclose(neighbourhood_jaccard(indices, ks), expected, rtol=1e-14)


def _corrupt(indices: np.ndarray, what: str) -> np.ndarray:
    bad = indices.copy()
    if what == "self":
        bad[3, 0] = 3
    elif what == "range":
        bad[3, 0] = len(bad)
    elif what == "repeat":
        bad[3, 1] = bad[3, 0]
    return bad


@pytest.mark.parametrize(
    ("what", "match"),
    [
        ("self", "own neighbour"),
        ("range", r"must lie in \[0, 19\]"),
        ("repeat", "repeats a neighbour"),
    ],
)
def test_jaccard_rejects_malformed_indices(what: str, match: str) -> None:
    indices = brute_knn(np.random.default_rng(0).normal(size=(20, 2)), 6)
    with pytest.raises(InputError, match=match):
        neighbourhood_jaccard(_corrupt(indices, what), [2])


def test_jaccard_rejects_scales_beyond_half_k_max() -> None:
    indices = brute_knn(np.random.default_rng(0).normal(size=(20, 2)), 6)
    with pytest.raises(InputError, match=r"ks=\[4\] need 2K neighbours but indices has k_max=6"):
        neighbourhood_jaccard(indices, [2, 4])
    with pytest.raises(InputError, match="integer neighbour indices"):
        neighbourhood_jaccard(indices.astype(float), [2])
    with pytest.raises(InputError, match="has shape"):
        neighbourhood_jaccard(indices[:, 0], [1])


# ---------------------------------------------------------------- pointwise_rank_consistency


def test_rank_consistency_equals_scipy_spearman() -> None:
    rng = np.random.default_rng(4)
    ks = [5, 10, 20, 50, 100]
    base = rng.normal(size=(200, 1))
    pointwise = 10 + base + 0.5 * rng.normal(size=(200, len(ks)))
    result = pointwise_rank_consistency(pointwise, ks)
    assert list(result) == [5, 10, 50]
    for k, j, j2 in [(5, 0, 1), (10, 1, 2), (50, 3, 4)]:
        expected = spearmanr(pointwise[:, j], pointwise[:, j2]).statistic
        assert result[k] == pytest.approx(expected, abs=1e-15)


def test_rank_consistency_follows_the_given_column_order() -> None:
    pointwise = np.array([[1.0, 9.0], [2.0, 8.0], [3.0, 7.0], [4.0, 1.0]])
    assert pointwise_rank_consistency(pointwise, [20, 10]) == {10: -1.0}


@pytest.mark.parametrize(
    ("pointwise", "ks", "match"),
    [
        (np.ones((5, 3)) + np.arange(5)[:, None], [5, 7, 9], "no pair"),
        (np.ones((5, 2)) + np.arange(5)[:, None], [5, 10, 20], "one column per K"),
        (
            np.column_stack([np.arange(5.0), np.ones(5)]),
            [5, 10],
            r"same for every point at K=\[10\]",
        ),
        (np.arange(4.0).reshape(2, 2), [5, 10], "at least 3"),
    ],
)
def test_rank_consistency_errors(pointwise: np.ndarray, ks: list, match: str) -> None:
    with pytest.raises(InputError, match=match):
        pointwise_rank_consistency(pointwise, ks)


# ---------------------------------------------------------------- Gromov-Wasserstein


def test_gw_of_a_neighbourhood_to_itself_is_zero() -> None:
    X = np.random.default_rng(5).normal(size=(40, 3))
    indices = brute_knn(X, 16)
    for x in range(5):
        points = X[np.concatenate(([x], indices[x, :8]))]
        assert neighbourhood_gw(points, points) == pytest.approx(0.0, abs=1e-12)


def test_gw_profile_matches_a_direct_pot_computation() -> None:
    X = np.random.default_rng(6).normal(size=(25, 3))
    indices = brute_knn(X, 8)

    def normalised(points: np.ndarray) -> np.ndarray:
        d = squareform(pdist(points))
        return d / d[np.triu_indices(len(points), 1)].mean()

    profile = gromov_wasserstein_profile(X, indices, [4, 2], n_samples=1000)
    assert list(profile) == [2, 4]
    for k, value in profile.items():
        direct = [
            ot.gromov.gromov_wasserstein2(
                normalised(X[np.r_[x, indices[x, :k]]]),
                normalised(X[np.r_[x, indices[x, : 2 * k]]]),
            )
            for x in range(len(X))
        ]
        assert value == pytest.approx(np.mean(direct), rel=1e-10)
        assert value > 0


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3))
def test_gw_profile_invariant_to_rotation_scale_and_translation(seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(30, 4))
    indices = brute_knn(X, 8)
    Y = scale * X @ ortho_group.rvs(4, random_state=seed) + rng.normal(size=4)
    a = gromov_wasserstein_profile(X, indices, [2, 4], n_samples=6, random_state=seed)
    b = gromov_wasserstein_profile(Y, indices, [2, 4], n_samples=6, random_state=seed)
    assert a.keys() == b.keys()
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-7, abs=1e-12)


def test_gw_profile_is_seeded() -> None:
    X = np.random.default_rng(7).normal(size=(60, 3))
    indices = brute_knn(X, 8)
    a = gromov_wasserstein_profile(X, indices, [4], n_samples=5, random_state=3)
    b = gromov_wasserstein_profile(X, indices, [4], n_samples=5, random_state=3)
    c = gromov_wasserstein_profile(X, indices, [4], n_samples=5, random_state=4)
    assert a == b
    assert a != c


def test_gw_profile_errors() -> None:
    X = np.random.default_rng(8).normal(size=(20, 3))
    indices = brute_knn(X, 6)
    with pytest.raises(InputError, match="indices has 19 rows but X has 20"):
        gromov_wasserstein_profile(X, brute_knn(X[:19], 6), [2])
    with pytest.raises(InputError, match="k_max=6"):
        gromov_wasserstein_profile(X, indices, [4])
    with pytest.raises(InputError, match="n_samples=0 must be a positive integer"):
        gromov_wasserstein_profile(X, indices, [2], n_samples=0)
    with pytest.raises(InputError, match="random_state"):
        gromov_wasserstein_profile(X, indices, [2], random_state="seed")  # type: ignore[arg-type]
    duplicates = np.repeat(X[:5], 4, axis=0)
    with pytest.raises(
        InputError, match=r"neighbourhood of point \d+ at K=1 has 2 coinciding points"
    ):
        gromov_wasserstein_profile(duplicates, brute_knn(duplicates, 2), [1])
    with pytest.raises(InputError, match="A has 3 coinciding points"):
        neighbourhood_gw(np.zeros((3, 2)), X)


# ---------------------------------------------------------------- profile_distance


def test_identical_profiles_have_distance_zero() -> None:
    ks, values = [5, 10, 20, 50], [10.0, 12.0, 13.0, 20.0]
    assert profile_distance(ks, values, ks, values) == 0.0


def test_affine_transformed_profile_has_distance_zero() -> None:
    ks, values = [5, 10, 20, 50], np.array([10.0, 12.0, 13.0, 20.0])
    assert profile_distance(ks, values, ks[::-1], (3.0 * values - 7.0)[::-1]) == pytest.approx(
        0.0, abs=1e-12
    )


def test_profile_distance_closed_form_over_common_scales() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=6), rng.normal(size=5)
    ks_a, ks_b = [5, 10, 20, 50, 100, 200], [10, 20, 50, 100, 1000]
    common_a, common_b = a[1:5], b[:4]
    r = pearsonr(common_a, common_b).statistic
    expected = math.sqrt(2 * 4 * (1 - r))  # z-scores with ddof=0 have squared norm m
    assert profile_distance(ks_a, a, ks_b, b) == pytest.approx(expected, rel=1e-12)
    assert profile_distance(ks_a, a, ks_b, -b) == pytest.approx(math.sqrt(8 * (1 + r)), rel=1e-12)


@pytest.mark.parametrize(
    ("ks_b", "values_b", "match"),
    [
        ([10, 30], [1.0, 2.0], r"share 1 scale\(s\) \[10\]"),
        ([10, 20], [1.0, 1.0], r"values_b is constant over the common K=\[10, 20\]"),
        ([10, 20], [1.0], "one value per K"),
    ],
)
def test_profile_distance_errors(ks_b: list, values_b: list, match: str) -> None:
    with pytest.raises(InputError, match=match):
        profile_distance([5, 10, 20], [1.0, 2.0, 4.0], ks_b, values_b)
