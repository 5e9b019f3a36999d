"""Global (spectral) dimension measures of an embedding: PCA counts, participation ratio,
effective rank and the eigenspectrum power-law exponent.

These are the global measures the LID paper contrasts with local intrinsic dimension
(METHOD.md §3, "Global measures"). All are computed from one SVD of the centred data.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from repscope import _memory
from repscope._validation import InputError, check_embedding

__all__ = ["Spectrum", "eigenvalues", "spectrum"]

#: Leading ranks skipped by the default power-law fit (Stringer et al. 2019 fit from rank 11).
_ALPHA_FIRST_RANK = 11
#: Largest rank used by the default fit (Stringer et al. 2019 fit up to rank 500).
_ALPHA_LAST_RANK = 500
#: Fewest positive eigenvalues for which the default range skips the leading ranks.
_ALPHA_MIN_POSITIVE = 40
#: Relative slack for the cumulative-variance thresholds, so that e.g. exactly 9 of 10
#: equal eigenvalues count as 90 % despite rounding in the cumulative sum.
_THRESHOLD_RTOL = 1e-12


@dataclass(frozen=True)
class Spectrum:
    """Global spectral summary of an embedding.

    Attributes
    ----------
    eigenvalues : ndarray of shape (r,)
        Covariance eigenvalues (ddof=1), descending, in squared input units;
        ``r = min(n_samples, n_features)``. Numerically zero ones are exactly 0.
    pca90 : int
        Fewest principal components whose variance reaches 90 % of the total.
    pca95 : int
        The same for 95 %.
    participation_ratio : float
        ``(Σλ)² / Σλ²``, between 1 and the number of positive eigenvalues.
    effective_rank : float
        ``exp(H(p))`` with ``p = σ / Σσ`` over the singular values σ of the centred data
        (Roy & Vetterli 2007), ``0 log 0 = 0``.
    alpha : float
        Power-law exponent α of ``λ_i ∝ i^(−α)``, least-squares fit of ``log λ_i`` on
        ``log i`` over `alpha_range`. NaN only when fewer than 2 eigenvalues are positive
        (rank-1 data), with a warning.
    alpha_range : tuple of (int, int)
        1-based inclusive ranks used for the fit; ``(1, 1)`` when `alpha` is NaN.
    n_samples : int
        Rows of the input.
    n_features : int
        Columns of the input.
    """

    eigenvalues: np.ndarray
    pca90: int
    pca95: int
    participation_ratio: float
    effective_rank: float
    alpha: float
    alpha_range: tuple[int, int]
    n_samples: int
    n_features: int


def eigenvalues(X: npt.ArrayLike) -> np.ndarray:
    """Covariance eigenvalues of the centred data, from one SVD.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embedding; rows are stimuli.

    Returns
    -------
    ndarray of shape (min(n_samples, n_features),)
        Eigenvalues of the sample covariance (ddof=1), descending, in squared input units.
        Centring leaves at most ``n_samples - 1`` of them nonzero; every eigenvalue whose
        singular value is below ``max(n_samples, n_features) * eps * σ_max`` (the
        ``numpy.linalg.matrix_rank`` tolerance) is set to exactly 0 and kept.

    Raises
    ------
    InputError
        Invalid array (see ``check_embedding``) or all rows identical (zero variance).

    Examples
    --------
    >>> import numpy as np
    >>> eigenvalues(np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [2.0, 1.0]])).round(4)
    array([1.3333, 0.3333])
    """
    _preflight(X, "eigenvalues")
    arr = check_embedding(X)
    return _singular_values(arr) ** 2 / (arr.shape[0] - 1)


def _preflight(X: npt.ArrayLike, measure: str) -> None:
    """Refuse, before the float64 copy, an SVD whose estimated peak exceeds free memory."""
    shape = _memory.array_shape(X)
    if shape is None:
        return
    n, d, dtype = shape
    need = _memory.spectrum_bytes(n, d, itemsize=8 if dtype == np.float64 else 4)
    _memory.check_memory(
        f"{measure}: singular values of {_memory.describe((n, d), dtype)}",
        need,
        "cpu",
        "pass a random subsample of the rows, e.g. "
        "X[np.random.default_rng(0).choice(len(X), 50000, replace=False)].",
    )


def _singular_values(X: np.ndarray) -> np.ndarray:
    # subtract a row first: identical rows then centre to exact zeros, not rounding noise
    shifted = X - X[0]
    if not shifted.any():
        raise InputError(
            f"X has zero variance: all {X.shape[0]} rows are identical; "
            "pass an embedding with at least two distinct rows."
        )
    shifted -= shifted.mean(axis=0)  # in place: one n × d copy fewer than a centred copy
    sigma = np.linalg.svd(shifted, compute_uv=False)
    sigma[sigma <= max(X.shape) * np.finfo(sigma.dtype).eps * sigma[0]] = 0.0
    return sigma


def spectrum(X: npt.ArrayLike, *, alpha_range: tuple[int, int] | None = None) -> Spectrum:
    """Global spectral dimension measures of an embedding.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embedding; rows are stimuli. Centred internally.
    alpha_range : tuple of (int, int) or None
        1-based inclusive ranks ``(first, last)`` over which α is fitted; needs
        ``1 <= first < last <= r⁺``, r⁺ the number of positive eigenvalues. Default
        (None): ``(11, min(500, r⁺ // 2))`` when ``r⁺ >= 40``, else ``(1, r⁺)``.
        The default follows Stringer et al. (2019), who fit ranks 11–500: the leading
        ten eigenvalues carry a few dominant directions that sit above any power law,
        and the lower half of a finite-sample spectrum bends away from it (sample noise,
        rank loss, PCA truncation), so it is left out too. Below 40 positive eigenvalues
        that rule would leave fewer than 10 ranks, so the whole positive spectrum is used.

    Returns
    -------
    Spectrum

    Raises
    ------
    InputError
        Invalid array, all rows identical, or `alpha_range` outside the positive spectrum.

    Warns
    -----
    UserWarning
        Fewer than 2 positive eigenvalues: α is NaN.

    References
    ----------
    Roy, O. & Vetterli, M. (2007). The effective rank: a measure of effective
    dimensionality. EUSIPCO. Eq. (1)–(2).
    Stringer, C. et al. (2019). High-dimensional geometry of population responses in
    visual cortex. Nature 571, 361–365. Power-law fit over ranks 11–500.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(2000, 5))
    >>> s = spectrum(X)
    >>> s.pca90, round(s.participation_ratio)
    (5, 5)
    """
    _preflight(X, "spectrum")
    arr = check_embedding(X)
    sigma = _singular_values(arr)
    lam = sigma**2 / (arr.shape[0] - 1)
    alpha, used = _power_law_exponent(lam, alpha_range)
    return Spectrum(
        eigenvalues=lam,
        pca90=_n_components(lam, 0.90),
        pca95=_n_components(lam, 0.95),
        participation_ratio=float(lam.sum() ** 2 / (lam**2).sum()),
        effective_rank=_effective_rank(sigma),
        alpha=alpha,
        alpha_range=used,
        n_samples=arr.shape[0],
        n_features=arr.shape[1],
    )


def _n_components(lam: np.ndarray, fraction: float) -> int:
    cumulative = np.cumsum(lam)
    target = fraction * cumulative[-1] * (1.0 - _THRESHOLD_RTOL)
    return int(np.searchsorted(cumulative, target, side="left")) + 1


def _effective_rank(sigma: np.ndarray) -> float:
    p = sigma[sigma > 0] / sigma.sum()  # zero singular values add 0 log 0 = 0 to the entropy
    return float(np.exp(-(p * np.log(p)).sum()))


def _power_law_exponent(
    lam: np.ndarray, alpha_range: tuple[int, int] | None
) -> tuple[float, tuple[int, int]]:
    n_positive = int((lam > 0).sum())
    if alpha_range is None:
        if n_positive < 2:
            warnings.warn(
                f"only {n_positive} positive eigenvalue(s); the power-law exponent alpha is "
                "undefined and set to NaN.",
                UserWarning,
                stacklevel=3,
            )
            return float("nan"), (1, 1)
        if n_positive >= _ALPHA_MIN_POSITIVE:
            first, last = _ALPHA_FIRST_RANK, min(_ALPHA_LAST_RANK, n_positive // 2)
        else:
            first, last = 1, n_positive
    else:
        first, last = _check_alpha_range(alpha_range, n_positive)
    ranks = np.arange(first, last + 1, dtype=np.float64)
    slope = np.polyfit(np.log(ranks), np.log(lam[first - 1 : last]), deg=1)[0]
    return float(-slope), (first, last)


def _check_alpha_range(alpha_range: tuple[int, int], n_positive: int) -> tuple[int, int]:
    pair = tuple(alpha_range) if isinstance(alpha_range, (tuple, list)) else ()
    if len(pair) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair
    ):
        raise InputError(
            f"alpha_range={alpha_range!r} is not a pair of integers; pass e.g. (11, 100)."
        )
    first, last = int(pair[0]), int(pair[1])
    if not 1 <= first < last <= n_positive:
        raise InputError(
            f"alpha_range={alpha_range!r} must satisfy 1 <= first < last <= {n_positive} "
            f"(the number of positive eigenvalues); pass a range inside (1, {n_positive})."
        )
    return first, last
