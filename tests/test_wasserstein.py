"""Wasserstein-1: 1-D closed forms and SciPy oracle, translations, the n^(-1/d) rate, inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

from repscope import _backend
from repscope._validation import InputError, check_random_state
from repscope.generalization import wasserstein as ws
from repscope.generalization.wasserstein import (
    Wasserstein1,
    WassersteinConvergence,
    wasserstein1,
    wasserstein_convergence,
)

# Exact W1 is a sum of n_a·n_b products of plan weights and costs; the optimal value is
# found exactly by the network simplex, so a closed form or SciPy agrees up to summation
# order: ~1e-15 relative. 1e-9 leaves room and still catches any wrong coupling.
RTOL = 1e-9


def _sliced_factor(d: int) -> float:
    """E|θ_1| for θ uniform on S^(d-1): Γ(d/2) / (√π Γ((d+1)/2))."""
    return math.exp(gammaln(d / 2) - gammaln((d + 1) / 2)) / math.sqrt(math.pi)


# --------------------------------------------------------------------------- 1-D


def test_1d_equal_sizes_is_mean_sorted_gap():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.exponential(size=300)
    res = wasserstein1(a, b, method="exact")
    assert res.distance == pytest.approx(np.abs(np.sort(a) - np.sort(b)).mean(), rel=RTOL)
    assert (res.n_a, res.n_b, res.subsampled) == (300, 300, False)


def test_1d_unequal_sizes_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=137), rng.gamma(2.0, size=(211, 1))
    res = wasserstein1(a, b, method="exact")
    assert res.distance == pytest.approx(stats.wasserstein_distance(a, b.ravel()), rel=RTOL)


def test_1d_sliced_equals_exact():
    # in 1-D every direction is +1 or -1, and W1 is invariant under x -> -x
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(150, 1)), rng.uniform(size=(97, 1))
    exact = wasserstein1(a, b, method="exact").distance
    sliced = wasserstein1(a, b, method="sliced", n_projections=7)
    assert sliced.distance == pytest.approx(exact, rel=RTOL)
    assert sliced.n_projections == 7


def test_independent_1d_gaussians_give_the_shift():
    # |W1(μ_n, ν_n) − W1(μ, ν)| <= W1(μ_n, μ) + W1(ν_n, ν), and E W1(μ_n, μ) <=
    # J/√n with J = ∫ √(Φ(1−Φ)) dx = 1.6147 for N(0, 1) (Bobkov & Ledoux 2019, Thm 3.5).
    # Tolerance: 3 × that bound on the mean error, 0.068 at n = 20 000; seeds 0–99 give at
    # most 0.024. One direction suffices in 1-D (see above) and covers all 20 000 points.
    n, shift, J = 20_000, 0.5, 1.6147438534296696
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=n), rng.normal(shift, 1.0, size=n)
    res = wasserstein1(a, b, n_projections=1)
    assert res.method == "sliced" and res.n_a == n
    assert abs(res.distance - shift) <= 3 * 2 * J / math.sqrt(n)
    assert res.distance == pytest.approx(stats.wasserstein_distance(a, b), rel=RTOL)


# --------------------------------------------------------------------------- translations


@pytest.mark.parametrize("d", [2, 5, 10])
def test_translation_exact_is_shift_norm(d):
    # the translation coupling costs |δ|, and every coupling costs >= |E[B] − E[A]| = |δ|
    rng = np.random.default_rng(d)
    A = rng.normal(size=(300, d))
    delta = rng.normal(size=d)
    res = wasserstein1(A, A + delta, method="exact")
    assert res.distance == pytest.approx(np.linalg.norm(delta), rel=RTOL)


@pytest.mark.parametrize("d", [2, 5, 10])
def test_translation_sliced_closed_form(d):
    # Each projected 1-D W1 is exactly |<θ, δ>|, so the only error is the Monte-Carlo mean
    # over K directions: sd |δ|·sqrt(1/d − c_d²)/√K with c_d = E|θ_1|. Tolerance 4 sd
    # (two-sided miss probability ~6e-5).
    K = 2000
    rng = np.random.default_rng(10 + d)
    A = rng.normal(size=(200, d))
    delta = rng.normal(size=d)
    norm, c_d = np.linalg.norm(delta), _sliced_factor(d)
    res = wasserstein1(A, A + delta, method="sliced", n_projections=K, random_state=d)
    assert abs(res.distance - norm * c_d) <= 4 * norm * math.sqrt(1 / d - c_d**2) / math.sqrt(K)


def test_sliced_factor_closed_form():
    # c_2 = 2/π and c_5 = 3/8 (by hand), and c_d ~ sqrt(2/(πd)) for large d
    assert _sliced_factor(2) == pytest.approx(2 / math.pi, rel=1e-14)
    assert _sliced_factor(5) == pytest.approx(3 / 8, rel=1e-14)
    assert _sliced_factor(2000) == pytest.approx(math.sqrt(2 / (math.pi * 2000)), rel=1e-3)


def test_sliced_is_mean_of_scipy_1d_w1_and_below_exact(monkeypatch):
    # Oracle: POT's p=1 sliced distance is the mean over directions of the 1-D W1 of the
    # projections. The POT working-set cap is shrunk so the 23 directions run in chunks of
    # 3 (the last one short); chunking must not change which directions are used.
    rng = np.random.default_rng(4)
    A, B = rng.normal(size=(80, 6)), rng.standard_t(3, size=(55, 6)) + 0.3
    monkeypatch.setattr(ws, "_SLICED_CHUNK_BYTES", 3 * 135 * ws._SLICED_BYTES_PER_CELL)
    res = wasserstein1(A, B, method="sliced", n_projections=23, random_state=7)
    theta = ws._random_directions(6, 23, check_random_state(7))
    oracle = np.mean([stats.wasserstein_distance(A @ t, B @ t) for t in theta.T])
    assert res.distance == pytest.approx(oracle, rel=RTOL)
    # each projection is 1-Lipschitz, so on the same points sliced W1 <= W1
    assert res.distance <= wasserstein1(A, B, method="exact").distance


# --------------------------------------------------------------------------- symmetry


@pytest.mark.parametrize("method", ["exact", "sliced"])
def test_symmetric_and_zero_on_itself(method):
    rng = np.random.default_rng(5)
    A, B = rng.normal(size=(120, 4)), rng.normal(size=(90, 4)) * 2
    ab = wasserstein1(A, B, method=method).distance
    ba = wasserstein1(B, A, method=method).distance
    # the same LP transposed, or the same directions with the roles of the sides swapped
    assert ab == pytest.approx(ba, rel=1e-12)
    assert wasserstein1(A, A.copy(), method=method).distance == 0.0


# --------------------------------------------------------------------------- rate n^(-1/d)

# Calibration (uniform cubes, N = 4 000 points, sizes 100–1 000, 10 repeats, seeds 0–99):
# d = 3 slope -0.346 ± 0.012 (range -0.379 … -0.318), d = 4 slope -0.274 ± 0.006 (range
# -0.290 … -0.258). The slope is steeper than -1/d at these n (lower-order terms), and
# the two ranges do not overlap. Tolerance 0.06 around -1/d covers every seed 0–99 with a
# margin of >= 0.014; the order of the two slopes is asserted as well.
RATE_TOL = 0.06
RATE_SIZES = [100, 200, 400, 1000]


def _cube_slope(d: int, seed: int, rotate_into: int | None = None, n_repeats: int = 10):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(4000, d))
    if rotate_into is not None:
        Q, _ = np.linalg.qr(rng.normal(size=(rotate_into, d)))
        X = X @ Q.T
    return wasserstein_convergence(X, RATE_SIZES, n_repeats=n_repeats, random_state=seed)


def test_rate_follows_dimension():
    res3, res4 = _cube_slope(3, seed=0), _cube_slope(4, seed=0)
    assert isinstance(res3, WassersteinConvergence)
    assert res3.sizes.tolist() == RATE_SIZES and res3.distances.shape == (4,)
    assert np.all(np.diff(res3.distances) < 0)
    assert abs(res3.slope + 1 / 3) <= RATE_TOL
    assert abs(res4.slope + 1 / 4) <= RATE_TOL
    assert res3.slope < res4.slope
    assert res4.dimension == pytest.approx(-1 / res4.slope)


def test_rate_follows_intrinsic_not_ambient_dimension():
    # A rotation is an isometry: every distance, hence every W1, is unchanged up to rounding
    # (the permutations are the same for the same seed), so the slopes agree to ~1e-12.
    flat, embedded = _cube_slope(4, seed=1), _cube_slope(4, seed=1, rotate_into=20)
    assert embedded.slope == pytest.approx(flat.slope, abs=1e-9)
    assert abs(embedded.slope + 1 / 4) <= RATE_TOL
    # a full 20-d cube converges far more slowly (slope ≈ -0.07 ± 0.002 at these sizes)
    full = _cube_slope(20, seed=1, n_repeats=3)
    assert embedded.slope < full.slope - 0.15


def test_convergence_default_sizes_and_reproducible():
    X = np.random.default_rng(6).uniform(size=(450, 3))
    res = wasserstein_convergence(X, n_repeats=1, random_state=3)
    assert res.sizes[0] == 100 and res.sizes[-1] == 225 and len(res.sizes) == 6
    assert np.all(np.diff(res.sizes) > 0) and res.n_repeats == 1
    again = wasserstein_convergence(X, n_repeats=1, random_state=3)
    assert np.array_equal(res.distances, again.distances) and res.slope == again.slope


# --------------------------------------------------------------------------- subsampling, auto


def test_exact_subsample_reported_and_seeded():
    rng = np.random.default_rng(8)
    A, B = rng.normal(size=(60, 3)), rng.normal(size=(45, 3))
    res = wasserstein1(A, B, method="exact", max_exact=40, random_state=11)
    assert (res.n_a, res.n_b, res.subsampled, res.method) == (40, 40, True, "exact")
    assert res.n_projections is None
    partly = wasserstein1(A, B, method="exact", max_exact=50)
    assert (partly.n_a, partly.n_b, partly.subsampled) == (50, 45, True)
    assert wasserstein1(A, B, method="exact", max_exact=40, random_state=11) == res
    gen = wasserstein1(A, B, method="exact", max_exact=40, random_state=np.random.default_rng(11))
    assert gen == res
    assert wasserstein1(A, B, method="exact", max_exact=40, random_state=12) != res


def test_sliced_seeded_bitwise():
    rng = np.random.default_rng(9)
    A, B = rng.normal(size=(70, 5)), rng.normal(size=(50, 5))
    first = wasserstein1(A, B, method="sliced", n_projections=50, random_state=4)
    assert wasserstein1(A, B, method="sliced", n_projections=50, random_state=4) == first
    assert wasserstein1(A, B, method="sliced", n_projections=50, random_state=5) != first
    assert first == Wasserstein1(first.distance, "sliced", 70, 50, 50, False)


def test_auto_picks_by_size():
    rng = np.random.default_rng(10)
    A, B = rng.normal(size=(50, 2)), rng.normal(size=(30, 2))
    assert wasserstein1(A, B, max_exact=50).method == "exact"
    sliced = wasserstein1(A, B, max_exact=49, n_projections=20)
    assert (sliced.method, sliced.n_a, sliced.n_b, sliced.subsampled) == ("sliced", 50, 30, False)


def test_torch_tensors_accepted():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    A, B = rng.normal(size=(40, 3)), rng.normal(size=(30, 3))
    res = wasserstein1(torch.from_numpy(A).float(), torch.from_numpy(B).float())
    expected = wasserstein1(A.astype(np.float32), B.astype(np.float32))
    assert res == expected


# --------------------------------------------------------------------------- bad input

_OK = np.zeros((5, 3))
_NAN = np.where(np.eye(5, 3) > 0, np.nan, 0.0)


@pytest.mark.parametrize(
    ("A", "B", "kwargs", "match"),
    [
        (_OK, np.zeros((5, 4)), {}, r"A has 3 features and B has 4; pass two embeddings"),
        (_NAN, _OK, {}, r"A contains NaN or infinite values in 3 of 5 rows"),
        (_OK, np.full((2, 3), np.inf), {}, r"B contains NaN or infinite values"),
        (np.empty((0, 3)), _OK, {}, r"A is empty \(shape \(0, 3\)\)"),
        (_OK, np.array([]), {}, r"B is empty \(shape \(0, 1\)\)"),
        (np.zeros((2, 2, 2)), _OK, {}, r"A must be 2-D \(n_samples, n_features\), got 3-D"),
        (_OK, _OK, {"method": "emd"}, r"method='emd' is unknown; pass 'auto', 'exact' or"),
        (_OK, _OK, {"max_exact": 0}, r"max_exact=0 is not a positive integer; pass e.g."),
        (_OK, _OK, {"n_projections": 0}, r"n_projections=0 is not a positive integer"),
        (_OK, _OK, {"n_projections": 2.5}, r"n_projections=2.5 is not a positive integer"),
        (_OK, _OK, {"max_exact": True}, r"max_exact=True is not a positive integer"),
        (_OK, _OK, {"random_state": "0"}, r"random_state='0' is not an int"),
    ],
)
def test_bad_input(A, B, kwargs, match):
    with pytest.raises(InputError, match=match):
        wasserstein1(A, B, **kwargs)


@pytest.mark.parametrize(
    ("X", "kwargs", "match"),
    [
        (np.zeros((199, 2)), {}, r"X has 199 rows; the default sizes need at least 200"),
        (np.zeros((300, 2)), {"sizes": [100]}, r"must be at least two distinct integers"),
        (np.zeros((300, 2)), {"sizes": [1, 50]}, r"must be at least two distinct integers >= 2"),
        (np.zeros((300, 2)), {"sizes": [10.0, 50.0]}, r"at least two distinct integers"),
        (np.zeros((300, 2)), {"sizes": [50, 151]}, r"size 151 needs 2 × 151 = 302 rows of X"),
        (np.zeros((300, 2)), {"sizes": [5, 10], "n_repeats": 0}, r"n_repeats=0 is not a"),
        (np.zeros((300, 2)), {"sizes": [5, 10]}, r"W1 = 0 between disjoint samples of size 5"),
        (np.ones((300, 2, 1)), {}, r"X must be 2-D"),
    ],
)
def test_convergence_bad_input(X, kwargs, match):
    with pytest.raises(InputError, match=match):
        wasserstein_convergence(X, **kwargs)


def test_memory_refused_before_the_cost_matrix(monkeypatch):
    monkeypatch.setattr(_backend, "available_memory", lambda device: 10_000)
    A = np.zeros((100, 2))
    with pytest.raises(InputError, match=r"exact W1 on 100×100 points needs .* pass a smaller"):
        wasserstein1(A, A, method="exact")
    with pytest.raises(InputError, match=r"sliced W1 on 100\+100 points needs"):
        wasserstein1(A, A, method="sliced")


@pytest.mark.filterwarnings("ignore:numItermax reached")
def test_solver_stopped_early_raises(monkeypatch):
    # POT itself only warns and returns a too-large value; here it must raise instead
    monkeypatch.setattr(ws, "_MAX_ITER", 10)
    rng = np.random.default_rng(13)
    with pytest.raises(RuntimeError, match="without an optimal plan"):
        wasserstein1(rng.normal(size=(200, 3)), rng.normal(size=(200, 3)), method="exact")
