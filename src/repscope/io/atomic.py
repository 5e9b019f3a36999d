"""Atomic file writes and content hashes: nothing half-written ever appears under its real name.

Every file repscope writes into a cache or an output folder goes through :func:`atomic_write`:
the bytes go to a temporary file in the destination folder, are flushed to disk, and only
then is the file renamed over its final name (``os.replace`` is atomic on POSIX and Windows
within one filesystem). A run killed at any moment leaves either the old file, the new file,
or a stray ``.tmp-*`` file that readers never open. pooch writes its downloads the same way.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "TEMP_PREFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_npy",
    "sha256_bytes",
    "sha256_file",
]

TEMP_PREFIX = ".tmp-"
_HASH_BLOCK = 1 << 22


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """Open a binary stream whose content replaces ``path`` only if the block completes.

    Parameters
    ----------
    path : str or path-like
        Final file name. Its folder is created if missing.
    fsync : bool
        Flush the data to disk before the rename. Skipping it is safe only for files whose
        content hash is checked on every read (a power cut can then leave an empty file under
        the final name, which the hash check rejects).

    Yields
    ------
    file object
        Binary stream on a temporary file in the same folder. On an exception the temporary
        file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    with _disk_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with _disk_errors(path), os.fdopen(fd, "wb") as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


#: errno values of a full disk or an exhausted quota.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextlib.contextmanager
def _disk_errors(path: Path) -> Iterator[None]:
    """Re-raise a full disk or an unwritable folder as one line naming the file and the fix."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            message = (
                f"no space left on the disk holding {path.parent} (writing {path.name}); free "
                "space there or point the output or cache folder at a larger disk"
            )
        elif exc.errno in (errno.EACCES, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
            message = (
                f"cannot write {path} ({exc.strerror}); choose an output or cache folder you "
                "can write to"
            )
        else:
            raise
        error = OSError(message)  # str() is the message alone, without "[Errno N]"
        error.errno = exc.errno
        raise error from exc


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> str:
    """Write ``data`` to ``path`` atomically and return its SHA-256 hex digest."""
    with atomic_write(path, fsync=fsync) as fh:
        fh.write(data)
    return sha256_bytes(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted UTF-8 JSON to ``path`` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_npy(path: str | os.PathLike[str], array: np.ndarray) -> str:
    """Save ``array`` in ``.npy`` format to ``path`` atomically; return the file's SHA-256."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buffer.getvalue())


def sha256_bytes(data: bytes) -> str:
    """SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's content, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
