"""Centred kernel alignment (CKA): linear and Gaussian (RBF) kernels, biased and debiased.

CKA compares two representations of the same stimuli through their stimulus-by-stimulus
kernel matrices ``K`` (from X) and ``L`` (from Y)::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

The *biased* HSIC is ``trace(H K H L) / (n - 1)²`` with the centring matrix
``H = I - 11ᵀ/n`` (Kornblith et al. 2019, eq. 3); the *debiased* HSIC is the unbiased
U-statistic estimator of Song et al. (2012, eq. 5), whose normalization cancels in the ratio.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import pdist, squareform

from repscope._validation import InputError
from repscope.alignment._pairs import (
    centre,
    check_pair,
    check_pairwise_memory,
    frobenius_cross,
)

__all__ = ["linear_cka", "linear_cka_debiased", "rbf_cka", "rbf_cka_debiased"]


def linear_cka(X: npt.ArrayLike, Y: npt.ArrayLike) -> float:
    """Linear CKA with the biased HSIC estimator (Kornblith et al. 2019).

    ``||Ycᵀ Xc||_F² / (||Xcᵀ Xc||_F ||Ycᵀ Yc||_F)`` with column-centred ``Xc``, ``Yc``; equal to
    CKA of the linear kernels ``K = X Xᵀ``, ``L = Y Yᵀ``. Lies in [0, 1]; invariant to orthogonal
    maps and isotropic scaling of either side, not to general invertible linear maps.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
        Same stimuli as ``X``, same row order.

    Returns
    -------
    float

    References
    ----------
    Kornblith, Norouzi, Lee & Hinton (2019), "Similarity of Neural Network Representations
    Revisited", ICML, eq. 5 (feature-space form of linear CKA).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((50, 4))
    >>> round(linear_cka(X, 3.0 * X), 12)
    1.0
    """
    X, Y = check_pair(X, Y, measure="linear_cka")
    Xc = centre(X, name="X", measure="linear_cka")
    Yc = centre(Y, name="Y", measure="linear_cka")
    cross = frobenius_cross(Xc, Yc)
    return float(cross / np.sqrt(frobenius_cross(Xc, Xc) * frobenius_cross(Yc, Yc)))


def linear_cka_debiased(X: npt.ArrayLike, Y: npt.ArrayLike) -> float:
    """Linear CKA with the unbiased HSIC estimator (Song et al. 2012).

    Same ratio as :func:`linear_cka`, with each HSIC replaced by the U-statistic (on linear
    kernels of column-centred data, without forming them)::

        n(n-3) HSIC_u(K, L) = tr(K̃ L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n-1)(n-2)) - 2/(n-2) · 1ᵀK̃L̃1

    where ``K̃`` is ``K`` with its diagonal set to zero. Removes the positive bias of
    :func:`linear_cka` when features outnumber stimuli; can be negative.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
        ``n_samples >= 4``.
    Y : array-like of shape (n_samples, n_features_y)

    Returns
    -------
    float

    Raises
    ------
    InputError
        Fewer than 4 rows, or a self-HSIC estimate that is not positive (too few stimuli).

    References
    ----------
    Song, Smola, Gretton, Bedo & Borgwardt (2012), "Feature Selection via Dependence
    Maximization", JMLR 13, eq. 5; Nguyen, Raghu & Kornblith (2021), ICLR, Appendix (debiased CKA).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((50, 4))
    >>> round(linear_cka_debiased(X, -2.0 * X), 12)
    1.0
    """
    X, Y = check_pair(X, Y, measure="linear_cka_debiased", min_samples=4)
    Xc = centre(X, name="X", measure="linear_cka_debiased")
    Yc = centre(Y, name="Y", measure="linear_cka_debiased")
    hxy = _hsic_unbiased_linear(Xc, Yc)
    hxx = _hsic_unbiased_linear(Xc, Xc)
    hyy = _hsic_unbiased_linear(Yc, Yc)
    _check_positive(hxx, hyy, len(X), "linear_cka_debiased")
    return float(hxy / np.sqrt(hxx * hyy))


def rbf_cka(X: npt.ArrayLike, Y: npt.ArrayLike, *, sigma_factor: float = 1.0) -> float:
    """CKA of Gaussian (RBF) kernels with the biased HSIC estimator.

    ``K_ij = exp(-||x_i - x_j||² / (2 σ_X²))`` with ``σ_X = sigma_factor × median`` of the
    ``n(n-1)/2`` distances between distinct rows of X (likewise for Y); then
    ``<HKH, HLH>_F / (||HKH||_F ||HLH||_F)``. Forms n × n matrices: memory ``O(n²)``.

    Kornblith et al.'s reference code takes the median over the full n × n squared-distance
    matrix, zero diagonal included; repscope uses distinct pairs only (the two agree as n grows).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
    sigma_factor : float
        Bandwidth as a multiple of the median pairwise distance; positive.

    Returns
    -------
    float
        In [0, 1].

    References
    ----------
    Kornblith et al. (2019), ICML, section 3 ("Kernel selection"), RBF CKA.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((40, 3))
    >>> round(rbf_cka(X, X + 5.0), 12)
    1.0
    """
    X, Y = check_pair(X, Y, measure="rbf_cka", min_samples=3)
    check_pairwise_memory(len(X), "cka-rbf", measure="rbf_cka")
    K = _rbf_gram(X, sigma_factor, "X")
    L = _rbf_gram(Y, sigma_factor, "Y")
    Kc, Lc = _centre_gram(K), _centre_gram(L)
    return float(np.sum(Kc * Lc) / np.sqrt(np.sum(Kc * Kc) * np.sum(Lc * Lc)))


def rbf_cka_debiased(X: npt.ArrayLike, Y: npt.ArrayLike, *, sigma_factor: float = 1.0) -> float:
    """CKA of Gaussian (RBF) kernels with the unbiased HSIC estimator (Song et al. 2012).

    Kernels as in :func:`rbf_cka`; each HSIC is the U-statistic given in
    :func:`linear_cka_debiased`. Can be negative. Memory ``O(n²)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
        ``n_samples >= 4``.
    Y : array-like of shape (n_samples, n_features_y)
    sigma_factor : float
        Bandwidth as a multiple of the median pairwise distance; positive.

    Returns
    -------
    float

    References
    ----------
    Song et al. (2012), JMLR 13, eq. 5; Kornblith et al. (2019), ICML.
    """
    X, Y = check_pair(X, Y, measure="rbf_cka_debiased", min_samples=4)
    check_pairwise_memory(len(X), "cka-rbf-debiased", measure="rbf_cka_debiased")
    K = _rbf_gram(X, sigma_factor, "X")
    L = _rbf_gram(Y, sigma_factor, "Y")
    hxy, hxx, hyy = _hsic_unbiased_gram(K, L), _hsic_unbiased_gram(K, K), _hsic_unbiased_gram(L, L)
    _check_positive(hxx, hyy, len(K), "rbf_cka_debiased")
    return float(hxy / np.sqrt(hxx * hyy))


def _hsic_unbiased_linear(Xc: np.ndarray, Yc: np.ndarray) -> float:
    """``n(n-3) HSIC_u`` of linear kernels of centred data, without n × n matrices.

    With centred data ``K1 = 0``, so ``1ᵀK̃1 = -Σd``, ``1ᵀK̃L̃1 = d·e`` and
    ``tr(K̃L̃) = tr(KL) - d·e``, where ``d``, ``e`` are the squared row norms.
    """
    n = Xc.shape[0]
    d = np.einsum("ij,ij->i", Xc, Xc)
    e = np.einsum("ij,ij->i", Yc, Yc)
    return (
        frobenius_cross(Xc, Yc)
        - n / (n - 2) * float(d @ e)
        + float(d.sum() * e.sum()) / ((n - 1) * (n - 2))
    )


def _hsic_unbiased_gram(K: np.ndarray, L: np.ndarray) -> float:
    """``n(n-3) HSIC_u(K, L)`` from full kernel matrices (Song et al. 2012, eq. 5)."""
    n = K.shape[0]
    Kt = K - np.diag(np.diag(K))
    Lt = L - np.diag(np.diag(L))
    ones_k, ones_l = Kt.sum(axis=1), Lt.sum(axis=1)
    return float(
        np.sum(Kt * Lt)
        + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * float(ones_k @ ones_l)
    )


def _check_positive(hxx: float, hyy: float, n: int, measure: str) -> None:
    for name, value in (("X", hxx), ("Y", hyy)):
        if not value > 0:
            raise InputError(
                f"the unbiased HSIC of {name} with itself is {value:.3g}, not positive, at "
                f"n_samples={n}; {measure} is undefined here, pass more stimuli."
            )


def _rbf_gram(X: np.ndarray, sigma_factor: float, name: str) -> np.ndarray:
    """Gaussian kernel matrix with bandwidth ``sigma_factor × median pairwise distance``."""
    if not (isinstance(sigma_factor, (int, float, np.floating)) and 0 < sigma_factor < np.inf):
        raise InputError(
            f"sigma_factor={sigma_factor!r} must be a positive finite number; pass e.g. 1.0."
        )
    sq = pdist(X, "sqeuclidean")
    median = float(np.median(np.sqrt(sq)))
    if median == 0.0:
        raise InputError(
            f"{name} has median pairwise distance 0 (most rows are duplicates); the RBF "
            "bandwidth is undefined, drop duplicate rows."
        )
    sigma = sigma_factor * median
    K = squareform(np.exp(-sq / (2.0 * sigma * sigma)))
    np.fill_diagonal(K, 1.0)
    return K


def _centre_gram(K: np.ndarray) -> np.ndarray:
    """``H K H`` for symmetric ``K``: subtract row and column means, add back the grand mean."""
    means = K.mean(axis=0)
    return K - means[:, None] - means[None, :] + means.mean()
