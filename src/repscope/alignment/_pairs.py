"""Checks and preparation shared by every similarity measure on paired embeddings.

A pair ``(X, Y)`` holds two representations of the same stimuli: row ``i`` of both is stimulus
``i``. Every measure validates the pair here, with the package's one-line error format.
"""

from __future__ import annotations

import numbers

import numpy as np
import numpy.typing as npt

from repscope import _backend, _memory
from repscope._validation import InputError, check_embedding

__all__ = [
    "centre",
    "check_n_neighbors",
    "check_pair",
    "check_pairwise_memory",
    "frobenius_cross",
]


def check_pair(
    X: npt.ArrayLike, Y: npt.ArrayLike, *, measure: str, min_samples: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two embeddings of the same stimuli and return them as float64 arrays.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
    measure : str
        Name of the calling measure, used in error messages.
    min_samples : int
        Fewest rows the measure is defined for.

    Returns
    -------
    X, Y : ndarray of shape (n_samples, n_features_x), (n_samples, n_features_y), float64

    Raises
    ------
    InputError
        Not 2-D, empty, NaN or infinite values, different numbers of rows, too few rows.
    """
    X = check_embedding(X, name="X", min_samples=1)
    Y = check_embedding(Y, name="Y", min_samples=1)
    if X.shape[0] != Y.shape[0]:
        raise InputError(
            f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; pass embeddings of the same "
            "stimuli in the same order (one row per stimulus)."
        )
    if X.shape[0] < min_samples:
        raise InputError(
            f"{measure} needs n_samples >= {min_samples}, got {X.shape[0]}; pass more stimuli."
        )
    return X, Y


def centre(X: np.ndarray, *, name: str, measure: str) -> np.ndarray:
    """Columns minus their means; an error if every row is the same point.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    name, measure : str
        Used in the error message.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
    """
    # compare values exactly: a mean of equal values need not round back to the value
    if not (X != X[:1]).any():
        raise InputError(
            f"{name} has zero variance (all {X.shape[0]} rows are equal); {measure} is "
            "undefined for it, pass a non-constant embedding."
        )
    return X - X.mean(axis=0)


def check_n_neighbors(k: object, n_samples: int, *, name: str = "k") -> int:
    """Validate a neighbour count against the number of rows (self excluded)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise InputError(f"{name}={k!r} is not an integer; pass a neighbour count, e.g. {name}=10.")
    k = int(k)
    if k < 1:
        raise InputError(f"{name}={k} must be >= 1; pass e.g. {name}=10.")
    if k >= n_samples:
        raise InputError(
            f"{name}={k} must be < n_samples={n_samples} (self excluded); "
            f"pass {name} <= {n_samples - 1}."
        )
    return k


def frobenius_cross(A: np.ndarray, B: np.ndarray) -> float:
    """``||Aᵀ B||_F² = trace(A Aᵀ B Bᵀ)``, through whichever product is smaller.

    Parameters
    ----------
    A : ndarray of shape (n_samples, p)
    B : ndarray of shape (n_samples, q)

    Returns
    -------
    float
    """
    n, p, q = A.shape[0], A.shape[1], B.shape[1]
    if p * q <= n * n:
        return float(np.sum((A.T @ B) ** 2))
    # wide embeddings: the two n × n Gram matrices are cheaper than the p × q cross product
    return float(np.sum((A @ A.T) * (B @ B.T)))


def check_pairwise_memory(
    n_samples: int, method: str, *, measure: str, n_representations: int = 2
) -> None:
    """Refuse a measure that builds N × N matrices when they do not fit in free memory.

    Parameters
    ----------
    n_samples : int
        Stimuli (N).
    method : str
        A key of :data:`repscope._memory.PAIRWISE_METHODS`.
    measure : str
        Name of the calling measure, used in the message.
    n_representations : int
        Representations whose matrices are kept at once (alignment matrices).

    Raises
    ------
    InputError
        With the memory needed and free, and the feature-space alternatives.
    """
    need = _memory.pairwise_bytes(n_samples, method, n_representations=n_representations)
    free = _backend.available_memory(_backend.resolve_device("cpu"))
    if need <= free:
        return
    n_fit = _memory.fit_pairwise_samples(free, method, n_representations=n_representations)
    _memory.check_memory(
        f"{measure}: N×N matrices of {n_samples} stimuli",
        need,
        "cpu",
        "use linear CKA (repscope.linear_cka, computed in feature space) or ridge_alignment, "
        f"or a random subsample of at most {n_fit} stimuli.",
    )
