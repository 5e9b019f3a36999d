"""Load embedding matrices saved with NumPy (``.npy``, or ``.npz`` holding ``X`` and ``ids``).

Pickled content is never loaded (``allow_pickle=False`` always): a pickle can run code when it
is opened. Every failure is an :class:`~repscope._validation.InputError` with one line that
names the file, the problem and the fix.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from repscope._validation import InputError, check_embedding

__all__ = ["common_rows", "load_embedding"]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_SAVE_HINT = "save it with np.save(path, X) or np.savez(path, X=X, ids=ids)"


def load_embedding(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an embedding matrix, and its stimulus ids if present, from a NumPy file.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file holding one 2-D numeric array, or a ``.npz`` archive holding an array
        named ``X`` and optionally a 1-D array ``ids`` with one unique id per row of ``X``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        float64, C-contiguous, checked by :func:`repscope._validation.check_embedding`
        (2-D, non-empty, numeric, finite).
    ids : ndarray of shape (n_samples,) or None
        The ``ids`` array of a ``.npz`` archive; None for ``.npy`` files or when absent.

    Raises
    ------
    InputError
        Missing file, directory, unsupported extension, a file that is not a NumPy array
        (text, pickle, truncated or corrupt), an archive without ``X``, ids that do not match
        the rows, or an array that fails the embedding checks.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"file {str(path)!r} does not exist; pass the path to a .npy or .npz file."
        )
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a directory; pass a .npy or .npz file inside it.")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise InputError(
            f"{path.name} has extension {suffix or '(none)'!r}, which repscope does not read; "
            f"{_SAVE_HINT}."
        )
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise InputError(
            f"{path.name} could not be opened ({exc.strerror}); check its permissions."
        ) from None
    if suffix == ".npy":
        X, ids = _read_npy(path, head), None
        name = path.name
    else:
        X, ids = _read_npz(path, head)
        name = f"{path.name}['X']"
    X = check_embedding(X, name=name)
    if ids is not None:
        ids = _check_ids(ids, len(X), path.name)
    return X, ids


def _read_npy(path: Path, head: bytes) -> np.ndarray:
    if head != _NPY_MAGIC:
        raise InputError(
            f"{path.name} is not a NumPy .npy file (it lacks the .npy header; text, CSV or pickle "
            f"files are not read); {_SAVE_HINT}."
        )
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _unreadable(path, exc) from None


def _read_npz(path: Path, head: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    if not head.startswith(_ZIP_MAGIC):
        raise InputError(f"{path.name} is not a NumPy .npz archive (not a zip file); {_SAVE_HINT}.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if "X" not in names:
                have = ", ".join(repr(n) for n in names) or "no arrays"
                raise InputError(
                    f"{path.name} has no array named 'X' (it has {have}); "
                    "save it with np.savez(path, X=X, ids=ids)."
                )
            X = archive["X"]
            ids = archive["ids"] if "ids" in names else None
    except InputError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise _unreadable(path, exc) from None
    return X, ids


def _unreadable(path: Path, exc: Exception) -> InputError:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "allow_pickle" in message or "pickled" in message:
        return InputError(
            f"{path.name} holds Python objects (dtype=object), which repscope never unpickles; "
            "save numeric arrays, and ids as strings: np.asarray(ids, dtype=str)."
        )
    return InputError(
        f"{path.name} could not be read as a NumPy array ({message}); it may be truncated or "
        f"corrupt: {_SAVE_HINT}."
    )


def _check_ids(ids: np.ndarray, n_rows: int, filename: str) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise InputError(
            f"ids in {filename} must be 1-D (one id per row of X), got shape {ids.shape}; "
            "save ids=np.ravel(ids)."
        )
    if len(ids) != n_rows:
        raise InputError(
            f"{filename} has {n_rows} rows in X but {len(ids)} ids; save exactly one id per row."
        )
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != n_rows:
        repeated = unique[counts > 1]
        raise InputError(
            f"ids in {filename} are not unique ({len(repeated)} repeated, e.g. "
            f"{repeated[0].item()!r}); give every row its own id."
        )
    return ids


def match_rows(
    X: np.ndarray, ids_x: np.ndarray | None, Y: np.ndarray, ids_y: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Put two embeddings of the same stimuli row by row.

    With ids on both sides, rows are matched on the intersection of ids, in X's order; without
    ids, both must have the same number of rows (taken to be in the same order).

    Returns
    -------
    X, Y : ndarrays with the same number of rows
    ids : ndarray or None
        The matched ids (None when neither side had ids).

    Raises
    ------
    InputError
        Only one side has ids, the ids do not overlap, or row counts differ without ids.
    """
    if ids_x is None and ids_y is None:
        if len(X) != len(Y):
            raise InputError(
                f"X has {len(X)} rows but Y has {len(Y)}; pass embeddings of the same stimuli "
                "in the same order, or .npz files with 'ids' to match rows."
            )
        return X, Y, None
    if ids_x is None or ids_y is None:
        side = "Y" if ids_x is None else "X"
        raise InputError(f"only {side} carries stimulus ids; give both files 'ids' or neither.")
    rows_x, rows_y = common_rows(ids_x, ids_y)
    if rows_x.size == 0:
        raise InputError(
            f"X's {len(ids_x)} ids and Y's {len(ids_y)} ids have none in common; pass "
            "embeddings of the same stimuli."
        )
    return X[rows_x], Y[rows_y], ids_x[rows_x]


def common_rows(ids_a: np.ndarray, ids_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers that pair the ids both arrays hold, in ``ids_a``'s order.

    Parameters
    ----------
    ids_a, ids_b : ndarray of shape (n_a,) and (n_b,)
        Stimulus ids, unique within each array.

    Returns
    -------
    rows_a, rows_b : ndarray of int, shape (n_common,)
        ``ids_a[rows_a] == ids_b[rows_b]``; ``rows_a`` ascending. Empty when no id is shared.

    Examples
    --------
    >>> common_rows(np.array(["a", "b", "c"]), np.array(["c", "x", "a"]))
    (array([0, 2]), array([2, 0]))
    """
    rows_a = np.flatnonzero(np.isin(ids_a, ids_b))
    order = np.argsort(ids_b, kind="stable")
    rows_b = order[np.searchsorted(ids_b[order], ids_a[rows_a])]
    return rows_a, rows_b
