"""Scale invariance of a representation (METHOD.md §4).

"Scale" is the neighbourhood size K around each point. Every function here works from a
multi-scale profile (one value per K) or from ONE exact kNN result at ``k_max``:
``indices`` of shape (n_samples, k_max), each row sorted by distance, the point itself
excluded, and (for the rank consistency) pointwise LID values at each K.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import spearmanr

from repscope._validation import InputError, check_embedding

__all__ = [
    "DimensionalStability",
    "dimensional_stability",
    "neighbourhood_jaccard",
    "pointwise_rank_consistency",
    "profile_distance",
]


@dataclass(frozen=True)
class DimensionalStability:
    """How much a dimension profile m_K changes with the scale K.

    Attributes
    ----------
    slope : float
        OLS slope of the profile values against ln K, in dimension units per e-fold of K
        (0 = perfectly scale-invariant).
    slope_without_largest : float
        The same slope with the largest K dropped (the scale-invariance paper reports a
        sharp rise between the last two scales). NaN when the profile has fewer than
        3 scales, since then one point would remain.
    cv : float
        Coefficient of variation of the profile values, population std (ddof=0) / mean.
    """

    slope: float
    slope_without_largest: float
    cv: float


def dimensional_stability(ks: Sequence[int], values: npt.ArrayLike) -> DimensionalStability:
    """Multi-scale dimensional stability of a dimension profile.

    Parameters
    ----------
    ks : sequence of int, length n_scales >= 2
        Distinct neighbourhood sizes K (any order).
    values : array-like of shape (n_scales,)
        Dimension estimate m_K at each K (e.g. mean Levina–Bickel LID), positive mean.

    Returns
    -------
    DimensionalStability

    Raises
    ------
    InputError
        Fewer than 2 scales, repeated or non-positive K, mismatched lengths, non-finite
        values, or a non-positive mean (the coefficient of variation needs a positive mean).

    Examples
    --------
    >>> import numpy as np
    >>> ks = [10, 20, 40, 80]
    >>> s = dimensional_stability(ks, 5 + 2 * np.log(ks))
    >>> round(s.slope, 12), round(s.slope_without_largest, 12)
    (2.0, 2.0)
    """
    k, v = _check_profile(ks, values, "ks", "values")
    mean = v.mean()
    if not mean > 0:
        raise InputError(
            f"values have mean {mean:g}; the coefficient of variation needs a positive mean, "
            "pass dimension estimates (positive numbers)."
        )
    log_k = np.log(k)
    without_largest = _ols_slope(log_k[:-1], v[:-1]) if len(k) >= 3 else float("nan")
    return DimensionalStability(
        slope=_ols_slope(log_k, v),
        slope_without_largest=without_largest,
        cv=float(v.std() / mean),
    )


def _ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    dx = x - x.mean()
    return float((dx * (y - y.mean())).sum() / (dx**2).sum())


def neighbourhood_jaccard(indices: npt.ArrayLike, ks: Sequence[int]) -> np.ndarray:
    """Mean Jaccard overlap of each point's K-NN set with its reverse 2K-NN set.

    METHOD.md §4 words this companion as "the K-NN set against the first K of the
    2K-NN set"; with an exact kNN those two sets are the same, so that reading is
    identically 1. The non-trivial reading used here compares what a point sees with
    what sees it one scale up: for each point x,

        J_K(x) = |N_K(x) ∩ R_2K(x)| / |N_K(x) ∪ R_2K(x)|,  R_2K(x) = {y : x ∈ N_2K(y)},

    where N_K(x) is the K-NN set of x and R_2K(x) its reverse (in-)neighbourhood in the
    2K-NN graph. It is 1 only when x's K nearest neighbours all keep x among their 2K
    nearest and nothing else does; hubs (large R_2K) and anti-hubs (points no one lists)
    lower it, so it measures how consistently the neighbourhood graph is organised
    across the scale doubling. The union always holds N_K(x), K >= 1 points, so it is
    never empty; an anti-hub (R_2K(x) empty) scores 0. On a regular ring with K even
    every point scores exactly 1/2.

    Parameters
    ----------
    indices : array-like of int, shape (n_samples, k_max)
        Exact kNN of the points among themselves: row i lists the neighbours of point i,
        nearest first, i itself excluded, no repeats.
    ks : sequence of int
        Scales K, each with ``1 <= K`` and ``2K <= k_max``, no repeats.

    Returns
    -------
    ndarray of shape (len(ks),)
        Mean of J_K(x) over all points, in the order of `ks`, each in [0, 1].

    Raises
    ------
    InputError
        Malformed `indices` or a K with ``2K > k_max``.

    Examples
    --------
    >>> import numpy as np
    >>> indices = np.array([[1, 2], [0, 2], [1, 0], [2, 1]])  # points at 0, 1, 3, 7 on a line
    >>> neighbourhood_jaccard(indices, [1]) * 24
    array([7.])
    """
    idx = _check_indices(indices)
    ks_checked = _check_half_scales(ks, idx.shape[1])
    return np.array([_mean_jaccard(idx, k) for k in ks_checked])


def _mean_jaccard(idx: np.ndarray, k: int) -> float:
    n = idx.shape[0]
    rows = np.arange(n, dtype=np.int64)[:, None]
    # edge y -> z of the 2K graph keyed as y * n + z; sorted so membership is a binary search
    edges = np.sort((rows * n + idx[:, : 2 * k]).ravel())
    # y in N_K(x) and x in N_2K(y)  <=>  key y * n + x is an edge of the 2K graph
    queries = (idx[:, :k] * n + rows).ravel()
    pos = np.minimum(np.searchsorted(edges, queries), edges.size - 1)
    intersection = (edges[pos] == queries).reshape(n, k).sum(axis=1)
    in_degree = np.bincount(idx[:, : 2 * k].ravel(), minlength=n)
    union = k + in_degree - intersection
    return float((intersection / union).mean())


def pointwise_rank_consistency(pointwise: npt.ArrayLike, ks: Sequence[int]) -> dict[int, float]:
    """Spearman correlation of pointwise LID at K with pointwise LID at 2K.

    Parameters
    ----------
    pointwise : array-like of shape (n_samples, n_scales)
        Pointwise dimension estimates; column j holds the estimates at ``ks[j]``.
    ks : sequence of int, length n_scales
        Distinct scales; pairs (K, 2K) with both present are used.

    Returns
    -------
    dict of int to float
        ``{K: r}`` for every K whose 2K is also in `ks`, ascending K; r is Spearman's rank
        correlation over points (``scipy.stats.spearmanr``), in [-1, 1].

    Raises
    ------
    InputError
        Shape mismatch, non-finite values, fewer than 3 points, no (K, 2K) pair, or a
        column that is constant over points (Spearman r undefined).

    Examples
    --------
    >>> import numpy as np
    >>> pointwise = np.array([[1.0, 2.0, 9.0], [2.0, 3.0, 8.0], [3.0, 5.0, 7.0]])
    >>> pointwise_rank_consistency(pointwise, [5, 10, 20])
    {5: 1.0, 10: -1.0}
    """
    values = check_embedding(pointwise, name="pointwise", min_samples=3)
    k = _check_k_values(ks, "ks")
    if values.shape[1] != len(k):
        raise InputError(
            f"pointwise has {values.shape[1]} columns but ks has {len(k)} scales; pass one "
            "column per K, in the order of ks."
        )
    column = {int(kk): j for j, kk in enumerate(k)}
    pairs = sorted(kk for kk in column if 2 * kk in column)
    if not pairs:
        raise InputError(
            f"ks={list(map(int, k))} holds no pair (K, 2K); include doubled scales, "
            "e.g. ks=[5, 10, 20]."
        )
    constant = [kk for kk in column if np.ptp(values[:, column[kk]]) == 0]
    if any(kk in constant or 2 * kk in constant for kk in pairs):
        raise InputError(
            f"pointwise LID is the same for every point at K={constant}; Spearman r is "
            "undefined there, drop those scales."
        )
    return {
        kk: float(spearmanr(values[:, column[kk]], values[:, column[2 * kk]]).statistic)
        for kk in pairs
    }


def profile_distance(
    ks_a: Sequence[int],
    values_a: npt.ArrayLike,
    ks_b: Sequence[int],
    values_b: npt.ArrayLike,
) -> float:
    """L2 distance between two z-scored profiles over their common scales.

    Each profile is restricted to the K present in both, then z-scored over those K
    (population std, ddof=0), so only the shape of the profile counts, not its level or
    spread: ``d = ||z_a − z_b||₂ = sqrt(2 m (1 − r))`` with m common scales and r the
    Pearson correlation of the two restricted profiles; 0 ≤ d ≤ 2 sqrt(m).

    Parameters
    ----------
    ks_a : sequence of int
        Scales of the first profile, distinct.
    values_a : array-like of shape (len(ks_a),)
        First profile (e.g. a model's LID profile).
    ks_b : sequence of int
        Scales of the second profile, distinct.
    values_b : array-like of shape (len(ks_b),)
        Second profile (e.g. an ROI's LID profile).

    Returns
    -------
    float
        Dimensionless distance.

    Raises
    ------
    InputError
        Malformed profiles, fewer than 2 common K, or a profile constant over the
        common K (its z-scores are undefined).

    Examples
    --------
    >>> profile_distance([5, 10, 20], [1.0, 2.0, 3.0], [10, 20, 50], [7.0, 9.0, 0.0])
    0.0
    """
    ka, va = _check_profile(ks_a, values_a, "ks_a", "values_a", min_scales=1)
    kb, vb = _check_profile(ks_b, values_b, "ks_b", "values_b", min_scales=1)
    common, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    if len(common) < 2:
        raise InputError(
            f"the profiles share {len(common)} scale(s) {common.tolist()}; pass profiles "
            "with at least 2 common K."
        )
    za = _zscore(va[ia], "values_a", common)
    zb = _zscore(vb[ib], "values_b", common)
    return float(np.sqrt(((za - zb) ** 2).sum()))


def _zscore(values: np.ndarray, name: str, common: np.ndarray) -> np.ndarray:
    std = values.std()
    if not std > 0:
        raise InputError(
            f"{name} is constant over the common K={common.tolist()}; z-scores are "
            "undefined, compare profiles that vary with K."
        )
    return (values - values.mean()) / std


def _check_k_values(ks: Sequence[int], name: str) -> np.ndarray:
    k = np.asarray(ks)
    if k.ndim != 1 or not (np.issubdtype(k.dtype, np.integer) or k.size == 0):
        raise InputError(f"{name}={ks!r} must be a 1-D sequence of integers, e.g. [5, 10, 20].")
    if k.size == 0 or k.min() < 1:
        raise InputError(f"{name}={k.tolist()} must hold positive integers; pass e.g. [5, 10].")
    if len(np.unique(k)) != k.size:
        raise InputError(f"{name}={k.tolist()} repeats a scale; pass each K once.")
    return k.astype(np.int64)


def _check_profile(
    ks: Sequence[int],
    values: npt.ArrayLike,
    ks_name: str,
    values_name: str,
    min_scales: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    k = _check_k_values(ks, ks_name)
    v = np.asarray(values, dtype=np.float64)
    if v.shape != k.shape:
        raise InputError(
            f"{values_name} has shape {v.shape} but {ks_name} has {k.size} scales; pass one "
            "value per K."
        )
    if k.size < min_scales:
        raise InputError(
            f"{ks_name} has {k.size} scale(s); pass at least {min_scales} to fit a slope."
        )
    if not np.isfinite(v).all():
        raise InputError(f"{values_name} contains NaN or infinite values; pass finite numbers.")
    order = np.argsort(k)
    return k[order], v[order]


def _check_indices(indices: npt.ArrayLike) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 2 or idx.shape[0] < 2 or idx.shape[1] < 2:
        raise InputError(
            f"indices has shape {idx.shape}; pass a kNN index array of shape "
            "(n_samples, k_max) with n_samples >= 2 and k_max >= 2."
        )
    if not np.issubdtype(idx.dtype, np.integer):
        raise InputError(f"indices has dtype {idx.dtype}; pass integer neighbour indices.")
    idx = idx.astype(np.int64, copy=False)
    n = idx.shape[0]
    if idx.min() < 0 or idx.max() >= n:
        raise InputError(
            f"indices must lie in [0, {n - 1}] (the kNN of the points among themselves); "
            "pass the kNN of one point set against itself."
        )
    if (idx == np.arange(n)[:, None]).any():
        raise InputError("indices lists some points as their own neighbour; exclude self.")
    ordered = np.sort(idx, axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise InputError("indices repeats a neighbour within a row; pass an exact kNN result.")
    return idx


def _check_half_scales(ks: Sequence[int], k_max: int) -> list[int]:
    k = _check_k_values(ks, "ks")
    too_large = k[2 * k > k_max]
    if too_large.size:
        raise InputError(
            f"ks={too_large.tolist()} need 2K neighbours but indices has k_max={k_max}; "
            f"pass K <= {k_max // 2} or a kNN with k_max >= {2 * int(too_large.max())}."
        )
    return k.tolist()
