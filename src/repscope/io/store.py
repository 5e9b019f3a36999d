"""Content-addressed embedding cache: complete entries verified by hash, partial runs resumable.

Layout under the cache root::

    embeddings/<digest[:2]>/<digest>/
        embedding.npz          X (n, d) float32 and ids (n,) str: readable by load_embedding
        meta.json              the key, provenance and the SHA-256 of embedding.npz
        partial/rows-<first>-<last>-<sha12>.npz   finished batches of an unfinished run

``digest`` is the SHA-256 of the key's canonical JSON (model spec, weights hash,
preprocessing, layer, pooling, precision, stimulus fingerprint, cache format). An entry counts
as complete only when ``meta.json`` exists and the hash it records matches ``embedding.npz``;
``meta.json`` is written last, so a run killed at any point never leaves something that reads
as a result. A finished batch is saved as soon as it is computed, under a name that carries its
own hash, so a resumed run re-checks each one and recomputes only what is missing or damaged.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repscope.io.atomic import (
    TEMP_PREFIX,
    atomic_write_bytes,
    atomic_write_json,
    sha256_bytes,
    sha256_file,
)
from repscope.io.paths import default_cache_dir

__all__ = ["CACHE_FORMAT", "BatchChunk", "EmbeddingKey", "EmbeddingStore", "StoredEmbedding"]

logger = logging.getLogger(__name__)

#: Bumped when the stored layout or the meaning of a key changes. The repscope version is
#: recorded in each entry's provenance but is not part of the key, so upgrading repscope does
#: not throw away hours of extraction.
CACHE_FORMAT = 1

_EMBEDDING = "embedding.npz"
_META = "meta.json"
_PARTIAL = "partial"
_CHUNK_NAME = re.compile(r"^rows-(\d+)-(\d+)-([0-9a-f]{12})\.npz$")


@dataclass(frozen=True)
class EmbeddingKey:
    """Everything that determines an embedding's values; its digest names the cache entry.

    Attributes
    ----------
    model : str
        The model spec string, e.g. ``"timm:convnext_atto"``.
    weights_hash : str
        SHA-256 over the model's state dict.
    preprocessing : dict
        The source's own preprocessing, as JSON-able values.
    layer, pooling : str
        Which representation, and how token or spatial outputs are pooled.
    precision : str
        ``"float32"``, or the autocast dtype used on a GPU.
    stimuli : str
        Fingerprint of the stimulus set (ids and content identity).
    """

    model: str
    weights_hash: str
    preprocessing: dict[str, Any]
    layer: str
    pooling: str
    precision: str
    stimuli: str
    cache_format: int = CACHE_FORMAT

    def digest(self) -> str:
        """SHA-256 hex digest of the key's canonical (sorted, compact) JSON."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), default=str)
        return sha256_bytes(text.encode("utf-8"))


@dataclass(frozen=True)
class StoredEmbedding:
    """A complete, hash-verified cache entry.

    Attributes
    ----------
    X : ndarray of shape (n_stimuli, n_features)
        float32 embedding, rows in stimulus order (unreadable stimuli left out).
    ids : ndarray of shape (n_stimuli,)
        Stimulus id of each row, as str.
    meta : dict
        Key, provenance and skipped stimuli, as stored in ``meta.json``.
    path : Path
        The ``embedding.npz`` file.
    """

    X: np.ndarray
    ids: np.ndarray
    meta: dict[str, Any]
    path: Path


@dataclass(frozen=True)
class BatchChunk:
    """Rows of a finished batch: positions index the full stimulus set.

    Attributes
    ----------
    positions : ndarray of shape (n_rows,)
        int64 positions of the embedded stimuli.
    X : ndarray of shape (n_rows, n_features)
        float32 features.
    skipped : ndarray of shape (n_skipped,)
        int64 positions of stimuli that could not be read.
    reasons : ndarray of shape (n_skipped,)
        One line per skipped stimulus saying why.
    """

    positions: np.ndarray
    X: np.ndarray
    skipped: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    reasons: np.ndarray = field(default_factory=lambda: np.zeros(0, str))

    @property
    def covered(self) -> np.ndarray:
        """Every position this chunk accounts for, embedded or skipped."""
        return np.concatenate([self.positions, self.skipped])


