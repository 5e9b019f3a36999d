"""Tests for repscope.dimension.spectral: closed forms, an sklearn oracle, invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group
from sklearn.decomposition import PCA

from repscope._validation import InputError
from repscope.dimension.spectral import eigenvalues, spectrum


def planted(lam: np.ndarray, n_samples: int, n_features: int, seed: int = 0) -> np.ndarray:
    """Data whose covariance eigenvalues (ddof=1) are exactly `lam` (then zeros)."""
    rng = np.random.default_rng(seed)
    r = len(lam)
    centred = rng.normal(size=(n_samples, r))
    centred -= centred.mean(axis=0)
    U, _ = np.linalg.qr(centred)  # orthonormal columns, each orthogonal to the ones vector
    V = ortho_group.rvs(n_features, random_state=seed)[:, :r]
    return (U * np.sqrt((n_samples - 1) * lam)) @ V.T + rng.normal(size=n_features)


@pytest.mark.parametrize(("n_samples", "n_features"), [(200, 30), (25, 60)])
def test_eigenvalues_match_sklearn_pca(n_samples: int, n_features: int) -> None:
    X = np.random.default_rng(1).normal(size=(n_samples, n_features)) * np.linspace(
        0.1, 3.0, n_features
    )
    oracle = PCA(svd_solver="full").fit(X).explained_variance_
    ours = eigenvalues(X)
    assert ours.shape == (min(n_samples, n_features),)
    positive = oracle > 1e-12 * oracle[0]
    # both are float64 SVDs of the same centred matrix: agreement far below 1e-8
    np.testing.assert_allclose(ours[positive], oracle[positive], rtol=1e-8)
    assert np.all(ours[~positive] == 0.0)
    assert np.all(np.diff(ours) <= 0)


def test_rank_deficient_eigenvalues_are_exact_zeros() -> None:
    ours = eigenvalues(planted(np.ones(4), 50, 10))
    np.testing.assert_allclose(ours[:4], 1.0, rtol=1e-10)
    assert np.all(ours[4:] == 0.0)


def test_isotropic_gaussian_participation_ratio_close_to_dimension() -> None:
    X = np.random.default_rng(2).normal(size=(20_000, 10))
    s = spectrum(X)
    # sample-covariance PR of an isotropic Gaussian is about D / (1 + D/n): within 1 %
    assert s.participation_ratio == pytest.approx(10, rel=0.01)
    assert s.effective_rank == pytest.approx(10, rel=0.01)
    assert s.pca90 == 9 and s.pca95 == 10
    assert s.n_samples == 20_000 and s.n_features == 10


@pytest.mark.parametrize(
    "k", [pytest.param(1, marks=pytest.mark.filterwarnings("ignore:only 1 positive")), 7, 10, 20]
)
def test_k_equal_eigenvalues_closed_forms(k: int) -> None:
    s = spectrum(planted(np.full(k, 2.5), n_samples=120, n_features=40, seed=k))
    assert np.count_nonzero(s.eigenvalues) == k
    np.testing.assert_allclose(s.eigenvalues[:k], 2.5, rtol=1e-10)
    assert s.participation_ratio == pytest.approx(k, rel=1e-10)
    assert s.effective_rank == pytest.approx(k, rel=1e-10)
    assert s.pca90 == math.ceil(0.9 * k)
    assert s.pca95 == math.ceil(0.95 * k)


def test_participation_ratio_and_effective_rank_closed_form() -> None:
    lam = np.array([4.0, 1.0, 1.0])
    s = spectrum(planted(lam, 60, 5))
    assert s.participation_ratio == pytest.approx(36 / 18, rel=1e-10)
    p = np.sqrt(lam) / np.sqrt(lam).sum()
    assert s.effective_rank == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-10)
    assert s.pca90 == 3  # 4/6 and 5/6 are below 90 %
    assert s.alpha_range == (1, 3)  # fewer than 40 positive eigenvalues: whole spectrum


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.7])
def test_planted_power_law_is_recovered(alpha: float) -> None:
    lam = np.arange(1, 201, dtype=float) ** -alpha
    s = spectrum(planted(lam, n_samples=400, n_features=250))
    assert s.alpha_range == (11, 100)  # default: 11 .. min(500, 200 // 2)
    assert s.alpha == pytest.approx(alpha, abs=1e-8)
    full = spectrum(planted(lam, n_samples=400, n_features=250), alpha_range=(1, 200))
    assert full.alpha == pytest.approx(alpha, abs=1e-8)
    assert full.alpha_range == (1, 200)


def test_power_law_fit_uses_only_the_stated_range() -> None:
    lam = np.arange(1, 61, dtype=float) ** -1.0
    lam[:10] *= 50.0  # leading outliers the default range skips
    s = spectrum(planted(lam, n_samples=100, n_features=80))
    assert s.alpha_range == (11, 30)
    assert s.alpha == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize(("n_positive", "expected"), [(2, (1, 2)), (39, (1, 39)), (40, (11, 20))])
def test_default_alpha_range_for_small_rank(n_positive: int, expected: tuple[int, int]) -> None:
    lam = np.arange(1, n_positive + 1, dtype=float) ** -1.2
    s = spectrum(planted(lam, n_samples=100, n_features=60))
    assert s.alpha_range == expected
    assert s.alpha == pytest.approx(1.2, abs=1e-8)


def test_rank_one_data_gives_nan_alpha_with_warning() -> None:
    X = np.outer(np.arange(10.0), [1.0, 2.0, -1.0])
    with pytest.warns(UserWarning, match="only 1 positive eigenvalue"):
        s = spectrum(X)
    assert math.isnan(s.alpha) and s.alpha_range == (1, 1)
    assert s.participation_ratio == pytest.approx(1.0)
    assert s.pca90 == 1


@pytest.mark.parametrize("value", [0.0, 0.1, 1e300])
def test_identical_rows_raise(value: float) -> None:
    X = np.full((3, 4), value)
    with pytest.raises(InputError, match="all 3 rows are identical"):
        spectrum(X)
    with pytest.raises(InputError, match="all 3 rows are identical"):
        eigenvalues(X)


@pytest.mark.parametrize(
    ("alpha_range", "match"),
    [
        ((11, 100), r"1 <= first < last <= 50"),
        ((0, 10), r"1 <= first < last"),
        ((5, 5), r"1 <= first < last"),
        ((1.0, 10), "not a pair of integers"),
        ((1, 2, 3), "not a pair of integers"),
        ("ab", "not a pair of integers"),
    ],
)
def test_bad_alpha_range_raises(alpha_range: object, match: str) -> None:
    X = np.random.default_rng(3).normal(size=(51, 60))
    with pytest.raises(InputError, match=match):
        spectrum(X, alpha_range=alpha_range)  # type: ignore[arg-type]


def test_invalid_embedding_raises() -> None:
    with pytest.raises(InputError, match="must be 2-D"):
        spectrum(np.ones(5))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(5, 40),
    n_features=st.integers(2, 12),
    shift=st.floats(-1e3, 1e3),
)
def test_invariant_to_rotation_and_translation(
    seed: int, n_samples: int, n_features: int, shift: float
) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * rng.uniform(0.2, 3.0, size=n_features)
    Q = ortho_group.rvs(n_features, random_state=seed % 2**32)
    Y = X @ Q + shift * rng.normal(size=n_features)
    a, b = spectrum(X, alpha_range=(1, 2)), spectrum(Y, alpha_range=(1, 2))
    top = a.eigenvalues[0]
    # translation by up to ~1e3 costs ~1e3 * eps relative digits in the centred data
    np.testing.assert_allclose(b.eigenvalues, a.eigenvalues, rtol=1e-7, atol=1e-9 * top)
    assert b.participation_ratio == pytest.approx(a.participation_ratio, rel=1e-7)
    assert b.effective_rank == pytest.approx(a.effective_rank, rel=1e-7)
    assert b.alpha == pytest.approx(a.alpha, rel=1e-6, abs=1e-6)
