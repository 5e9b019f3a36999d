"""Permutation nulls for alignment scores: shuffle which stimulus goes with which.

Under the null the rows of Y carry no correspondence with the rows of X, so Y's rows are
permuted (seeded) and the measure recomputed. For kernel and RDM measures the permutation acts
on precomputed matrices, ``L -> L[p][:, p]``, instead of recomputing features:

* ``cka`` / ``cka-rbf``: centred Gram matrices of X and Y are computed once (centring commutes
  with a simultaneous row/column permutation); each null score is ``<K, L_p> / (|K| |L|)``;
* ``rsa`` (spearman or pearson): the RDMs (ranks for spearman; a permutation keeps the
  multiset of ranks) are computed once; each null score is a Pearson correlation with the
  permuted upper triangle.

Every other method is recomputed on ``Y[p]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from repscope._validation import InputError, check_random_state
from repscope.alignment._pairs import centre, check_pair, check_pairwise_memory
from repscope.alignment.cka import _centre_gram, _rbf_gram
from repscope.alignment.methods import METHODS, align
from repscope.alignment.similarity import _rdm

__all__ = ["PermutationNull", "permutation_null"]

_DISTANCES = ("procrustes",)  # lower = more aligned


@dataclass(frozen=True)
class PermutationNull:
    """An alignment score beside its permutation null.

    Attributes
    ----------
    method : str
    score : float
        The observed score.
    null : ndarray of shape (n_permutations,)
        Scores with Y's rows permuted.
    null_mean, null_std : float
    excess : float
        ``score - null_mean``.
    p_value : float
        ``(1 + #{null at least as aligned as the score}) / (1 + n_permutations)``; "as
        aligned" is ``>=`` for similarities, ``<=`` for distances (procrustes).
    """

    method: str
    score: float
    null: np.ndarray
    null_mean: float
    null_std: float
    excess: float
    p_value: float


def permutation_null(
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    method: str = "cka",
    *,
    n_permutations: int = 1000,
    random_state: int | np.random.Generator | None = 0,
    rdm: str = "correlation",
    compare: str = "spearman",
    sigma_factor: float = 1.0,
    k: int = 10,
) -> PermutationNull:
    """Score of ``method`` with a permutation null over the stimulus correspondence.

    Parameters
    ----------
    X, Y : array-like of shape (n_samples, n_features_x), (n_samples, n_features_y)
    method : str
        One of :data:`repscope.alignment.methods.METHODS`.
    n_permutations : int
        Null draws (seeded).
    random_state : int, Generator or None
    rdm, compare : str
        For ``rsa``. ``sigma_factor`` for ``cka-rbf``; ``k`` for ``mutual-knn``.

    Returns
    -------
    PermutationNull

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5))
    >>> res = permutation_null(X, X @ rng.standard_normal((5, 4)), "cka", n_permutations=99)
    >>> res.p_value
    0.01
    """
    if method not in METHODS:
        raise InputError(f"method={method!r} is not known; pass one of {', '.join(METHODS)}.")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)):
        raise InputError(f"n_permutations={n_permutations!r} is not an integer; pass e.g. 1000.")
    if n_permutations < 1:
        raise InputError(f"n_permutations={n_permutations} must be >= 1; pass e.g. 1000.")
    X, Y = check_pair(X, Y, measure="permutation_null", min_samples=4)
    rng = check_random_state(random_state)
    scorer = _fast_scorer(X, Y, method, rdm, compare, sigma_factor)
    if scorer is None:

        def scorer(perm: np.ndarray) -> float:
            return float(align(X, Y[perm], method, k=k)["score"])

    score = scorer(np.arange(len(X)))
    null = np.array([scorer(rng.permutation(len(X))) for _ in range(int(n_permutations))])
    as_aligned = null <= score if method in _DISTANCES else null >= score
    return PermutationNull(
        method=method,
        score=score,
        null=null,
        null_mean=float(null.mean()),
        null_std=float(null.std(ddof=1)) if len(null) > 1 else 0.0,
        excess=float(score - null.mean()),
        p_value=float((1 + as_aligned.sum()) / (1 + len(null))),
    )


def _fast_scorer(
    X: np.ndarray, Y: np.ndarray, method: str, rdm: str, compare: str, sigma_factor: float
) -> Callable[[np.ndarray], float] | None:
    """A score of ``Y[p]`` from matrices computed once, or None where none applies."""
    if method in ("cka", "cka-rbf"):
        check_pairwise_memory(len(X), f"null-{method}", measure="permutation_null")
        if method == "cka":
            Xc = centre(X, name="X", measure=method)
            Yc = centre(Y, name="Y", measure=method)
            K, L = Xc @ Xc.T, Yc @ Yc.T
        else:
            K = _centre_gram(_rbf_gram(X, sigma_factor, "X"))
            L = _centre_gram(_rbf_gram(Y, sigma_factor, "Y"))
        norm = np.sqrt(np.sum(K * K) * np.sum(L * L))
        return lambda p: float(np.sum(K * L[np.ix_(p, p)]) / norm)
    if method == "rsa" and compare in ("spearman", "pearson"):
        check_pairwise_memory(len(X), "null-rsa", measure="permutation_null")
        dx, dy = _rdm(X, rdm, "X"), _rdm(Y, rdm, "Y")
        if compare == "spearman":
            dx, dy = rankdata(dx), rankdata(dy)
        a = (dx - dx.mean()) / np.linalg.norm(dx - dx.mean())
        Dy = squareform(dy)
        upper = np.triu_indices(len(X), 1)

        def rsa_score(p: np.ndarray) -> float:
            b = Dy[np.ix_(p, p)][upper]
            b = b - b.mean()
            return float(a @ b / np.linalg.norm(b))

        return rsa_score
    return None
