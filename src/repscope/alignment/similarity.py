"""Similarity measures between two representations of the same stimuli, one call each.

Every measure takes ``X`` of shape (n_samples, n_features_x) and ``Y`` of shape
(n_samples, n_features_y) whose rows are the same stimuli in the same order, and returns a
float or a small frozen dataclass. This module defines RSA, mutual k-NN alignment and the
Procrustes shape distance, and re-exports CKA (:mod:`repscope.alignment.cka`) and the CCA family
(:mod:`repscope.alignment.cca`), so that every measure is importable from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.spatial.distance import pdist

from repscope._validation import InputError
from repscope.alignment._pairs import (
    centre,
    check_n_neighbors,
    check_pair,
    check_pairwise_memory,
)
from repscope.alignment.cca import canonical_correlations, cca_similarity, pwcca, svcca
from repscope.alignment.cka import linear_cka, linear_cka_debiased, rbf_cka, rbf_cka_debiased
from repscope.neighbors import knn

__all__ = [
    "MutualKNN",
    "MutualKNNProfile",
    "canonical_correlations",
    "cca_similarity",
    "linear_cka",
    "linear_cka_debiased",
    "mutual_knn",
    "mutual_knn_profile",
    "procrustes_distance",
    "pwcca",
    "rbf_cka",
    "rbf_cka_debiased",
    "rsa",
    "svcca",
]

_RDM_METRICS = ("correlation", "euclidean")
_COMPARE = {
    "spearman": stats.spearmanr,
    "pearson": stats.pearsonr,
    "kendall": stats.kendalltau,
}
# the memory model of each comparison (repscope._memory.PAIRWISE_METHODS)
_RSA_MEMORY = {"spearman": "rsa", "pearson": "rsa-pearson", "kendall": "rsa-kendall"}


# --------------------------------------------------------------------------- RSA


def rsa(
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    *,
    rdm: Literal["correlation", "euclidean"] = "correlation",
    compare: Literal["spearman", "pearson", "kendall"] = "spearman",
) -> float:
    """Representational similarity analysis: correlation between the two RDMs.

    Each side's representational dissimilarity matrix holds, for every pair of distinct
    stimuli, ``1 - Pearson r`` between their feature vectors (``rdm="correlation"``) or their
    Euclidean distance; the ``n(n-1)/2`` upper-triangle entries of the two RDMs are then
    correlated by Spearman's rho, Pearson's r or Kendall's tau-b.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
    rdm : {"correlation", "euclidean"}
        Dissimilarity between two stimuli.
    compare : {"spearman", "pearson", "kendall"}
        Correlation between the two RDMs.

    Returns
    -------
    float
        In [-1, 1].

    References
    ----------
    Kriegeskorte, Mur & Bandettini (2008), "Representational similarity analysis", Frontiers
    in Systems Neuroscience 2:4.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((20, 5))
    >>> round(rsa(X, 2.0 * X + 1.0), 12)
    1.0
    """
    if rdm not in _RDM_METRICS:
        raise InputError(f"rdm={rdm!r} is not known; pass 'correlation' or 'euclidean'.")
    if compare not in _COMPARE:
        raise InputError(
            f"compare={compare!r} is not known; pass 'spearman', 'pearson' or 'kendall'."
        )
    X, Y = check_pair(X, Y, measure="rsa", min_samples=3)
    check_pairwise_memory(len(X), _RSA_MEMORY[compare], measure="rsa")
    rdm_x, rdm_y = _rdm(X, rdm, "X"), _rdm(Y, rdm, "Y")
    return float(_COMPARE[compare](rdm_x, rdm_y)[0])


def _rdm(X: np.ndarray, metric: str, name: str) -> np.ndarray:
    """Condensed RDM (upper triangle, scipy's ``pdist`` order) of shape (n(n-1)/2,)."""
    if metric == "correlation":
        flat = int(np.sum(np.ptp(X, axis=1) == 0))
        if flat:
            raise InputError(
                f"{name} has {flat} rows that are constant across features; their correlation "
                "distance is undefined, pass rdm='euclidean' or drop those rows."
            )
    out = pdist(X, metric)
    if np.ptp(out) == 0:
        raise InputError(
            f"every pairwise {metric} dissimilarity of {name} is equal; the RDM has no "
            "variance to correlate, pass a non-degenerate embedding."
        )
    return out


# --------------------------------------------------------------------------- mutual k-NN


@dataclass(frozen=True)
class MutualKNN:
    """Mutual k-nearest-neighbour alignment.

    Attributes
    ----------
    score : float
        Mean of ``per_point``, in [0, 1].
    per_point : ndarray of shape (n_samples,)
        ``|N_k^X(i) ∩ N_k^Y(i)| / k`` for each stimulus ``i``.
    k : int
        Neighbourhood size.
    """

    score: float
    per_point: np.ndarray
    k: int


@dataclass(frozen=True)
class MutualKNNProfile:
    """Mutual k-NN alignment at several neighbourhood sizes, from one kNN search per side.

    Attributes
    ----------
    ks : ndarray of shape (n_scales,)
        Neighbourhood sizes, ascending.
    scores : ndarray of shape (n_scales,)
        Mean overlap fraction at each ``k``.
    per_point : ndarray of shape (n_samples, n_scales)
        Overlap fraction of each stimulus at each ``k``.
    """

    ks: np.ndarray
    scores: np.ndarray
    per_point: np.ndarray


def mutual_knn(
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    *,
    k: int = 10,
    metric: Literal["cosine", "euclidean"] = "cosine",
) -> MutualKNN:
    """Mutual k-NN alignment (Huh et al. 2024): mean shared fraction of k nearest neighbours.

    For each stimulus ``i``, ``N_k^X(i)`` is its ``k`` nearest other stimuli in X (exact, ties
    by smaller index, see :func:`repscope.knn`); the score is the mean over ``i`` of
    ``|N_k^X(i) ∩ N_k^Y(i)| / k``. With ``metric="cosine"`` (the paper's setting) rows are
    scaled to unit norm first, so neighbours are ranked by cosine similarity.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
    k : int
        Neighbourhood size, ``1 <= k < n_samples``.
    metric : {"cosine", "euclidean"}
        Neighbour ranking. ``"euclidean"`` uses the raw rows (not the paper's setting).

    Returns
    -------
    MutualKNN

    References
    ----------
    Huh, Cheung, Wang & Isola (2024), "The Platonic Representation Hypothesis", ICML,
    section 2 ("mutual nearest-neighbor metric").

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((30, 4))
    >>> mutual_knn(X, 5.0 * X, k=5).score
    1.0
    """
    profile = _profile(X, Y, (k,), metric, "mutual_knn", "k")
    return MutualKNN(float(profile.scores[0]), profile.per_point[:, 0], int(profile.ks[0]))


def mutual_knn_profile(
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    ks: Iterable[int],
    *,
    metric: Literal["cosine", "euclidean"] = "cosine",
) -> MutualKNNProfile:
    """Mutual k-NN alignment for a sweep of ``k``, from one kNN search at ``max(ks)`` per side.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
    ks : iterable of int
        Neighbourhood sizes, each ``1 <= k < n_samples``; sorted and de-duplicated.
    metric : {"cosine", "euclidean"}
        As in :func:`mutual_knn`.

    Returns
    -------
    MutualKNNProfile

    References
    ----------
    Huh et al. (2024), ICML, section 2.
    """
    return _profile(X, Y, tuple(ks), metric, "mutual_knn_profile", "ks")


def _profile(
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    ks: tuple[object, ...],
    metric: str,
    measure: str,
    name: str,
) -> MutualKNNProfile:
    if metric not in ("cosine", "euclidean"):
        raise InputError(f"metric={metric!r} is not known; pass 'cosine' or 'euclidean'.")
    X, Y = check_pair(X, Y, measure=measure, min_samples=2)
    if len(ks) == 0:
        raise InputError(f"{name} is empty; pass at least one neighbourhood size, e.g. [10].")
    checked = sorted({check_n_neighbors(k, len(X), name="k") for k in ks})
    k_max = checked[-1]
    ranks = _shared_ranks(_neighbours(X, k_max, metric, "X"), _neighbours(Y, k_max, metric, "Y"))
    ks_arr = np.asarray(checked, dtype=np.int64)
    per_point = np.stack([(ranks < k).sum(axis=1) / k for k in checked], axis=1)
    return MutualKNNProfile(ks_arr, per_point.mean(axis=0), per_point)


def _neighbours(X: np.ndarray, k: int, metric: str, name: str) -> np.ndarray:
    """Indices of the ``k`` nearest other rows, shape (n_samples, k)."""
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1)
        zero = int(np.sum(norms == 0))
        if zero:
            raise InputError(
                f"{name} has {zero} rows of zero norm; their cosine neighbours are undefined, "
                "drop them or pass metric='euclidean'."
            )
        X = X / norms[:, None]
    return knn(X, k).indices


