"""Labels and train/test splits shared by the probes in :mod:`repscope.generalization.probes`.

Class labels are checked once here (1-D, no missing values, integer, string or boolean), and
row positions are split into a stratified, seeded train/test pair by :func:`probe_split`, or a
user-chosen ``(train_index, test_index)`` pair is checked: in range, no repeats, disjoint, and
every test class present in train. Both probes draw their split through :func:`_resolve_split`,
so with the same ``test_size`` and integer ``random_state`` they use the same rows.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from repscope._validation import InputError, as_array, check_random_state

__all__ = ["probe_split"]

RandomState = int | np.random.Generator | None
Split = tuple[npt.ArrayLike, npt.ArrayLike]


def _check_labels(y: Any, n_samples: int | None = None) -> np.ndarray:
    """1-D class labels (integers, strings or booleans) without missing values."""
    arr = as_array(y, "y")
    if arr.ndim != 1:
        raise InputError(f"y must be 1-D (n_samples,), got shape {arr.shape}; pass y.ravel().")
    if n_samples is not None and len(arr) != n_samples:
        raise InputError(
            f"y has {len(arr)} labels but X has {n_samples} rows; pass one label per row."
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InputError("y contains NaN or infinite labels; drop those rows first.")
        if not np.array_equal(arr, np.round(arr)):
            raise InputError("y has non-integer float values; pass integer or string class labels.")
    elif arr.dtype.kind == "O":
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in arr):
            raise InputError("y contains missing labels (None or NaN); drop those rows first.")
        try:
            np.unique(arr)
        except TypeError:
            raise InputError(
                "y mixes label types that cannot be sorted; pass all integers or all strings."
            ) from None
    elif arr.dtype.kind not in "iubUS":
        raise InputError(f"y has dtype {arr.dtype}; pass integer or string class labels.")
    return arr


def _check_test_size(test_size: object) -> float:
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, numbers.Real)
        or not 0 < test_size < 1
    ):
        raise InputError(
            f"test_size={test_size!r} must be a fraction strictly between 0 and 1; pass e.g. 0.2."
        )
    return float(test_size)


def probe_split(
    y: npt.ArrayLike, *, test_size: float = 0.2, random_state: RandomState = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded train/test split of row positions.

    Each class with ``m`` members sends ``round(test_size * m)`` of them, at least 1 and at most
    ``m - 1``, to the test split, so every class appears on both sides and class proportions
    are kept to within one row per class.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels (integers or strings).
    test_size : float
        Fraction of each class held out, strictly between 0 and 1.
    random_state : int, numpy Generator or None
        Seed of the shuffle.

    Returns
    -------
    train_index : ndarray of shape (n_train,), int64
        Ascending row positions.
    test_index : ndarray of shape (n_test,), int64
        Ascending row positions, disjoint from ``train_index``; together they cover all rows.

    Raises
    ------
    InputError
        ``test_size`` outside (0, 1), a class with fewer than 2 members, bad labels.

    Examples
    --------
    >>> train, test = probe_split([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], test_size=0.3)
    >>> len(train), len(test)
    (7, 3)
    """
    fraction = _check_test_size(test_size)
    labels = _check_labels(y)
    rng = check_random_state(random_state)
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        small = classes[counts.argmin()].item()
        raise InputError(
            f"class {small!r} has {counts.min()} member; every class needs at least 2 to be "
            "split into train and test; drop that class or add examples."
        )
    test_parts = []
    for c, m in enumerate(counts):
        members = rng.permutation(np.flatnonzero(codes == c))
        n_test = min(max(int(np.floor(fraction * m + 0.5)), 1), m - 1)
        test_parts.append(members[:n_test])
    test = np.sort(np.concatenate(test_parts)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(labels), dtype=np.int64), test)
    return train, test


def _check_index(index: Any, name: str, n_samples: int) -> np.ndarray:
    arr = as_array(index, name)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
        raise InputError(f"{name} must be a non-empty 1-D integer array of row positions.")
    if arr.min() < 0 or arr.max() >= n_samples:
        raise InputError(
            f"{name} holds positions outside 0..{n_samples - 1}; pass row positions into X."
        )
    if len(np.unique(arr)) != len(arr):
        raise InputError(f"{name} repeats row positions; pass each row at most once.")
    return np.sort(arr).astype(np.int64)


def _resolve_split(
    labels: np.ndarray, split: Split | None, test_size: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The user's (train_index, test_index), checked, or a stratified seeded split."""
    if split is None:
        return probe_split(labels, test_size=test_size, random_state=rng)
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise InputError("split must be a pair (train_index, test_index) of row positions.")
    n = len(labels)
    train = _check_index(split[0], "split[0] (train_index)", n)
    test = _check_index(split[1], "split[1] (test_index)", n)
    if np.intersect1d(train, test).size:
        raise InputError("split train and test indices overlap; pass disjoint row positions.")
    unseen = np.setdiff1d(labels[test], labels[train])
    if unseen.size:
        raise InputError(
            f"test classes {unseen[:5].tolist()} never occur in train; move some of their "
            "rows into the train split."
        )
    return train, test
