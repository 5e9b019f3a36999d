"""Exact k nearest neighbours across Dask workers, for point sets too large for one process.

The rows are cut into blocks. One task searches one (query block, reference block) pair with
the single-process engine, :func:`repscope.knn`, and keeps each query's K best candidates with
global indices; the pair results of a query block are merged two at a time (a binary tree) by
(distance, index). Memory per task is bounded by the block size, never by N.

Why the merge is exact: a point among a query's K nearest overall, ordered by (distance, index),
is also among the K nearest within its own reference block, because block offsets preserve the
index order. Every candidate distance comes from the engine's float64 re-measure
(:func:`repscope.neighbors.exact_distances`), which measures each (query, point) pair by direct
differences on the same float64 values whatever block it sits in. The result is therefore
identical, indices and distances bit for bit, to ``repscope.knn(X, n_neighbors)``.

:func:`distributed_local_dimension` is :func:`repscope.local_dimension` on top of this search.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from repscope import _backend
from repscope._validation import InputError, check_embedding
from repscope.alignment._pairs import check_n_neighbors
from repscope.dimension.estimate import (
    LocalDimensionResult,
    check_options,
    estimate_prepared,
    prepare_embedding,
    resolve_scales,
)
from repscope.neighbors import KNNResult, Precision, _sort_rows, knn

__all__ = ["distributed_knn", "distributed_local_dimension"]

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 16_384


def distributed_knn(
    X: npt.ArrayLike,
    n_neighbors: int,
    *,
    client: Any = None,
    block_size: int | None = None,
    device: _backend.Device = "auto",
    precision: Precision = "auto",
) -> KNNResult:
    """Exact k nearest neighbours of every row of X, computed block pair by block pair on Dask.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Points, queried against themselves (each point's own row excluded). Exact duplicate
        rows are allowed (distance 0).
    n_neighbors : int
        K, the number of neighbours per point; ``1 <= K <= n_samples - 1``.
    client : distributed.Client, optional
        Where the tasks run. When omitted, a temporary in-process ``LocalCluster`` is started
        and closed again.
    block_size : int, optional
        Rows per query and per reference block (default 16 384). A task holds two blocks, the
        engine's tiles and a (block_size, K) result; there are ``ceil(n_samples /
        block_size) ** 2`` search tasks.
    device : {"auto", "cpu", "cuda"}
        Where each task runs its GEMMs, resolved on the worker.
    precision : {"auto", "bfloat16", "float32", "float64"}
        Candidate-search dtype of each task (see :func:`repscope.knn`); exact for every choice.

    Returns
    -------
    KNNResult
        Identical to ``repscope.knn(X, n_neighbors)``; ``n_fallback_rows`` sums the rows the
        tasks re-searched in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from repscope.distributed import distributed_knn
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> res = distributed_knn(X, 2, block_size=3)
    >>> res.indices
    array([[1, 2],
           [0, 2],
           [1, 0],
           [2, 1]])
    >>> res.distances[3]
    array([4., 6.])
    """
    X64 = check_embedding(X, name="X", min_samples=2)
    k = check_n_neighbors(n_neighbors, len(X64), name="n_neighbors")
    block = _check_block_size(block_size, len(X64))
    distributed = _import_distributed()
    starts = list(range(0, len(X64), block))
    with _client_or_local(client, distributed) as active:
        blocks = active.scatter([X64[s : s + block] for s in starts], hash=False)
        finals = {}
        # one query block at a time: its merges are submitted before the next block's
        # searches, so Dask runs them first and pair results never pile up
        for q in range(len(starts)):
            pairs = [
                active.submit(
                    _search_pair,
                    blocks[q],
                    blocks[r],
                    starts[r],
                    k,
                    q == r,
                    device,
                    precision,
                    pure=False,
                )
                for r in range(len(starts))
                # a block of one row has no pair with itself
                if not (q == r and min(block, len(X64) - starts[q]) == 1)
            ]
            finals[_merge_tree(active, pairs, k)] = q
        logger.info("distributed kNN: %d blocks, %d pair searches", len(starts), len(starts) ** 2)
        return _assemble(distributed, finals, starts, len(X64), k)


def distributed_local_dimension(
    X: npt.ArrayLike,
    k: int | Sequence[int] | None = None,
    *,
    client: Any = None,
    block_size: int | None = None,
    estimator: str = "mle",
    aggregate: str = "mean",
    pca: int | None = 300,
    duplicates: Literal["drop", "raise"] = "drop",
    n_bootstrap: int = 0,
    device: _backend.Device = "auto",
    **kwargs: Any,
) -> LocalDimensionResult:
    """:func:`repscope.local_dimension` with the kNN search spread over Dask workers.

    The embedding is prepared (validated, de-duplicated, PCA-reduced) here, its kNN at the
    largest K comes from :func:`distributed_knn`, and every scale is evaluated from it; the
    result is identical to ``local_dimension`` with the same arguments.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embedding, one row per stimulus.
    k : int or sequence of int, optional
        Neighbourhood sizes, as in :func:`repscope.local_dimension`.
    client : distributed.Client, optional
        Where the search runs; a temporary in-process cluster when omitted.
    block_size : int, optional
        Rows per block of the search (see :func:`distributed_knn`).
    estimator, aggregate, pca, duplicates, n_bootstrap
        As in :func:`repscope.local_dimension`.
    device : {"auto", "cpu", "cuda"}
        Where each task runs its GEMMs.
    **kwargs
        ``confidence``, ``random_state`` and estimator parameters, as in
        :func:`repscope.local_dimension`.

    Returns
    -------
    LocalDimensionResult
    """
    check_options(estimator, aggregate, n_bootstrap)
    prepared = prepare_embedding(X, pca=pca, duplicates=duplicates)
    ks = resolve_scales(k, len(prepared.X), estimator)
    neighbors = distributed_knn(
        prepared.X, max(ks), client=client, block_size=block_size, device=device
    )
    return estimate_prepared(
        prepared,
        ks,
        estimator=estimator,
        aggregate=aggregate,
        n_bootstrap=n_bootstrap,
        neighbors=neighbors,
        **kwargs,
    )


def _check_block_size(block_size: int | None, n_samples: int) -> int:
    """Rows per block: the default, or a positive integer, capped at n_samples."""
    if block_size is None:
        return min(DEFAULT_BLOCK_SIZE, n_samples)
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise InputError(f"block_size={block_size!r} is not an integer; pass e.g. 16384.")
    if block_size < 1:
        raise InputError(f"block_size={block_size} must be positive; pass e.g. 16384.")
    return min(int(block_size), n_samples)


def _import_distributed() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise InputError(
            'distributed_knn needs Dask; install it with pip install "dask[distributed]".'
        ) from None
    return distributed


@contextmanager
def _client_or_local(client: Any, distributed: ModuleType) -> Iterator[Any]:
    """The given client, or a client of a temporary in-process cluster closed on exit."""
    if client is not None:
        yield client
        return
    # one thread: the engine already spreads each GEMM over every core; ":0": the HTTP server
    # (started even without a dashboard) takes a free port, never a clash on 8787
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as local,
    ):
        yield local


def _search_pair(
    queries: np.ndarray,
    reference: np.ndarray,
    offset: int,
    k: int,
    same: bool,
    device: _backend.Device,
    precision: Precision,
) -> KNNResult:
    """The K best candidates of each query in one reference block, with global indices.

    K is capped at the block's size; a block searched against itself excludes each point's
    own row (and then needs at least two rows).
    """
    if same:
        res = knn(reference, min(k, len(reference) - 1), device=device, precision=precision)
    else:
        res = knn(
            reference, min(k, len(reference)), queries=queries, device=device, precision=precision
        )
    return KNNResult(
        res.distances, res.indices + offset, res.backend, res.precision, res.n_fallback_rows
    )


def _merge(a: KNNResult, b: KNNResult, k: int) -> KNNResult:
    """The K best of two candidate lists of the same queries, by (distance, index)."""
    dist = np.concatenate([a.distances, b.distances], axis=1)
    idx = np.concatenate([a.indices, b.indices], axis=1)
    dist, idx = _sort_rows(dist, idx, min(k, dist.shape[1]))
    return KNNResult(dist, idx, a.backend, a.precision, a.n_fallback_rows + b.n_fallback_rows)


def _merge_tree(client: Any, parts: list[Any], k: int) -> Any:
    """Future of the merge of all parts, two at a time (depth log2 of the number of parts)."""
    while len(parts) > 1:
        merged = [
            client.submit(_merge, a, b, k, pure=False)
            for a, b in zip(parts[0::2], parts[1::2], strict=False)
        ]
        parts = merged + parts[len(merged) * 2 :]
    return parts[0]


def _assemble(
    distributed: ModuleType, finals: dict[Any, int], starts: list[int], n_samples: int, k: int
) -> KNNResult:
    """Write each query block's merged result into the (n_samples, K) output as it arrives."""
    dist = np.empty((n_samples, k), dtype=np.float64)
    idx = np.empty((n_samples, k), dtype=np.int64)
    backend, precision, n_fallback = "torch", "float64", 0
    for future in distributed.as_completed(finals):
        res = future.result()
        rows = slice(starts[finals[future]], starts[finals[future]] + len(res.distances))
        dist[rows], idx[rows] = res.distances, res.indices
        backend, precision = res.backend, res.precision
        n_fallback += res.n_fallback_rows
    return KNNResult(dist, idx, backend, precision, n_fallback)
