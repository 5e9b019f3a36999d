"""Tight local intrinsic-dimension estimator (TLE), vectorised over points in chunks.

TLE (Amsaleg et al. 2019) is the maximum-likelihood LID estimate of a point x from the
distances of x to its K nearest neighbours together with 2K(K-1) extra distance
measurements derived from each ordered pair (v_i, v_j) of neighbours and rescaled to the
ball of radius r = T_K around x: s_ij from the pair distance v_ij, and t_ij from the distance
z_ij between v_i and v_j's reflection through x (z_ij^2 = 2u_i^2 + 2u_j^2 - v_ij^2). With
u_i = d(x, v_i) and w the squared pair distance (v_ij^2 or z_ij^2), each measurement is the
positive root m of ``(r^2 - u_i^2) m^2 + A r m - w r^2 = 0``:

    m(w) = r (sqrt(A^2 + 4 w (r^2 - u_i^2)) - A) / (2 (r^2 - u_i^2)),   A = u_i^2 + w - u_j^2,

and the estimate is ``-2 K^2 / (sum_{i!=j} log(s_ij/r) + log(t_ij/r) + 2 sum_i log(u_i/r))``,
less dropped measurements in the count. This follows ``idtlec.m`` of the authors' MATLAB
code (github.com/radacha/tle), as ported by scikit-dimension's ``TLE``, with three
differences, all deliberate:

- ``epsilon`` is relative: measurements and distances below ``epsilon * r`` are dropped
  (scikit-dimension: below the absolute ``epsilon``), so the estimate does not depend on
  the units of X.
- m(w) is evaluated as ``2 r w / (sqrt(A^2 + 4 w (r^2 - u_i^2)) + A)`` where A >= 0, the
  same value without the cancellation near u_i = r; this form also covers u_i = r exactly,
  which the MATLAB code treats as a special case.
- When the s and t measurements all sit on the sphere (their log-sum > -epsilon, the code's
  "boundary case 5": tied distances, or a near-tie T_1 ~ T_2 at K = 2) the estimate is
  ``inf``, its limit, where the MATLAB code and scikit-dimension return 0.

Zero distances (the code's boundary cases 2-4) cannot occur: points are distinct by contract.
Cost: O(n K^2 d) for the pair distances (a Gram product per point) plus O(n K^2) per scale;
memory is bounded by the chunk sizes below, whatever n.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tle_pointwise"]

# per chunk, at most this many float64 pair entries (B*K*K) and coordinates (B*K*d): 16 MiB
_CHUNK_PAIRS = 2**21
_CHUNK_COORDS = 2**21


def tle_pointwise(
    X: np.ndarray, distances: np.ndarray, indices: np.ndarray, ks: np.ndarray, *, epsilon: float
) -> np.ndarray:
    """TLE of every point at every K in ``ks``.

    Parameters
    ----------
    X : ndarray of shape (n_points, n_features), float64
        The points the kNN was computed on.
    distances : ndarray of shape (n_points, k_max), float64
        Sorted neighbour distances, self excluded, all > 0.
    indices : ndarray of shape (n_points, k_max), int
        Neighbour row numbers, same order.
    ks : ndarray of shape (n_scales,), int
        Neighbourhood sizes, ``2 <= K <= k_max``.
    epsilon : float
        Relative threshold: measurements and distances below ``epsilon * T_K`` are dropped.

    Returns
    -------
    ndarray of shape (n_points, n_scales)

    References
    ----------
    Amsaleg, Chelly, Houle, Kawarabayashi, Radovanović & Treeratanajaru (2019),
    "Intrinsic dimensionality estimation within tight localities", SDM, pp. 181-189
    (arXiv:2209.14475), estimator with central measurements and reflections (TLE_c).
    """
    n, n_features = X.shape
    k_top = int(ks.max())
    rows_per_chunk = max(1, min(_CHUNK_PAIRS // k_top**2, _CHUNK_COORDS // (k_top * n_features)))
    out = np.empty((n, ks.size))
    for start in range(0, n, rows_per_chunk):
        rows = slice(start, min(start + rows_per_chunk, n))
        # centre each neighbourhood on its query point: the Gram identity below then loses
        # no digits to a large common offset
        hood = X[indices[rows, :k_top]] - X[rows, None, :]
        sq = np.einsum("bkd,bkd->bk", hood, hood)
        gram = hood @ hood.transpose(0, 2, 1)
        pair_sq = np.maximum(sq[:, :, None] + sq[:, None, :] - 2.0 * gram, 0.0)
        for col, k in enumerate(ks):
            out[rows, col] = _tle_block(distances[rows, :k], pair_sq[:, :k, :k], epsilon)
    return out


def _tle_block(dist: np.ndarray, pair_sq: np.ndarray, epsilon: float) -> np.ndarray:
    """TLE for a block of points: dist (B, K), squared pair distances (B, K, K) -> (B,)."""
    k = dist.shape[1]
    r = dist[:, -1, None, None]
    ui2 = dist[:, :, None] ** 2
    uj2 = dist[:, None, :] ** 2
    s = _measure(pair_sq, ui2, uj2, r)
    t = _measure(2.0 * ui2 + 2.0 * uj2 - pair_sq, ui2, uj2, r)
    off = ~np.eye(k, dtype=bool)
    floor = epsilon * r
    # a dropped s drops its t and vice versa (the MATLAB code's balance rule); NaN is 0/0
    drop = off & ((s < floor) | (t < floor) | np.isnan(s) | np.isnan(t))
    keep = off & ~drop
    with np.errstate(divide="ignore", invalid="ignore"):
        log_st = np.where(keep, np.log(s / r) + np.log(t / r), 0.0).sum(axis=(1, 2))
    r_flat = dist[:, -1:]
    near = dist < epsilon * r_flat
    log_u = np.where(near, 0.0, np.log(dist / r_flat)).sum(axis=1)
    count = k * k - drop.sum(axis=(1, 2)) - near.sum(axis=1)
    with np.errstate(divide="ignore"):
        estimate = -2.0 * count / (log_st + 2.0 * log_u)
    return np.where(log_st > -epsilon, np.inf, estimate)


def _measure(w: np.ndarray, ui2: np.ndarray, uj2: np.ndarray, r: np.ndarray) -> np.ndarray:
    """TLE measurement m(w) (see the module docstring), broadcast over (B, K, K)."""
    a = ui2 + w - uj2
    gap = r * r - ui2
    root = np.sqrt(a * a + 4.0 * w * gap)
    with np.errstate(divide="ignore", invalid="ignore"):
        rationalised = 2.0 * r * w / (root + a)
        # only reached with A < 0, which implies u_i < r, so gap > 0
        direct = r * (root - a) / (2.0 * gap)
    return np.where(a >= 0.0, rationalised, direct)
