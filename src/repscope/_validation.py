"""Input checks shared by the whole package, with one error format.

Every check raises :class:`InputError` (a ``ValueError``) whose message is one line that names
the problem and the fix, e.g.
``n_neighbors=1000 must be < n_distinct=600; pass n_neighbors <= 599.``
The CLI prints that line and exits non-zero; library users get an ordinary ``ValueError``.
"""

from __future__ import annotations

import numbers
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "InputError",
    "as_array",
    "check_embedding",
    "check_k_list",
    "check_random_state",
    "check_writable_folder",
]


class InputError(ValueError):
    """Bad input: the message is one line naming the problem and the fix."""


def as_array(X: Any, name: str) -> np.ndarray:
    """NumPy view of ``X`` (torch tensors detached to the CPU); one-line error if impossible."""
    if type(X).__module__.startswith("torch"):
        from repscope._backend import to_numpy

        return to_numpy(X)
    try:
        return np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name} could not be read as a numeric array ({exc}); pass a 2-D NumPy array."
        ) from None


def check_embedding(
    X: Any, *, name: str = "X", dtype: npt.DTypeLike = np.float64, min_samples: int = 2
) -> np.ndarray:
    """Validate an embedding matrix and return it as a C-contiguous float array.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        NumPy array or torch tensor; rows are stimuli.
    name : str
        Name used in error messages.
    dtype : dtype
        Floating dtype of the returned array.
    min_samples : int
        Fewest rows accepted.

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Raises
    ------
    InputError
        Wrong number of dimensions, empty, non-numeric, NaN or infinite values.
    """
    arr = as_array(X, name)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise InputError(
            f"{name} has dtype {arr.dtype}, not numeric; pass a float array of shape "
            "(n_samples, n_features)."
        )
    if np.iscomplexobj(arr):
        raise InputError(f"{name} is complex; pass real-valued embeddings.")
    if arr.ndim != 2:
        raise InputError(
            f"{name} must be 2-D (n_samples, n_features), got {arr.ndim}-D shape {arr.shape}; "
            "reshape it with X.reshape(len(X), -1)."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(
            f"{name} is empty (shape {arr.shape}); pass at least {min_samples} rows and 1 column."
        )
    if arr.shape[0] < min_samples:
        raise InputError(f"{name} has {arr.shape[0]} rows; at least {min_samples} are needed.")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_rows = int((~finite.all(axis=1)).sum())
        raise InputError(
            f"{name} contains NaN or infinite values in {bad_rows} of {arr.shape[0]} rows; "
            "drop or impute those rows first."
        )
    return arr


def check_k_list(
    k: int | Iterable[int], *, n_distinct: int, min_k: int = 2, name: str = "k"
) -> tuple[int, ...]:
    """Validate neighbourhood sizes against the number of distinct points.

    Returns the sorted, de-duplicated tuple of scales. Every K must satisfy
    ``min_k <= K <= n_distinct - 1`` (self excluded).
    """
    ks = (k,) if isinstance(k, numbers.Integral) else tuple(k)
    if len(ks) == 0:
        raise InputError(f"{name} is empty; pass at least one neighbourhood size, e.g. {name}=20.")
    out = []
    for value in ks:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise InputError(f"{name}={value!r} is not an integer; pass whole neighbour counts.")
        value = int(value)
        if value < min_k:
            raise InputError(
                f"{name}={value} is too small; this estimator needs {name} >= {min_k}."
            )
        if value > n_distinct - 1:
            raise InputError(
                f"{name}={value} must be < the number of distinct points n_distinct={n_distinct}; "
                f"pass {name} <= {n_distinct - 1}."
            )
        out.append(value)
    return tuple(sorted(set(out)))


def check_random_state(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """Turn ``random_state`` (int, Generator or None) into one ``np.random.Generator``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    raise InputError(
        f"random_state={random_state!r} is not an int, numpy Generator or None; pass an int seed."
    )


def check_writable_folder(folder: str | os.PathLike[str], what: str) -> None:
    """Refuse, before any work, an output folder that cannot be created or written to.

    ``folder`` may not exist yet: its nearest existing ancestor must be a folder in which a
    folder can be made (one is made and removed again, so permissions, read-only and virtual
    file systems all count). Nothing is left behind.

    Parameters
    ----------
    folder : path-like
        Where results will go.
    what : str
        How the user named it, for the message (``"--out"``, ``"output folder"``).

    Raises
    ------
    InputError
        ``folder`` is a file, lies under a file, or cannot be written.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder} is a file; pass a folder (new or existing) instead.")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(
            f"{what} {folder} cannot be created: {existing} is a file; pass a folder elsewhere."
        )
    from repscope.io.atomic import TEMP_PREFIX

    try:
        os.rmdir(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=existing))
    except OSError as exc:
        where = "is not writable" if existing == folder else f"cannot be created in {existing}"
        raise InputError(
            f"{what} {folder} {where} ({exc.strerror or type(exc).__name__}); pass a folder "
            "you can write to."
        ) from None
