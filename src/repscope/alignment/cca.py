"""Canonical correlation analysis (CCA) and its SVCCA and PWCCA summaries.

The canonical correlations of column-centred ``X`` and ``Y`` are the singular values of
``Uxᵀ Uy``, where ``Ux``, ``Uy`` are orthonormal bases of their column spaces (from a thin SVD,
which also handles rank-deficient inputs). This never inverts a covariance matrix, so it is
stable for ill-conditioned embeddings. The canonical correlations, hence
:func:`cca_similarity`, are invariant to translation and to invertible linear maps of either side
(they leave the column space unchanged); SVCCA's truncation and PWCCA's weights are not.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

from repscope._validation import InputError
from repscope.alignment._pairs import centre, check_pair

__all__ = ["canonical_correlations", "cca_similarity", "pwcca", "svcca"]


def canonical_correlations(X: npt.ArrayLike, Y: npt.ArrayLike) -> np.ndarray:
    """All canonical correlations between two embeddings, descending.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)

    Returns
    -------
    ndarray of shape (min(rank_x, rank_y),)
        In [0, 1], descending; ranks of the centred data.

    Warns
    -----
    UserWarning
        When ``rank_x + rank_y > n_samples - 1``: some correlations then equal 1 by construction.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((30, 2))
    >>> canonical_correlations(X, X @ [[2.0, 1.0], [0.0, 1.0]]).round(12)
    array([1., 1.])
    """
    return _canonical(X, Y, "canonical_correlations")[2]


def cca_similarity(X: npt.ArrayLike, Y: npt.ArrayLike) -> float:
    """Mean canonical correlation between two embeddings.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)

    Returns
    -------
    float
        Mean of :func:`canonical_correlations`, in [0, 1].

    References
    ----------
    Hotelling (1936), "Relations between two sets of variates", Biometrika 28; the mean
    correlation is the summary used by Raghu et al. (2017).
    """
    return float(_canonical(X, Y, "cca_similarity")[2].mean())


def svcca(X: npt.ArrayLike, Y: npt.ArrayLike, *, keep: float = 0.99) -> float:
    """SVCCA: mean canonical correlation after keeping the top singular directions of each side.

    Each centred embedding is reduced to its fewest leading singular directions whose squared
    singular values reach ``keep`` of the total variance; the result is the mean canonical
    correlation between the two reduced embeddings.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
    keep : float
        Fraction of variance kept on each side, in (0, 1].

    Returns
    -------
    float
        In [0, 1].

    References
    ----------
    Raghu, Gilmer, Yosinski & Sohl-Dickstein (2017), "SVCCA: Singular Vector Canonical
    Correlation Analysis for Deep Learning Dynamics and Interpretability", NeurIPS, section 2.
    """
    if not (isinstance(keep, (int, float, np.floating)) and 0 < keep <= 1):
        raise InputError(f"keep={keep!r} must be in (0, 1]; pass e.g. keep=0.99.")
    return float(_canonical(X, Y, "svcca", keep=float(keep))[2].mean())


def pwcca(X: npt.ArrayLike, Y: npt.ArrayLike) -> float:
    """Projection-weighted CCA (PWCCA): canonical correlations weighted by how much they explain.

    With canonical variates ``h_i`` (unit-norm columns of ``Xc`` projected onto the canonical
    directions) and centred feature columns ``x_j``, the weights are
    ``α_i = Σ_j |<h_i, x_j>| / Σ_i Σ_j |<h_i, x_j>|`` and the score is ``Σ_i α_i ρ_i``. The
    weights are taken on the side with fewer features, as in the authors' code; with equal
    widths X's side is used, so ``pwcca(X, Y)`` and ``pwcca(Y, X)`` may then differ. The weights
    depend on the feature basis: PWCCA is not invariant to rotations of the weighted side.

    The authors' code projects uncentred activations onto the variates; repscope projects the
    centred ones, as in the paper's equations (the two differ when feature means are large).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)

    Returns
    -------
    float
        In [0, 1].

    References
    ----------
    Morcos, Raghu & Bengio (2018), "Insights on representational similarity in neural networks
    with canonical correlation", NeurIPS, eqs. 2-3.
    """
    Xc, Yc, rho, hx, hy = _canonical(X, Y, "pwcca")
    h, acts = (hx, Xc) if Xc.shape[1] <= Yc.shape[1] else (hy, Yc)
    weights = np.abs(h.T @ acts).sum(axis=1)
    return float(weights @ rho / weights.sum())


def _canonical(
    X: npt.ArrayLike, Y: npt.ArrayLike, measure: str, keep: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate, centre, take bases and run CCA: ``(Xc, Yc, rho, hx, hy)``."""
    X, Y = check_pair(X, Y, measure=measure, min_samples=3)
    Xc = centre(X, name="X", measure=measure)
    Yc = centre(Y, name="Y", measure=measure)
    rho, hx, hy = _cca(_basis(Xc, keep), _basis(Yc, keep))
    return Xc, Yc, rho, hx, hy


def _basis(Xc: np.ndarray, keep: float | None = None) -> np.ndarray:
    """Orthonormal basis of the column space of centred ``Xc``, optionally variance-truncated.

    Returns
    -------
    ndarray of shape (n_samples, r)
        ``r`` is the numerical rank (``numpy.linalg.matrix_rank``'s tolerance), or the fewest
        leading directions reaching ``keep`` of the variance when given.
    """
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    rank = int(np.sum(s > s[0] * max(Xc.shape) * np.finfo(np.float64).eps))
    if keep is not None:
        var = np.cumsum(s[:rank] ** 2)
        # relative slack: keep=1.0 must not demand more than the rounded total
        rank = min(rank, int(np.searchsorted(var, keep * var[-1] * (1 - 1e-12))) + 1)
    return U[:, :rank]


def _cca(Ux: np.ndarray, Uy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical correlations and unit-norm canonical variates from orthonormal bases.

    Returns
    -------
    rho : ndarray of shape (m,)
        ``m = min(r_x, r_y)``, descending, clipped to [0, 1].
    hx, hy : ndarray of shape (n_samples, m)
        Canonical variates of each side: ``hx[:, i] · hy[:, i] = rho[i]``.
    """
    n, rx, ry = Ux.shape[0], Ux.shape[1], Uy.shape[1]
    if rx + ry > n - 1:
        warnings.warn(
            f"CCA on n_samples={n} with ranks {rx} (X) and {ry} (Y): at least "
            f"{rx + ry - (n - 1)} canonical correlations equal 1 by construction; reduce "
            "dimensions (e.g. svcca) or pass more stimuli.",
            stacklevel=4,
        )
    A, rho, Bt = np.linalg.svd(Ux.T @ Uy, full_matrices=False)
    m = min(rx, ry)
    return np.clip(rho[:m], 0.0, 1.0), Ux @ A[:, :m], Uy @ Bt[:m].T