class EmbeddingStore:
    """The embedding cache rooted at ``root`` (default :func:`default_cache_dir`).

    Parameters
    ----------
    root : str or path-like, optional
        Cache root; created on first write.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def entry_dir(self, key: EmbeddingKey) -> Path:
        """Folder of the entry for ``key`` (it may not exist)."""
        digest = key.digest()
        return self.root / "embeddings" / digest[:2] / digest

    def load(self, key: EmbeddingKey) -> StoredEmbedding | None:
        """The complete entry for ``key``, or None if absent; a corrupted entry is removed.

        A missing ``meta.json`` means the run never finished (None, partial batches kept for
        resuming). A hash mismatch or unreadable file means corruption: it is logged as a
        warning and the entry's final files are deleted so the caller recomputes them.
        """
        entry = self.entry_dir(key)
        meta_path, data_path = entry / _META, entry / _EMBEDDING
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            if not data_path.is_file() or sha256_file(data_path) != meta["sha256"]:
                raise ValueError("content hash does not match meta.json")
            with np.load(data_path, allow_pickle=False) as archive:
                X, ids = archive["X"], archive["ids"]
        except (ValueError, KeyError, OSError, EOFError) as exc:
            logger.warning("cache entry %s is corrupted (%s); recomputing it", entry, exc)
            self._discard_final(entry)
            return None
        return StoredEmbedding(X=X, ids=ids, meta=meta, path=data_path)

    def save(
        self,
        key: EmbeddingKey,
        X: np.ndarray,
        ids: Sequence[str] | np.ndarray,
        provenance: dict[str, Any],
    ) -> StoredEmbedding:
        """Write a complete entry atomically (data first, ``meta.json`` last); drop partials."""
        entry = self.entry_dir(key)
        X = np.ascontiguousarray(X, dtype=np.float32)
        ids = np.asarray(ids, dtype=str)
        buffer = io.BytesIO()
        np.savez(buffer, X=X, ids=ids)
        sha = atomic_write_bytes(entry / _EMBEDDING, buffer.getvalue())
        meta = {
            "key": asdict(key),
            "digest": key.digest(),
            "sha256": sha,
            "shape": list(X.shape),
            **provenance,
        }
        atomic_write_json(entry / _META, meta)
        shutil.rmtree(entry / _PARTIAL, ignore_errors=True)
        return StoredEmbedding(X=X, ids=ids, meta=meta, path=entry / _EMBEDDING)

    def save_chunk(self, key: EmbeddingKey, chunk: BatchChunk) -> Path:
        """Save one finished batch of an unfinished run; its name carries its hash."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            positions=np.asarray(chunk.positions, np.int64),
            X=np.ascontiguousarray(chunk.X, np.float32),
            skipped=np.asarray(chunk.skipped, np.int64),
            reasons=np.asarray(chunk.reasons, str),
        )
        data = buffer.getvalue()
        covered = chunk.covered
        name = f"rows-{covered.min():08d}-{covered.max():08d}-{sha256_bytes(data)[:12]}.npz"
        path = self.entry_dir(key) / _PARTIAL / name
        # no fsync: every chunk is re-hashed when it is read back
        atomic_write_bytes(path, data, fsync=False)
        return path

    def load_chunks(self, key: EmbeddingKey) -> list[BatchChunk]:
        """Finished batches of an interrupted run; damaged or stray files are deleted."""
        folder = self.entry_dir(key) / _PARTIAL
        if not folder.is_dir():
            return []
        chunks = []
        for path in sorted(folder.iterdir()):
            chunk = _read_chunk(path)
            if chunk is None:
                logger.warning("discarding damaged partial batch %s", path.name)
                path.unlink(missing_ok=True)
            else:
                chunks.append(chunk)
        return chunks

    def _discard_final(self, entry: Path) -> None:
        for name in (_META, _EMBEDDING):
            (entry / name).unlink(missing_ok=True)


def _read_chunk(path: Path) -> BatchChunk | None:
    match = _CHUNK_NAME.match(path.name)
    if match is None or path.name.startswith(TEMP_PREFIX):
        return None
    try:
        data = path.read_bytes()
        if sha256_bytes(data)[:12] != match.group(3):
            return None
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return BatchChunk(
                positions=archive["positions"],
                X=archive["X"],
                skipped=archive["skipped"],
                reasons=archive["reasons"],
            )
    except (ValueError, KeyError, OSError, EOFError):
        return None


def merge_chunks(chunks: Iterable[BatchChunk], n_total: int) -> BatchChunk:
    """Join batches into one chunk ordered by position; duplicates keep the first copy.

    Parameters
    ----------
    chunks : iterable of BatchChunk
    n_total : int
        Size of the stimulus set; every position must be covered exactly once after
        de-duplication, else ``ValueError``.
    """
    chunks = list(chunks)
    positions = np.concatenate([c.positions for c in chunks] or [np.zeros(0, np.int64)])
    skipped = np.concatenate([c.skipped for c in chunks] or [np.zeros(0, np.int64)])
    reasons = np.concatenate([c.reasons for c in chunks] or [np.zeros(0, str)])
    rows = [c.X for c in chunks if len(c.X)]
    X = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
    positions, first = np.unique(positions, return_index=True)
    skipped, first_skip = np.unique(skipped, return_index=True)
    covered = np.union1d(positions, skipped)
    if len(covered) != n_total or (n_total and (covered[0] != 0 or covered[-1] != n_total - 1)):
        raise ValueError(f"batches cover {len(covered)} of {n_total} stimuli")
    return BatchChunk(positions=positions, X=X[first], skipped=skipped, reasons=reasons[first_skip])
