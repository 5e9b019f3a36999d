"""Local intrinsic-dimension estimators computed from one precomputed kNN result.

Every estimator reads the same input, the output of one exact kNN search at ``k_max``:
``distances`` (n, k_max), Euclidean and not squared, sorted ascending, the point itself
excluded and all strictly positive (duplicates are dropped upstream), and, where needed,
``indices`` (n, k_max), the neighbours' row numbers in the same order. Any neighbourhood
size ``K <= k_max`` is a slice of that result, so a multi-scale profile costs one search.

``T_j(x)`` below is the distance from x to its j-th nearest neighbour (1-based).

Where an estimate is infinite (all the log-ratios it uses are zero, e.g. tied distances on a
lattice) it is returned as ``inf`` with a warning, never as NaN; ``aggregate(..., "harmonic")``
treats such points as ``1/inf = 0``.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from repscope._validation import InputError, as_array, check_embedding
from repscope.dimension._aggregate import AGGREGATES, aggregate, bootstrap_ci
from repscope.dimension._gride import gride_root, gride_unit_root
from repscope.dimension._tle import tle_pointwise

__all__ = [
    "AGGREGATES",
    "ESTIMATORS",
    "aggregate",
    "bootstrap_ci",
    "gride_global",
    "min_neighbors",
    "pointwise_dimension",
    "twonn_global",
]

ESTIMATORS: tuple[str, ...] = ("mle", "mle-unbiased", "twonn", "mada", "mom", "tle", "gride")

# Smallest K at which each estimate is defined: mle needs one log-ratio (K-1 >= 1),
# mle-unbiased a positive numerator K-2, twonn two ratios (x and one neighbour), mada and
# gride a half-scale ceil(K/2) < K, mom a mean that differs from T_K, tle one neighbour pair.
_MIN_NEIGHBORS = {
    "mle": 2,
    "mle-unbiased": 3,
    "twonn": 1,
    "mada": 2,
    "mom": 2,
    "tle": 2,
    "gride": 2,
}
_PARAMS: dict[str, dict[str, Any]] = {
    "twonn": {"fit": "mle", "discard_fraction": 0.1},
    "tle": {"epsilon": 1e-4},
}
_TWONN_FITS = ("mle", "linear")


def min_neighbors(estimator: str) -> int:
    """Smallest neighbourhood size K that ``estimator`` accepts.

    Parameters
    ----------
    estimator : str
        One of :data:`ESTIMATORS`.

    Returns
    -------
    int
        2 for mle, mada, mom, tle and gride; 3 for mle-unbiased; 1 for twonn.
    """
    _check_estimator(estimator)
    return _MIN_NEIGHBORS[estimator]


def pointwise_dimension(
    estimator: str,
    distances: npt.ArrayLike,
    ks: Sequence[int] | int,
    *,
    indices: npt.ArrayLike | None = None,
    X: npt.ArrayLike | None = None,
    **params: Any,
) -> npt.NDArray[np.float64]:
    """Local intrinsic dimension of every point at every neighbourhood size in ``ks``.

    Parameters
    ----------
    estimator : str
        One of :data:`ESTIMATORS`:

        - ``"mle"`` (Levina–Bickel): ``(K-1) / sum_{j<K} log(T_K/T_j)``.
        - ``"mle-unbiased"``: ``(K-2) / sum_{j<K} log(T_K/T_j)``.
        - ``"twonn"``: local TwoNN on the ratios ``mu = T_2/T_1`` of x and its K neighbours
          (K+1 ratios, each point's own global first two distances; needs ``indices``).
          ``fit="mle"`` (default): ``(K+1) / sum log mu``; ``fit="linear"``: Facco's fit
          through the origin of ``-log(1 - i/(K+1))`` on the i-th smallest ``log mu``, the
          largest ``discard_fraction`` (default 0.1) of the ratios left out.
        - ``"mada"`` (Farahmand 2007): ``log 2 / log(T_K / T_ceil(K/2))``.
        - ``"mom"`` (Amsaleg 2015): ``m1 / (T_K - m1)``, ``m1 = mean(T_1..T_K)``.
        - ``"tle"`` (Amsaleg 2019, with central measurements and reflections; needs
          ``indices`` and ``X``). ``epsilon`` (default 1e-4) drops measurements below
          ``epsilon * T_K``; see :func:`repscope.dimension._tle.tle_pointwise`.
        - ``"gride"`` (Denti 2022): maximum-likelihood d of the single ratio
          ``mu = T_K / T_n1``, ``n1 = ceil(K/2)``, which is
          ``t*(n1, K) / log mu`` (see :func:`repscope.dimension._gride.gride_unit_root`).
    distances : array-like of shape (n_points, k_max)
        Euclidean distances to each point's k_max nearest neighbours, in input units,
        sorted ascending, self excluded, strictly positive.
    ks : sequence of int, or int
        Neighbourhood sizes K, each ``min_neighbors(estimator) <= K <= k_max``; the output
        columns follow this order.
    indices : array-like of int of shape (n_points, k_max), optional
        Row numbers of the neighbours, same order as ``distances``; twonn and tle only.
    X : array-like of shape (n_points, n_features), optional
        The points themselves, same units as ``distances``; tle only.
    **params
        ``fit`` and ``discard_fraction`` for twonn, ``epsilon`` for tle.

    Returns
    -------
    ndarray of shape (n_points, len(ks)), float64
        Positive estimates; ``inf`` (with a warning) where every log-ratio is zero.

    Raises
    ------
    InputError
        Unknown estimator or parameter, K out of range, malformed or missing inputs.

    References
    ----------
    Levina & Bickel (2004), NeurIPS, eq. 8; MacKay & Ghahramani (2005) for the K-2 variant.
    Facco et al. (2017), Sci. Rep. 7:12140, eqs. 1-5. Farahmand et al. (2007), ICML, eq. 3.
    Amsaleg et al. (2015), KDD, MoM estimator. Amsaleg et al. (2019), SDM (TLE).
    Denti et al. (2022), Sci. Rep. 12:20005, eq. 4.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array([[1.0, 2.0, 4.0]])
    >>> pointwise_dimension("mle", d, [3])  # 2 / (log 4 + log 2)
    array([[0.96179669]])
    """
    _check_estimator(estimator)
    opts = _check_params(estimator, params)
    dist = _check_distances(distances)
    k_list = _check_ks(ks, k_max=dist.shape[1], k_min=_MIN_NEIGHBORS[estimator], name=estimator)
    idx = _check_indices(indices, dist, estimator) if estimator in ("twonn", "tle") else None
    if estimator == "mle":
        out = _mle(dist, k_list, unbiased=False)
    elif estimator == "mle-unbiased":
        out = _mle(dist, k_list, unbiased=True)
    elif estimator == "mada":
        out = _ratio_estimate(dist, k_list, np.full(len(k_list), np.log(2.0)))
    elif estimator == "gride":
        roots = np.array([gride_unit_root(-(-k // 2), k) for k in k_list])
        out = _ratio_estimate(dist, k_list, roots)
    elif estimator == "mom":
        out = _mom(dist, k_list)
    elif estimator == "twonn":
        out = _twonn_pointwise(dist, idx, k_list, **opts)
    else:
        points = _check_points(X, dist.shape[0])
        out = tle_pointwise(points, dist, idx, k_list, epsilon=opts["epsilon"])
    _warn_infinite(out, estimator)
    return out


def twonn_global(
    distances: npt.ArrayLike, *, fit: str = "mle", discard_fraction: float = 0.1
) -> float:
    """Classic TwoNN intrinsic dimension of the whole point set.

    Uses ``mu_i = T_2(x_i) / T_1(x_i)`` of all n points (``distances[:, :2]``).

    Parameters
    ----------
    distances : array-like of shape (n_points, k_max), k_max >= 2
        Sorted kNN distances, self excluded.
    fit : {"mle", "linear"}, default "mle"
        ``"mle"``: ``n / sum log mu`` (the Pareto-shape MLE, Facco 2017 eq. 4; DADApy and
        scikit-dimension's ``method="mle"`` use the unbiased ``(n - 1) / sum log mu``).
        ``"linear"``: least-squares line through the origin of ``-log(1 - i/n)`` against the
        i-th smallest ``log mu``, over the ``int(n * (1 - discard_fraction))`` smallest
        ratios (Facco 2017, Fig. 1; identical to scikit-dimension's default ``TwoNN()``).
    discard_fraction : float, default 0.1
        Fraction of the largest ratios left out of the linear fit; unused by ``"mle"``.

    Returns
    -------
    float

    References
    ----------
    Facco, d'Errico, Rodriguez & Laio (2017), Sci. Rep. 7:12140.
    """
    fit, discard_fraction = _check_twonn_params(fit, discard_fraction)
    log_mu = _twonn_log_mu(_check_distances(distances))
    value = float(_twonn_fit(log_mu[None, :], fit, discard_fraction)[0])
    _warn_infinite(np.array([value]), "twonn")
    return value


def gride_global(distances: npt.ArrayLike, *, n1: int, n2: int) -> float:
    """GRIDE: pooled maximum-likelihood dimension of all points at scale (n1, n2).

    Maximises ``sum_i log f(mu_i | d)`` over ``mu_i = T_n2(x_i) / T_n1(x_i)`` with
    ``f(mu) = d (mu^d - 1)^(n2-n1-1) / (mu^((n2-1) d + 1) B(n2-n1, n1))``. The log-likelihood
    is concave in d; its score is solved by Brent's method to 4 machine epsilons.
    A tied pair (``mu = 1``) enters through the score's limit ``mu -> 1``.

    Differs from scikit-dimension's ``GRIDE`` (and DADApy's) on purpose: the likelihood keeps
    ``n log d`` (they use ``(n - 1) log d``, which makes n1=1, n2=2 the unbiased TwoNN), and
    no ratios are discarded (they drop ``mu > q50 + 20 (q95 - q50)`` and tied ratios).

    Parameters
    ----------
    distances : array-like of shape (n_points, k_max)
        Sorted kNN distances, self excluded.
    n1, n2 : int
        Neighbour orders, ``1 <= n1 < n2 <= k_max``.

    Returns
    -------
    float

    References
    ----------
    Denti, Doimo, Laio & Mira (2022), Sci. Rep. 12:20005, eqs. 4-5.
    """
    dist = _check_distances(distances)
    for name, value in (("n1", n1), ("n2", n2)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise InputError(f"{name}={value!r} is not an integer; pass a neighbour order.")
    if not 1 <= n1 < n2 <= dist.shape[1]:
        raise InputError(
            f"n1={n1}, n2={n2} must satisfy 1 <= n1 < n2 <= k_max={dist.shape[1]}; "
            "pass e.g. n1=1, n2=2, or recompute the kNN with a larger k_max."
        )
    log_mu = np.log(dist[:, n2 - 1] / dist[:, n1 - 1])
    value = gride_root(log_mu, int(n1), int(n2))
    _warn_infinite(np.array([value]), "gride")
    return value


def _mle(dist: np.ndarray, ks: np.ndarray, *, unbiased: bool) -> np.ndarray:
    """Levina–Bickel at every K from one cumulative sum of log distances."""
    # shift by log T_1 so the running sum stays small and the difference below keeps its digits
    log_t = np.log(dist[:, : ks.max()])
    log_t -= log_t[:, :1]
    csum = np.cumsum(log_t, axis=1)
    # sum_{j<K} log(T_K/T_j) = (K-1) log T_K - sum_{j<K} log T_j; >= 0 exactly, so clip the
    # rounding of near-ties at 0 (-> inf) rather than let it turn the estimate negative
    sums = np.maximum((ks - 1) * log_t[:, ks - 1] - csum[:, ks - 2], 0.0)
    with np.errstate(divide="ignore"):
        return (ks - 2 if unbiased else ks - 1) / sums


def _ratio_estimate(dist: np.ndarray, ks: np.ndarray, const: np.ndarray) -> np.ndarray:
    """``const / log(T_K / T_ceil(K/2))``: MADA (const log 2) and pointwise GRIDE (t*)."""
    half = -(-ks // 2)
    with np.errstate(divide="ignore"):
        return const / np.log(dist[:, ks - 1] / dist[:, half - 1])


def _mom(dist: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Method of moments ``m1 / (T_K - m1)`` from one cumulative sum of distances."""
    m1 = np.cumsum(dist[:, : ks.max()], axis=1)[:, ks - 1] / ks
    # m1 <= T_K exactly, but the rounded mean of tied distances can exceed it (3 * 0.1 / 3 >
    # 0.1): clip at 0 so ties give +inf, not a huge negative or -inf
    with np.errstate(divide="ignore"):
        return m1 / np.maximum(dist[:, ks - 1] - m1, 0.0)


def _twonn_pointwise(
    dist: np.ndarray, idx: np.ndarray, ks: np.ndarray, *, fit: str, discard_fraction: float
) -> np.ndarray:
    """Local TwoNN over x and its K nearest neighbours, from global ``mu = T_2/T_1``."""
    log_mu = _twonn_log_mu(dist)
    # column 0 is the point itself, then its neighbours in distance order
    hood = np.concatenate([log_mu[:, None], log_mu[idx[:, : ks.max()]]], axis=1)
    out = np.empty((dist.shape[0], ks.size))
    for col, k in enumerate(ks):
        out[:, col] = _twonn_fit(hood[:, : k + 1], fit, discard_fraction)
    return out


def _twonn_log_mu(dist: np.ndarray) -> np.ndarray:
    """``log(T_2 / T_1)`` of every point, shape (n,)."""
    if dist.shape[1] < 2:
        raise InputError(
            f"distances has k_max={dist.shape[1]} column; TwoNN needs the first two "
            "neighbour distances, recompute the kNN with k_max >= 2."
        )
    return np.log(dist[:, 1] / dist[:, 0])


def _twonn_fit(log_mu: np.ndarray, fit: str, discard_fraction: float) -> np.ndarray:
    """TwoNN estimate of each row of ``log_mu`` (shape (m, N)) -> (m,)."""
    n = log_mu.shape[1]
    if fit == "mle":
        with np.errstate(divide="ignore"):
            return n / log_mu.sum(axis=1)
    n_keep = int(n * (1 - discard_fraction))
    if not 1 <= n_keep <= n - 1:
        raise InputError(
            f"discard_fraction={discard_fraction} keeps {n_keep} of {n} ratios; the linear "
            f"fit needs 1 to {n - 1} (the largest has -log(1 - F) = inf), so pass "
            f"{1 / n:.3g} <= discard_fraction < {1 - 1 / n:.3g}."
        )
    x = np.sort(log_mu, axis=1)[:, :n_keep]
    y = -np.log1p(-np.arange(1, n_keep + 1) / n)
    sq = np.einsum("ij,ij->i", x, x)
    # all kept ratios tied at mu = 1 (x = 0): the slope's limit is inf, not 0/0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sq > 0, (x @ y) / sq, np.inf)


def _warn_infinite(values: np.ndarray, estimator: str) -> None:
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        warnings.warn(
            f"{estimator}: {n_inf} estimate(s) are infinite because every neighbour-distance "
            "log-ratio they use is zero (tied distances); use a larger K, or aggregate with "
            "how='harmonic', which counts them as 1/inf = 0.",
            RuntimeWarning,
            stacklevel=3,
        )


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise InputError(
            f"estimator={estimator!r} is unknown; pass one of {', '.join(ESTIMATORS)}."
        )


def _check_params(estimator: str, params: dict[str, Any]) -> dict[str, Any]:
    accepted = _PARAMS.get(estimator, {})
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) if accepted else "no parameters"
        raise InputError(
            f"estimator={estimator!r} got unknown parameter(s) {', '.join(unknown)}; "
            f"it takes {takes}."
        )
    opts = {**accepted, **params}
    if estimator == "twonn":
        opts["fit"], opts["discard_fraction"] = _check_twonn_params(
            opts["fit"], opts["discard_fraction"]
        )
    if estimator == "tle" and not 0.0 <= opts["epsilon"] < 1.0:
        raise InputError(f"epsilon={opts['epsilon']!r} must be in [0, 1), e.g. 1e-4.")
    return opts


def _check_twonn_params(fit: str, discard_fraction: float) -> tuple[str, float]:
    if fit not in _TWONN_FITS:
        raise InputError(f"fit={fit!r} is unknown; pass 'mle' or 'linear'.")
    if not 0.0 <= discard_fraction < 1.0:
        raise InputError(f"discard_fraction={discard_fraction!r} must be in [0, 1), e.g. 0.1.")
    return fit, float(discard_fraction)


def _check_distances(distances: npt.ArrayLike) -> np.ndarray:
    arr = as_array(distances, "distances")
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(
            f"distances must be a non-empty 2-D array (n_points, k_max), got shape {arr.shape}; "
            "pass the distances of a kNN result."
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InputError("distances contains NaN or infinite values; pass finite kNN distances.")
    n_zero = int((arr <= 0).sum())
    if n_zero:
        raise InputError(
            f"distances has {n_zero} non-positive entries; drop duplicate points before the "
            "kNN search so every neighbour distance is > 0."
        )
    if (np.diff(arr, axis=1) < 0).any():
        raise InputError(
            "distances rows are not sorted ascending; sort each row and reorder indices the "
            "same way (np.argsort(distances, axis=1))."
        )
    return arr


def _check_ks(ks: Sequence[int] | int, *, k_max: int, k_min: int, name: str) -> np.ndarray:
    values = (ks,) if isinstance(ks, numbers.Integral) else tuple(ks)
    if not values:
        raise InputError("ks is empty; pass at least one neighbourhood size, e.g. ks=[20].")
    for k in values:
        if not isinstance(k, numbers.Integral) or isinstance(k, bool):
            raise InputError(f"K={k!r} in ks is not an integer; pass whole neighbour counts.")
        if k < k_min:
            raise InputError(f"K={k} is too small for estimator={name!r}; it needs K >= {k_min}.")
        if k > k_max:
            raise InputError(
                f"K={k} exceeds k_max={k_max}, the neighbours in distances; pass K <= {k_max} "
                f"or recompute the kNN with k_max >= {k}."
            )
    return np.array(values, dtype=np.int64)


def _check_indices(indices: npt.ArrayLike | None, dist: np.ndarray, estimator: str) -> np.ndarray:
    if indices is None:
        raise InputError(
            f"estimator={estimator!r} needs the neighbour indices; pass indices= from the "
            "same kNN result as distances."
        )
    arr = as_array(indices, "indices")
    if arr.shape != dist.shape or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(
            f"indices must be an integer array of the distances' shape {dist.shape}, got "
            f"{arr.dtype} {arr.shape}; pass both arrays from one kNN result."
        )
    if arr.min() < 0 or arr.max() >= dist.shape[0]:
        raise InputError(
            f"indices must lie in [0, {dist.shape[0] - 1}] (one row per point); pass the "
            "indices of a kNN search of the points against themselves."
        )
    return arr.astype(np.intp, copy=False)


def _check_points(X: npt.ArrayLike | None, n_points: int) -> np.ndarray:
    if X is None:
        raise InputError(
            "estimator='tle' needs the points; pass X=, the (n_points, n_features) array the "
            "kNN was computed on."
        )
    arr = check_embedding(X, name="X", min_samples=1)
    if arr.shape[0] != n_points:
        raise InputError(
            f"X has {arr.shape[0]} rows but distances has {n_points}; pass the points the kNN "
            "was computed on."
        )
    return arr
