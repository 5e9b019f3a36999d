"""One number per scale from pointwise dimension estimates, and its bootstrap interval."""

from __future__ import annotations

import numbers

import numpy as np
import numpy.typing as npt

from repscope._validation import InputError, check_random_state

__all__ = ["AGGREGATES", "aggregate", "bootstrap_ci"]

AGGREGATES: tuple[str, ...] = ("mean", "harmonic", "median")
# bootstrap resamples are drawn in blocks of at most this many float64 values (64 MiB)
_BLOCK_ELEMENTS = 2**23


def aggregate(values: npt.ArrayLike, how: str = "mean") -> float | npt.NDArray[np.float64]:
    """Aggregate pointwise estimates over points (axis 0).

    Parameters
    ----------
    values : array-like of shape (n_points,) or (n_points, n_scales)
        Pointwise estimates, e.g. from
        :func:`repscope.dimension.local.pointwise_dimension`.
    how : {"mean", "harmonic", "median"}
        ``"mean"`` (Levina & Bickel 2004), ``"harmonic"`` = ``1 / mean(1 / m)`` (MacKay &
        Ghahramani 2005; the pooled MLE), or ``"median"``.

    Returns
    -------
    float or ndarray of shape (n_scales,)
        A float for 1-D ``values``, one value per column for 2-D ``values``.
    """
    arr = _check_values(values, how)
    out = _reduce(arr, how, axis=0)
    return float(out) if arr.ndim == 1 else out


def bootstrap_ci(
    values: npt.ArrayLike,
    how: str,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> npt.NDArray[np.float64]:
    """Percentile bootstrap confidence interval of :func:`aggregate` over points.

    Points (rows) are resampled with replacement, jointly for all columns, so intervals of
    different scales come from the same resamples.

    Parameters
    ----------
    values : array-like of shape (n_points,) or (n_points, n_scales)
        Pointwise estimates.
    how : {"mean", "harmonic", "median"}
        The aggregate whose interval is wanted.
    n_bootstrap : int, default 1000
        Number of resamples.
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    random_state : int, Generator or None, default 0
        Seed of the resampling.

    Returns
    -------
    ndarray of shape (n_scales, 2), or (2,) for 1-D ``values``
        Lower and upper percentile bounds.
    """
    arr = _check_values(values, how)
    if not isinstance(n_bootstrap, numbers.Integral) or n_bootstrap < 1:
        raise InputError(f"n_bootstrap={n_bootstrap!r} must be a positive integer, e.g. 1000.")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence={confidence!r} must be in (0, 1), e.g. 0.95.")
    rng = check_random_state(random_state)
    table = arr.reshape(arr.shape[0], -1)
    n, m = table.shape
    block = max(1, _BLOCK_ELEMENTS // (n * m))
    stats = np.empty((n_bootstrap, m))
    for start in range(0, n_bootstrap, block):
        stop = min(start + block, n_bootstrap)
        rows = rng.integers(0, n, size=(stop - start, n))
        stats[start:stop] = _reduce(table[rows], how, axis=1)
    tail = (1.0 - confidence) / 2.0
    ci = np.quantile(stats, [tail, 1.0 - tail], axis=0).T
    return ci[0] if arr.ndim == 1 else ci


def _reduce(values: np.ndarray, how: str, axis: int) -> np.ndarray:
    if how == "mean":
        return values.mean(axis=axis)
    if how == "median":
        return np.median(values, axis=axis)
    with np.errstate(divide="ignore"):
        return 1.0 / np.mean(1.0 / values, axis=axis)


def _check_values(values: npt.ArrayLike, how: str) -> np.ndarray:
    if how not in AGGREGATES:
        raise InputError(f"how={how!r} is unknown; pass one of {', '.join(AGGREGATES)}.")
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise InputError(
            f"values must be (n_points,) or (n_points, n_scales) with n_points >= 1, got shape "
            f"{arr.shape}; pass the output of pointwise_dimension."
        )
    if np.isnan(arr).any():
        raise InputError("values contains NaN; drop those points before aggregating.")
    if how == "harmonic" and (arr <= 0).any():
        raise InputError(
            "how='harmonic' needs positive values (it averages 1/m); use how='mean' or "
            "'median' for values <= 0."
        )
    return arr