def _shared_ranks(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """For each neighbour in ``A``: ``max(rank in A, rank in B)``, or ``k_max`` if absent in B.

    Neighbour ``j`` of ``i`` lies in both top-k sets exactly when this value is ``< k``.

    Parameters
    ----------
    A, B : ndarray of shape (n_samples, k_max), int
        Neighbour indices per row (distinct within a row).

    Returns
    -------
    ndarray of shape (n_samples, k_max), int
    """
    n, k_max = A.shape
    # one sorted key per (row, neighbour) of B; look up every (row, neighbour) of A
    keys_b = (np.arange(n)[:, None] * n + B).ravel()
    order = np.argsort(keys_b, kind="stable")
    sorted_b = keys_b[order]
    keys_a = (np.arange(n)[:, None] * n + A).ravel()
    pos = np.minimum(np.searchsorted(sorted_b, keys_a), sorted_b.size - 1)
    found = sorted_b[pos] == keys_a
    rank_b = np.where(found, order[pos] % k_max, k_max).reshape(n, k_max)
    return np.maximum(rank_b, np.arange(k_max)[None, :])


# --------------------------------------------------------------------------- Procrustes


def procrustes_distance(
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    *,
    metric: Literal["euclidean", "angular"] = "euclidean",
) -> float:
    """Orthogonal Procrustes shape distance (Williams et al. 2021).

    Both embeddings are column-centred and scaled to unit Frobenius norm; the narrower one is
    padded with zero columns. Then ``"euclidean"`` is ``min_Q ||X - Y Q||_F`` over orthogonal
    ``Q``, equal to ``sqrt(2 - 2 ||Xᵀ Y||_*)``, in [0, 2]; ``"angular"`` is
    ``arccos(||Xᵀ Y||_*)``, in radians in [0, π/2]. Both are metrics on shapes: zero exactly
    when one embedding is a rotation/reflection, translation and scaling of the other.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
    metric : {"euclidean", "angular"}

    Returns
    -------
    float
        A distance: 0 for identical shapes.

    References
    ----------
    Williams, Kunz, Kornblith & Linderman (2021), "Generalized Shape Metrics on Neural
    Representations", NeurIPS, eqs. 2-3 (Procrustes size-and-shape and angular shape metrics;
    here with unit-norm scaling).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((20, 3))
    >>> Q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    >>> round(procrustes_distance(X, 4.0 * X @ Q + 1.0), 6)
    0.0
    """
    if metric not in ("euclidean", "angular"):
        raise InputError(f"metric={metric!r} is not known; pass 'euclidean' or 'angular'.")
    X, Y = check_pair(X, Y, measure="procrustes_distance", min_samples=2)
    nuclear = float(np.linalg.svd(_shape(X, "X").T @ _shape(Y, "Y"), compute_uv=False).sum())
    nuclear = min(nuclear, 1.0)
    if metric == "angular":
        return float(np.arccos(nuclear))
    return float(np.sqrt(max(2.0 - 2.0 * nuclear, 0.0)))


def _shape(X: np.ndarray, name: str) -> np.ndarray:
    """Centred, unit-Frobenius-norm embedding with at most ``n_samples`` columns.

    A wide embedding is replaced by ``U S`` from its thin SVD: an orthogonal change of basis
    (plus zero columns) that leaves every Procrustes distance unchanged and keeps ``Xᵀ Y``
    small.
    """
    Xc = centre(X, name=name, measure="procrustes_distance")
    if Xc.shape[1] > Xc.shape[0]:
        U, s, _ = np.linalg.svd(Xc, full_matrices=False)
        Xc = U * s
    return Xc / np.linalg.norm(Xc)
