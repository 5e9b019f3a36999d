"""The :class:`Stimuli` interface shared by every stimulus source, and its small helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repscope._validation import InputError

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["Stimuli", "StimulusReadError"]


class StimulusReadError(InputError):
    """A stimulus could not be read; the message names the file or stimulus and the fix."""


class Stimuli:
    """Base class of stimulus sets: ``ids`` in order, ``load(index)`` -> RGB image.

    Subclasses set ``kind``, ``ids`` and ``labels`` and implement ``load``, ``fingerprint``,
    ``describe`` and ``_subset``. Instances are picklable; files are opened by ``load``.

    Attributes
    ----------
    kind : str
        ``"folder"``, ``"files"``, ``"nsd"``, ``"array"`` or ``"builtin"``.
    ids : tuple of str, length n_stimuli
        Unique stimulus ids, in load order.
    labels : ndarray of shape (n_stimuli,) or None
        Integer class labels where the source has them, else None.
    """

    kind: str
    ids: tuple[str, ...]
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Image:
        """Stimulus ``index`` as a ``PIL.Image.Image`` of mode ``"RGB"`` (gray replicated).

        Raises
        ------
        StimulusReadError
            The underlying file is unreadable or corrupt.
        """
        raise NotImplementedError

    def fingerprint(self) -> str:
        """sha256 hex digest of the ids and a cheap proxy for the content; a cache key."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: ``kind``, ``location`` (or ``name``) and ``n``."""
        raise NotImplementedError

    def _subset(self, positions: list[int]) -> Stimuli:
        """The stimuli at ``positions``, same kind and source."""
        raise NotImplementedError

    def select(self, ids: Sequence[str]) -> Stimuli:
        """The stimuli named by ``ids``, in that order.

        Parameters
        ----------
        ids : sequence of str, length n_selected
            Ids from :attr:`ids`.

        Returns
        -------
        Stimuli
            Same kind, ``n_selected`` stimuli, ``.ids == tuple(ids)``.

        Raises
        ------
        InputError
            Some ids are not in this set (the first few are named).
        """
        where = {sid: i for i, sid in enumerate(self.ids)}
        missing = [str(i) for i in ids if str(i) not in where]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:3])
            raise InputError(
                f"{len(missing)} requested id(s) are not in this {self.kind} stimulus set "
                f"(e.g. {shown}); pass ids from stimuli.ids."
            )
        return self._subset([where[str(i)] for i in ids])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


def check_ids(ids: Sequence[Any], n: int, what: str) -> tuple[str, ...]:
    """Ids as a tuple of unique strings, one per stimulus of ``what``."""
    out = tuple(str(i) for i in ids)
    if len(out) != n:
        raise InputError(f"ids has {len(out)} entries but {what} has {n}; pass one id per image.")
    seen: set[str] = set()
    for sid in out:
        if sid in seen:
            raise InputError(f"ids must be unique but {sid!r} repeats; pass unique ids.")
        seen.add(sid)
    return out


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def sha256_of(*parts: str) -> str:
    """sha256 hex digest of strings, NUL-separated so that part boundaries count."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def file_stamp(path: Path) -> str:
    """``"path:size:mtime_ns"``: changes when the file is rewritten."""
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def image_from_array(img: np.ndarray) -> Image:
    """RGB ``PIL.Image.Image`` from a uint8 array of shape (H, W) or (H, W, 3)."""
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(img)).convert("RGB")
