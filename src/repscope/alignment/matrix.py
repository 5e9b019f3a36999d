"""Alignment matrices over many representations, each factorized once.

For ``m`` representations of the same stimuli, the per-representation work is done once and
every pair only combines the results:

* ``cka``: centred data and the self-HSIC norm ``||XcᵀXc||_F``;
* ``cca`` / ``svcca``: the orthonormal basis of the centred column space (truncated to 99 %
  of the variance for svcca);
* ``mutual-knn``: the exact k-NN lists (cosine);
* ``rsa`` (correlation RDM, Spearman): the standardized ranks of the RDM's upper triangle.

Other methods (ridge, cka-debiased, cka-rbf, pwcca, procrustes) are computed pair by pair.
Ridge is directional: entry ``[i, j]`` predicts representation j from i.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from repscope._validation import InputError, check_embedding
from repscope.alignment._pairs import centre, check_pairwise_memory, frobenius_cross
from repscope.alignment.cca import _basis, _cca
from repscope.alignment.methods import METHODS, align
from repscope.alignment.similarity import _neighbours, _rdm

__all__ = ["AlignmentMatrix", "alignment_matrix"]


@dataclass(frozen=True)
class AlignmentMatrix:
    """Scores between every pair of representations.

    Attributes
    ----------
    names : tuple of str
    method : str
    scores : ndarray of shape (m, m)
        ``scores[i, j]`` aligns representation i with j (for ridge: predicts j from i).
    """

    names: tuple[str, ...]
    method: str
    scores: np.ndarray


def alignment_matrix(
    representations: Mapping[str, npt.ArrayLike] | Sequence[npt.ArrayLike],
    method: str = "cka",
    *,
    k: int = 10,
    test_size: float = 0.2,
    random_state: int = 0,
    device: str = "auto",
) -> AlignmentMatrix:
    """All-pairs alignment of representations of the same stimuli (rows in the same order).

    Parameters
    ----------
    representations : mapping of name to array, or sequence of arrays
        Each of shape (n_samples, n_features_i); sequences are named "0", "1", ...
    method : str
        One of :data:`repscope.alignment.methods.METHODS`.
    k : int
        Neighbours for mutual-knn. ``test_size``, ``random_state``, ``device``: ridge.

    Returns
    -------
    AlignmentMatrix

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((50, 4))
    >>> res = alignment_matrix({"a": A, "b": 2 * A, "c": rng.standard_normal((50, 3))})
    >>> res.scores.round(6)[0, 1], res.names
    (np.float64(1.0), ('a', 'b', 'c'))
    """
    if method not in METHODS:
        raise InputError(f"method={method!r} is not known; pass one of {', '.join(METHODS)}.")
    names, arrays = _named_arrays(representations)
    prepare, combine = _FACTORED.get(method, (None, None))
    m = len(arrays)
    scores = np.empty((m, m))
    if prepare is None:
        for i in range(m):
            for j in range(m):
                scores[i, j] = align(
                    arrays[i],
                    arrays[j],
                    method,
                    k=k,
                    test_size=test_size,
                    random_state=random_state,
                    device=device,
                )["score"]
        return AlignmentMatrix(names, method, scores)
    if method == "rsa":  # every representation's ranked RDM is kept for the pairs
        n = len(arrays[0])
        check_pairwise_memory(n, "matrix-rsa", measure="alignment_matrix", n_representations=m)
    factors = [prepare(A, name, k) for A, name in zip(arrays, names, strict=True)]
    for i in range(m):
        for j in range(i, m):
            scores[i, j] = scores[j, i] = combine(factors[i], factors[j])
    return AlignmentMatrix(names, method, scores)


def _named_arrays(
    representations: Mapping[str, npt.ArrayLike] | Sequence[npt.ArrayLike],
) -> tuple[tuple[str, ...], list[np.ndarray]]:
    items = (
        list(representations.items())
        if isinstance(representations, Mapping)
        else [(str(i), A) for i, A in enumerate(representations)]
    )
    if len(items) < 2:
        raise InputError(
            f"{len(items)} representation(s) given; pass at least 2 to build a matrix."
        )
    names = tuple(str(name) for name, _ in items)
    arrays = [check_embedding(A, name=name, min_samples=4) for name, A in items]
    rows = {len(A) for A in arrays}
    if len(rows) > 1:
        counts = ", ".join(f"{n}: {len(A)}" for n, A in zip(names, arrays, strict=True))
        raise InputError(
            f"representations have different numbers of rows ({counts}); pass embeddings of "
            "the same stimuli in the same order."
        )
    return names, arrays


# per-representation factorization, and the combination of two factorizations


def _cka_prepare(A: np.ndarray, name: str, k: int) -> tuple[np.ndarray, float]:
    Ac = centre(A, name=name, measure="cka")
    return Ac, np.sqrt(frobenius_cross(Ac, Ac))


def _cka_combine(a: tuple[np.ndarray, float], b: tuple[np.ndarray, float]) -> float:
    return frobenius_cross(a[0], b[0]) / (a[1] * b[1])


def _basis_prepare(keep: float | None) -> Callable[[np.ndarray, str, int], np.ndarray]:
    return lambda A, name, k: _basis(centre(A, name=name, measure="cca"), keep)


def _cca_combine(a: np.ndarray, b: np.ndarray) -> float:
    return float(_cca(a, b)[0].mean())


def _knn_prepare(A: np.ndarray, name: str, k: int) -> np.ndarray:
    return _neighbours(A, k, "cosine", name)


def _knn_combine(a: np.ndarray, b: np.ndarray) -> float:
    # each row of a and of b holds distinct indices: shared ones appear twice after sorting
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    return float((both[:, 1:] == both[:, :-1]).sum(1).mean() / a.shape[1])


def _rsa_prepare(A: np.ndarray, name: str, k: int) -> np.ndarray:
    ranks = rankdata(_rdm(A, "correlation", name))
    ranks -= ranks.mean()
    return ranks / np.linalg.norm(ranks)


def _rsa_combine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


_FACTORED: dict[str, tuple[Callable[..., Any], Callable[[Any, Any], float]]] = {
    "cka": (_cka_prepare, _cka_combine),
    "cca": (_basis_prepare(None), _cca_combine),
    "svcca": (_basis_prepare(0.99), _cca_combine),
    "mutual-knn": (_knn_prepare, _knn_combine),
    "rsa": (_rsa_prepare, _rsa_combine),
}
