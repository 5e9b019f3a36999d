"""Wasserstein-1 distance between embedding distributions, and its n^(-1/d) convergence.

The third paper's diagnostic (METHOD.md §6): the distance between train and test embedding
distributions, exact optimal transport on samples (POT's network simplex) or, for large n,
sliced W1 (seeded random directions); and the empirical convergence rate of W1 with the
sample size n, whose exponent -1/d names the dimension that governs generalization.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import cdist

from repscope import _memory
from repscope._validation import InputError, as_array, check_embedding, check_random_state

__all__ = ["Wasserstein1", "WassersteinConvergence", "wasserstein1", "wasserstein_convergence"]

_METHODS = ("auto", "exact", "sliced")
# The network simplex stops at optimality; the cap only guards against a run that never
# ends. Measured need (d = 64, intrinsic 8): < 3e4 pivots at n = 1 000, < 1e5 at 2 000,
# < 1e6 at 5 000, where POT's default of 1e5 returns a value 3 % too high with only a warning.
_MAX_ITER = 10**12
# Peak bytes per pair of points: the cost matrix (8) and, inside ot.emd2, the plan, the
# solver's copy of the costs, its flows and arc states (33; measured 824 MB at 5 000 × 5 000).
_EXACT_BYTES_PER_PAIR = 41
# Peak bytes of ot.sliced_wasserstein_distance per (point of A or B, direction): projections,
# full weight arrays, sort orders, sorted copies, cumulative weights and quantiles (measured
# 104.4 at n = 1 000, 5 000 and 20 000).
_SLICED_BYTES_PER_CELL = 104
# Directions per POT call are chunked to this working set, so memory stays bounded whatever
# n_projections (one call on 2 × 20 000 points and 1 000 directions peaks at 4.2 GB).
_SLICED_CHUNK_BYTES = 2e8
_DEFAULT_MIN_SIZE, _DEFAULT_MAX_SIZE, _DEFAULT_N_SIZES = 100, 2000, 6


@dataclass(frozen=True)
class Wasserstein1:
    """Result of :func:`wasserstein1`.

    Attributes
    ----------
    distance : float
        W1 (``"exact"``) or sliced W1 (``"sliced"``), Euclidean ground cost, in input units.
    method : str
        ``"exact"`` or ``"sliced"``: the method that ran (``"auto"`` resolved).
    n_a, n_b : int
        Points of A and B actually used (after any seeded subsample).
    n_projections : int or None
        Random directions averaged over (sliced only), else None.
    subsampled : bool
        True when exact OT ran on a seeded subsample of A or B.
    """

    distance: float
    method: str
    n_a: int
    n_b: int
    n_projections: int | None
    subsampled: bool


@dataclass(frozen=True)
class WassersteinConvergence:
    """Result of :func:`wasserstein_convergence`.

    Attributes
    ----------
    sizes : ndarray of shape (n_sizes,)
        Sample sizes n, ascending.
    distances : ndarray of shape (n_sizes,)
        Exact W1 between two disjoint seeded n-subsamples, mean over repeats, input units.
    slope : float
        OLS slope of log W1 against log n (dimensionless).
    dimension : float
        ``-1 / slope``, the dimension that the n^(-1/d) rate implies; ``inf`` when the
        slope is not negative (no convergence seen).
    n_repeats : int
        Pairs of subsamples averaged per size.
    """

    sizes: np.ndarray
    distances: np.ndarray
    slope: float
    dimension: float
    n_repeats: int


def wasserstein1(
    A: npt.ArrayLike,
    B: npt.ArrayLike,
    *,
    method: Literal["auto", "exact", "sliced"] = "auto",
    max_exact: int = 5000,
    n_projections: int = 1000,
    random_state: int | np.random.Generator | None = 0,
) -> Wasserstein1:
    """Wasserstein-1 distance between the empirical distributions of two point clouds.

    Each cloud carries uniform weights on its rows; the ground cost is the Euclidean
    distance. ``"exact"`` solves the optimal transport problem
    ``W1 = min_T Σ_ij T_ij |a_i − b_j|`` over couplings T of the two uniform measures with
    POT's network simplex (``ot.emd2``), on all points or, when a cloud has more than
    `max_exact` rows, on a seeded subsample of `max_exact` rows of it, drawn without
    replacement. ``"sliced"`` averages the 1-D W1 of the projections of all points onto
    `n_projections` random unit directions (uniform on the sphere, seeded).
    ``"auto"`` is exact when ``max(n_a, n_b) <= max_exact``, else sliced.

    Parameters
    ----------
    A : array-like of shape (n_a, n_features)
        NumPy array or torch tensor; a 1-D array is read as (n_a, 1).
    B : array-like of shape (n_b, n_features)
        Same number of features as `A`.
    method : {"auto", "exact", "sliced"}
        Which distance to compute (see above).
    max_exact : int
        Largest cloud solved exactly (>= 1); larger clouds are subsampled (``"exact"``) or
        sliced (``"auto"``).
    n_projections : int
        Random directions of the sliced distance (>= 1).
    random_state : int, numpy Generator or None
        Seed of the subsample and of the directions; the same seed gives the same result,
        bit for bit.

    Returns
    -------
    Wasserstein1
        ``distance`` in input units, with the method and the point counts actually used.

    Raises
    ------
    InputError
        Non-numeric, empty, NaN/inf or more-than-2-D input, different feature counts, an
        unknown method, ``max_exact`` or ``n_projections`` below 1, or too little memory.
    ImportError
        POT is not installed.
    RuntimeError
        The network simplex stopped without an optimal plan (never seen).

    Notes
    -----
    **Exact.** The cost matrix is built with ``scipy.spatial.distance.cdist``, not with
    ``ot.dist(metric="euclidean")``: POT expands ``|a|² + |b|² − 2a·b`` and takes the root,
    which turns a rounding error of 1e-16·|a|² into a distance of ~1e-8·|a| between
    coinciding points, so W1(A, A) would not be 0. Memory: ~41 bytes per pair of points
    (``n_a · n_b · 8`` for the matrix, 33 inside ``ot.emd2``), checked before the matrix
    is built. Time of ``ot.emd2`` alone, one core (``benchmarks/wasserstein.py``: 8-d
    Gaussian in R^64, n_a = n_b = n): 0.02 s at n = 500, 0.10 s at n = 1 000, 0.73 s at
    n = 2 000, 8.5 s at n = 5 000 (about n^2.7); sliced with 1 000 directions takes 0.2,
    0.4, 0.7 and 2.2 s. POT's default iteration cap (1e5) stops the solver early from
    about n = 2 000 on and returns a too-large value with only a warning; here the cap is
    effectively removed and a non-optimal exit raises. Between two samples of nearly one
    distribution, exact W1 is dominated by the sampling term ~n^(-1/d) (see
    :func:`wasserstein_convergence`): compare values only at equal n.

    **Sliced.** ``ot.sliced_wasserstein_distance(A, B, projections=Θ, p=1)`` returns
    ``(Σ_k W_1^1(θ_k#μ, θ_k#ν) / K)^(1/1)``, the mean over the K directions of the 1-D W1
    of the projections (for p = 1, POT's ``wasserstein_1d`` integrates
    ``|F_u⁻¹(q) − F_v⁻¹(q)|`` over the quantiles; checked against
    ``scipy.stats.wasserstein_distance`` in the tests). The directions are drawn here
    from `random_state` (normalised Gaussian vectors) and passed as ``projections``, in
    chunks of at most ~200 MB of POT working set: POT's own ``seed`` accepts no numpy
    Generator and reseeds POT's shared backend. Each projection is 1-Lipschitz, so on the
    same points sliced W1 <= W1; it is a different number, not an estimate of W1: for a
    translation by δ in d dimensions it is ``|δ| Γ(d/2) / (√π Γ((d+1)/2))`` (≈ |δ|·√(2/(πd))
    for large d), while W1 is ``|δ|``. In 1-D the directions are ±1 and both agree.

    References
    ----------
    Villani, C. (2009). Optimal Transport: Old and New, Ch. 6 (W1, Kantorovich duality).
    Bonneel, N., Rabin, J., Peyré, G., Pfister, H. (2015). Sliced and Radon Wasserstein
    barycenters of measures. J. Math. Imaging Vis. 51, 22–45 (sliced distance, eq. 3).
    Flamary, R. et al. (2021). POT: Python Optimal Transport. JMLR 22(78).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.random.default_rng(0).normal(size=(200, 3))
    >>> res = wasserstein1(A, A + [3.0, 4.0, 0.0])
    >>> res.method, round(res.distance, 9)
    ('exact', 5.0)
    >>> sliced = wasserstein1(A, A + [3.0, 4.0, 0.0], method="sliced", n_projections=100)
    >>> sliced.distance < res.distance
    True
    """
    A, B = _check_pair(A, B)
    max_exact = _check_count(max_exact, "max_exact", 5000)
    n_projections = _check_count(n_projections, "n_projections", 1000)
    method = _resolve_method(method, max(len(A), len(B)), max_exact)
    rng = check_random_state(random_state)
    if method == "exact":
        return _exact(A, B, max_exact, rng)
    return _sliced(A, B, n_projections, rng)


def _as_points(X: Any, name: str) -> np.ndarray:
    """Float64 (n, d) array of ``X``; a 1-D array becomes one column."""
    arr = as_array(X, name)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return check_embedding(arr, name=name, min_samples=1)


def _check_pair(A: Any, B: Any) -> tuple[np.ndarray, np.ndarray]:
    A, B = _as_points(A, "A"), _as_points(B, "B")
    if A.shape[1] != B.shape[1]:
        raise InputError(
            f"A has {A.shape[1]} features and B has {B.shape[1]}; pass two embeddings of the "
            "same width (W1 compares points in one space)."
        )
    return A, B


def _check_count(value: Any, name: str, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name}={value!r} is not a positive integer; pass e.g. {name}={example}.")
    return int(value)


def _resolve_method(method: Any, n_max: int, max_exact: int) -> str:
    if not isinstance(method, str) or method not in _METHODS:
        raise InputError(f"method={method!r} is unknown; pass 'auto', 'exact' or 'sliced'.")
    if method == "auto":
        return "exact" if n_max <= max_exact else "sliced"
    return method


def _import_ot() -> ModuleType:
    try:
        import ot
    except ImportError as exc:
        raise ImportError(
            'Wasserstein-1 needs POT; install it with pip install "POT>=0.9".'
        ) from exc
    return ot


def _subsample(X: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` rows of ``X`` without replacement (all rows, in order, when it has fewer)."""
    if len(X) <= size:
        return X
    return X[np.sort(rng.choice(len(X), size=size, replace=False))]


def _exact(A: np.ndarray, B: np.ndarray, max_exact: int, rng: np.random.Generator) -> Wasserstein1:
    subsampled = max(len(A), len(B)) > max_exact
    A, B = _subsample(A, max_exact, rng), _subsample(B, max_exact, rng)
    distance = _emd_w1(A, B, fix="pass a smaller max_exact or method='sliced'")
    return Wasserstein1(distance, "exact", len(A), len(B), None, subsampled)


def _emd_w1(A: np.ndarray, B: np.ndarray, *, fix: str) -> float:
    """Exact W1 between the uniform measures on the rows of A and B (network simplex)."""
    ot = _import_ot()
    n_a, n_b = len(A), len(B)
    need = float(n_a) * n_b * _EXACT_BYTES_PER_PAIR
    _memory.check_memory(f"exact W1 on {n_a}×{n_b} points", need, "cpu", fix)
    # cdist takes differences; the Gram expansion in ot.dist leaves ~1e-8 at coinciding points
    M = cdist(A, B, metric="euclidean")
    a, b = np.full(n_a, 1.0 / n_a), np.full(n_b, 1.0 / n_b)
    cost, log = ot.emd2(a, b, M, numItermax=_MAX_ITER, log=True)
    if log["result_code"] != 1:  # 1 is OPTIMAL in POT's emd_wrap.check_result
        raise RuntimeError(
            f"the network simplex stopped without an optimal plan on {n_a}×{n_b} points "
            f"({log['warning']}); report this with the data shape."
        )
    return float(cost)


def _random_directions(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(d, n) unit vectors, uniform on the sphere S^(d-1): normalised Gaussian columns."""
    theta = rng.standard_normal((d, n))
    return theta / np.linalg.norm(theta, axis=0, keepdims=True)


def _sliced(
    A: np.ndarray, B: np.ndarray, n_projections: int, rng: np.random.Generator
) -> Wasserstein1:
    ot = _import_ot()
    n_points = len(A) + len(B)
    chunk = max(
        1, min(n_projections, int(_SLICED_CHUNK_BYTES // (_SLICED_BYTES_PER_CELL * n_points)))
    )
    need = float(chunk) * n_points * _SLICED_BYTES_PER_CELL + n_projections * A.shape[1] * 8.0
    _memory.check_memory(f"sliced W1 on {len(A)}+{len(B)} points", need, "cpu", "pass fewer points")
    theta = _random_directions(A.shape[1], n_projections, rng)
    per_direction = np.empty(n_projections)
    for start in range(0, n_projections, chunk):
        stop = min(start + chunk, n_projections)
        _, log = ot.sliced_wasserstein_distance(
            A, B, projections=theta[:, start:stop], p=1, log=True
        )
        per_direction[start:stop] = log["projected_emds"]
    distance = float(per_direction.mean())
    return Wasserstein1(distance, "sliced", len(A), len(B), n_projections, False)


def wasserstein_convergence(
    X: npt.ArrayLike,
    sizes: npt.ArrayLike | None = None,
    *,
    n_repeats: int = 3,
    random_state: int | np.random.Generator | None = 0,
) -> WassersteinConvergence:
    """Empirical rate at which W1 between two samples of a cloud shrinks with their size.

    For each size n, `n_repeats` times: a seeded random permutation of the rows of `X`, its
    first n rows against its next n rows (two disjoint samples), exact W1 between them
    (:func:`wasserstein1`'s exact method, on all 2n points). The mean over repeats is fitted
    by ordinary least squares, ``log W1 = slope · log n + c``; for data on a set of
    dimension d >= 3, ``E W1 ~ n^(-1/d)``, so ``dimension = -1 / slope``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The cloud; a 1-D array is read as (n_samples, 1).
    sizes : array-like of int, optional
        Sample sizes, at least two distinct, each >= 2, with ``2 · max(sizes) <= n_samples``.
        Default: 6 sizes evenly spaced in log from 100 to ``min(n_samples // 2, 2000)``.
    n_repeats : int
        Pairs of subsamples averaged per size (>= 1).
    random_state : int, numpy Generator or None
        Seed of the permutations; the same seed gives the same result, bit for bit.

    Returns
    -------
    WassersteinConvergence
        Sizes, mean distances (input units), slope and implied dimension.

    Raises
    ------
    InputError
        Invalid `X`, fewer than 2 × 100 rows for the default sizes, invalid `sizes` or
        `n_repeats`, a zero mean distance (coinciding points), or too little memory.

    Notes
    -----
    The rate is that of E W1(μ_n, μ) (Dudley 1969; Fournier & Guillin 2015, Thm 1 with
    p = 1): n^(-1/d) for d >= 3. It is n^(-1/2) for d = 1, and sqrt(log n / n) for d = 2
    (Ajtai, Komlós & Tusnády 1984, uniform square; Fournier & Guillin bound it by
    n^(-1/2) log n), so both read as a "dimension" of about 2 and the fit does not tell
    them apart. Two independent samples converge at the same rate, since
    W1(μ_n, ν_n) <= W1(μ_n, μ) + W1(μ, ν_n). The rate is asymptotic: at n in the hundreds
    to thousands the fitted slope is steeper than -1/d (lower-order terms of the expansion
    add to the decay). Measured on uniform cubes (4 000 points, sizes 100–1 000, 10 repeats,
    seeds 0–99): slope -0.346 ± 0.012 for d = 3 (dimension 2.9) and -0.274 ± 0.006 for d = 4
    (dimension 3.65), while a 20-d cube (2 000 points, 3 repeats) gives -0.070 ± 0.002
    (dimension ~14): read the dimension as a trend across models, not as an estimate of d.
    The slope follows the intrinsic dimension of the data, not the number of features.
    Exact OT costs ~0.75 s per pair at n = 2 000 (see :func:`wasserstein1`).

    References
    ----------
    Dudley, R. M. (1969). The speed of mean Glivenko–Cantelli convergence. Ann. Math.
    Statist. 40, 40–50.
    Ajtai, M., Komlós, J., Tusnády, G. (1984). On optimal matchings. Combinatorica 4,
    259–264.
    Fournier, N., Guillin, A. (2015). On the rate of convergence in Wasserstein distance
    of the empirical measure. Probab. Theory Relat. Fields 162, 707–738, Theorem 1.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(size=(400, 3))
    >>> res = wasserstein_convergence(X, sizes=[25, 50, 100, 200], n_repeats=2)
    >>> res.sizes.tolist(), bool(res.slope < 0)
    ([25, 50, 100, 200], True)
    """
    X = _as_points(X, "X")
    grid = _check_sizes(sizes, len(X))
    n_repeats = _check_count(n_repeats, "n_repeats", 3)
    rng = check_random_state(random_state)
    distances = np.array([_mean_split_w1(X, int(n), n_repeats, rng) for n in grid])
    if not (distances > 0).all():
        raise InputError(
            f"X gives W1 = 0 between disjoint samples of size {int(grid[distances <= 0][0])} "
            "(coinciding points); drop duplicate points first."
        )
    slope = float(np.polyfit(np.log(grid), np.log(distances), 1)[0])
    dimension = -1.0 / slope if slope < 0 else math.inf
    return WassersteinConvergence(grid, distances, slope, dimension, n_repeats)


def _check_sizes(sizes: Any, n_samples: int) -> np.ndarray:
    """Validated ascending int64 sizes, or the default log grid for ``n_samples`` rows."""
    if sizes is None:
        top = min(n_samples // 2, _DEFAULT_MAX_SIZE)
        if top < _DEFAULT_MIN_SIZE:
            raise InputError(
                f"X has {n_samples} rows; the default sizes need at least "
                f"{2 * _DEFAULT_MIN_SIZE} (two disjoint samples of {_DEFAULT_MIN_SIZE}); "
                "pass more rows or smaller sizes."
            )
        grid = np.geomspace(_DEFAULT_MIN_SIZE, top, _DEFAULT_N_SIZES)
        return np.unique(np.round(grid).astype(np.int64))
    arr = np.unique(np.asarray(sizes).ravel())
    if arr.size < 2 or not np.issubdtype(arr.dtype, np.integer) or arr[0] < 2:
        raise InputError(
            f"sizes={np.asarray(sizes).tolist()!r} must be at least two distinct integers >= 2; "
            "pass e.g. sizes=[100, 200, 400]."
        )
    if 2 * arr[-1] > n_samples:
        raise InputError(
            f"size {int(arr[-1])} needs 2 × {int(arr[-1])} = {2 * int(arr[-1])} rows of X, "
            f"which has {n_samples}; pass sizes <= {n_samples // 2}."
        )
    return arr.astype(np.int64)


def _mean_split_w1(X: np.ndarray, n: int, n_repeats: int, rng: np.random.Generator) -> float:
    """Mean exact W1 between rows perm[:n] and perm[n:2n] over ``n_repeats`` permutations."""
    values = []
    for _ in range(n_repeats):
        perm = rng.permutation(len(X))
        values.append(_emd_w1(X[perm[:n]], X[perm[n : 2 * n]], fix="pass smaller sizes"))
    return float(np.mean(values))
