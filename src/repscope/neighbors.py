"""One exact k-nearest-neighbour engine, blocked, shared by every local estimator.

``knn(X, n_neighbors)`` returns each point's ``n_neighbors`` nearest other points with their
Euclidean distances, sorted, self excluded. It never forms an N×N matrix: distances are computed
tile by tile with one GEMM each (a set queried against itself computes each tile pair once and
uses it for both sides), and each row keeps only a small candidate buffer.

Exactness
---------
The GEMM may run in reduced precision (bfloat16 on CPUs with AVX-512 BF16, float32
otherwise). Its error is bounded rigorously per pair:

* the points are rounded to the compute dtype, ``h = fl(x)``; the rounding error
  ``a_i = ||x_i - h_i||`` is known exactly, and by the triangle inequality
  ``|d(x_i, x_j) - d(h_i, h_j)| <= a_i + a_j``;
* ``d(h_i, h_j)^2`` comes out of one GEMM on augmented rows ``[h, n] · [-2h', 1]`` with the
  squared norms split into pieces exact in the compute dtype; products of rounded values are
  exact in the float32 accumulator (bfloat16) or rounded once (float32), so the accumulation
  error is at most ``gamma_(D+7) (||h_i|| + ||h_j||)^2``; the output rounding is relative to
  ``d^2`` itself (``rho``).

A row keeps every point whose *lower* bound is below the running *upper* bound of its K-th
neighbour, then all kept candidates are re-measured exactly in float64 and sorted by
(distance, index). A row is certified when every point it did not keep provably lies farther
than its K-th exact distance; rows that cannot be certified (candidate buffer overflow) are
recomputed by an exact float64 search. The result is therefore the exact float64 kNN of the
input, with ties broken by the smaller index.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from repscope import _backend, _memory
from repscope._candidate_search import _sq_norms
from repscope._validation import InputError, check_embedding

__all__ = ["KNNResult", "knn"]

logger = logging.getLogger(__name__)

Precision = Literal["auto", "bfloat16", "float32", "float64"]
# a tile cell and its temporaries (GEMM output, float32 copy, masks)
_BYTES_PER_TILE_CELL = 16
# uncertified rows re-searched exactly at once (bounds the fallback's float64 tile)
_FALLBACK_ROWS = 512


@dataclass(frozen=True)
class KNNResult:
    """Nearest neighbours of every query point.

    Attributes
    ----------
    distances : ndarray of shape (n_queries, n_neighbors), float64
        Euclidean distances in input units, ascending along each row.
    indices : ndarray of shape (n_queries, n_neighbors), int64
        Row numbers of the neighbours in the reference set; equal distances are ordered by index.
    backend : str
        ``"torch"`` (certified exact) or ``"faiss"`` (faiss's float32 selection, distances
        re-measured in float64).
    precision : str
        Dtype of the candidate GEMM.
    n_fallback_rows : int
        Rows that needed the exact float64 fallback search.
    """

    distances: np.ndarray
    indices: np.ndarray
    backend: str = "torch"
    precision: str = "float64"
    n_fallback_rows: int = 0

    @property
    def n_neighbors(self) -> int:
        """Number of neighbours per row (K_max)."""
        return int(self.distances.shape[1])

    def truncate(self, n_neighbors: int) -> KNNResult:
        """The first ``n_neighbors`` columns: the kNN result at a smaller K, for free."""
        if not 1 <= n_neighbors <= self.n_neighbors:
            raise InputError(
                f"n_neighbors={n_neighbors} must be between 1 and the computed "
                f"K_max={self.n_neighbors}; recompute the kNN with a larger K."
            )
        return KNNResult(
            self.distances[:, :n_neighbors],
            self.indices[:, :n_neighbors],
            self.backend,
            self.precision,
            self.n_fallback_rows,
        )


def knn(
    X: npt.ArrayLike,
    n_neighbors: int,
    *,
    queries: npt.ArrayLike | None = None,
    device: _backend.Device = "auto",
    backend: Literal["torch", "faiss"] = "torch",
    precision: Precision = "auto",
    block_size: int | None = None,
) -> KNNResult:
    """Exact k nearest neighbours by blocked GEMM, without an N×N matrix.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Reference points. Exact duplicate rows are allowed here (distance 0).
    n_neighbors : int
        K_max, the number of neighbours returned per query.
    queries : array-like of shape (n_queries, n_features), optional
        Points to query. When omitted, ``X`` is queried against itself: each point's own row is
        excluded and each distance tile is computed once for both sides (symmetry).
    device : {"auto", "cpu", "cuda"}
        Where the GEMMs run.
    backend : {"torch", "faiss"}
        ``"faiss"`` uses ``faiss.IndexFlatL2`` for the selection (requires ``faiss-cpu``).
    precision : {"auto", "bfloat16", "float32", "float64"}
        Dtype of the candidate search; the result is exact for every choice. ``"auto"`` picks
        bfloat16 on CUDA and on CPUs with native BF16 dot products, float32 otherwise.
    block_size : int, optional
        Rows per tile; chosen from the free memory when omitted.

    Returns
    -------
    KNNResult

    Examples
    --------
    >>> import numpy as np
    >>> from repscope import knn
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> res = knn(X, 2)
    >>> res.indices
    array([[1, 2],
           [0, 2],
           [1, 0],
           [2, 1]])
    >>> res.distances[3]
    array([4., 6.])
    """
    _preflight(X, queries, n_neighbors, device, backend, precision, block_size)
    X64 = check_embedding(X, name="X", min_samples=1)
    Q64 = None if queries is None else check_embedding(queries, name="queries", min_samples=1)
    if Q64 is not None and Q64.shape[1] != X64.shape[1]:
        raise InputError(
            f"queries have {Q64.shape[1]} features but X has {X64.shape[1]}; "
            "pass arrays with the same number of columns."
        )
    n_ref = X64.shape[0]
    n_max = n_ref - 1 if Q64 is None else n_ref
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)):
        raise InputError(f"n_neighbors={n_neighbors!r} is not an integer; pass e.g. 20.")
    if not 1 <= n_neighbors <= n_max:
        raise InputError(
            f"n_neighbors={n_neighbors} must be between 1 and {n_max} "
            f"(n_samples={n_ref}{', self excluded' if Q64 is None else ''}); "
            f"pass n_neighbors <= {n_max}."
        )
    if backend == "faiss":
        return _knn_faiss(X64, Q64, int(n_neighbors))
    if backend != "torch":
        raise InputError(f"backend={backend!r} is not known; pass 'torch' or 'faiss'.")
    dev = _backend.resolve_device(device)
    prec = _resolve_precision(precision, dev)
    if prec == "float64":
        return _exact_search(X64, Q64, int(n_neighbors), dev, block_size)
    block = _choose_block(max(len(X64), 1 if Q64 is None else len(Q64)), dev, block_size)
    return _certified_search(X64, Q64, int(n_neighbors), dev, prec, block)


# --------------------------------------------------------------------------- memory


def _preflight(
    X: object,
    queries: object,
    n_neighbors: object,
    device: _backend.Device,
    backend: str,
    precision: str,
    block_size: int | None,
) -> None:
    """Refuse, before the float64 copy, a search whose estimated peak exceeds free memory.

    Inputs that are not plain 2-D arrays, or an invalid K, are left to the validation.
    """
    shape = _memory.array_shape(X)
    q_shape = None if queries is None else _memory.array_shape(queries)
    if shape is None or (queries is not None and q_shape is None):
        return
    n, d, dtype = shape
    nq = None if q_shape is None else q_shape[0]
    k = n_neighbors
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        return
    if not 1 <= k <= (n - 1 if nq is None else n):
        return
    dev = _backend.resolve_device(device)
    prec = "float32" if backend == "faiss" else _resolve_precision(precision, dev)
    block = _choose_block(max(n, nq or 1), dev, block_size)
    as_is = dtype == np.float64 and (q_shape is None or q_shape[2] == np.float64)
    itemsize = 8 if as_is else 4  # anything but float64 is copied to float64
    sizes = {"n_queries": nq, "precision": prec, "block_size": block}
    what = f"knn: {_memory.describe((n, d), dtype)}"
    what += f" with {nq} queries" if nq is not None else ""
    what += f" at n_neighbors={int(k)}"
    fix = (
        "reduce the features first (e.g. PCA to 300 components), search fewer points, or "
        "spread the search over machines with repscope.distributed.distributed_knn."
    )
    need = _memory.knn_bytes(n, d, int(k), itemsize=itemsize, **sizes)
    _memory.check_memory(what, need, "cpu", fix)
    if dev.type != "cpu" and backend != "faiss":
        _memory.check_memory(what, _memory.knn_device_bytes(n, d, int(k), **sizes), dev, fix)


# --------------------------------------------------------------------------- precision


@lru_cache(maxsize=1)
def _cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _resolve_precision(precision: str, dev: object) -> str:
    if precision == "auto":
        if getattr(dev, "type", "cpu") == "cuda" or _cpu_has_native_bf16():
            return "bfloat16"
        return "float32"
    if precision not in ("bfloat16", "float32", "float64"):
        raise InputError(
            f"precision={precision!r} is not known; pass 'auto', 'bfloat16', 'float32' or "
            "'float64'."
        )
    return precision


def _choose_block(n: int, dev: object, block_size: int | None) -> int:
    """Rows per tile: a tile (b × b cells and its temporaries) uses <= 1/8 of free memory.

    At 16 bytes per cell; the candidate search's tiles are b × 1024 (24 bytes per cell at
    their peak), the exact float64 search's b × b (26 bytes per cell measured): both stay
    within 1/4 of free memory (``tests/test_memory.py``).
    """
    if block_size is not None:
        if block_size < 1:
            raise InputError(f"block_size={block_size} must be positive; pass e.g. 2048.")
        return min(int(block_size), n)
    budget = min(_backend.available_memory(dev) // 8, 2 << 30)
    b = int(math.sqrt(budget / _BYTES_PER_TILE_CELL))
    return max(1, min(n, 4096, max(256, b)))


# --------------------------------------------------------------------------- exact search


def exact_distances(X: np.ndarray, Q: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Float64 Euclidean distances from each query row to the listed reference rows.

    Direct differences ``sqrt(sum((q - x)^2))`` in float64: correctly rounded up to a few ulp
    of the distance itself, so genuinely equal distances compare equal and ties are kept.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    Q : ndarray of shape (n_queries, n_features), float64
    idx : ndarray of shape (n_queries, m), int
        Reference rows per query; ``-1`` marks padding (distance ``inf``).

    Returns
    -------
    ndarray of shape (n_queries, m), float64
    """
    out = np.empty(idx.shape, dtype=np.float64)
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    # float32 inputs (the usual embedding) are gathered as float32: half the memory traffic;
    # differences of float32 values are exact in float64, so nothing is lost. Worth the
    # conversion only when the gather reads more rows than X has.
    source = _float32_if_exact(X) if idx.size >= len(X) else X
    # small chunks keep each gathered (c, m, D) block in cache (measured fastest at ~2^17)
    chunk = max(1, (1 << 17) // max(1, idx.shape[1] * X.shape[1]))

    def measure(start: int, stop: int) -> None:
        for s in range(start, stop, chunk):
            e = min(s + chunk, stop)
            # mixed float32/float64 operands promote: the difference is formed in float64
            diff = np.subtract(source[safe[s:e]], Q[s:e, None, :])
            out[s:e] = np.einsum("cmd,cmd->cm", diff, diff)

    # NumPy's gather runs on one core but releases the GIL: split rows across threads
    n_threads = max(1, min(os.cpu_count() or 1, 8, idx.shape[0] // max(chunk, 1)))
    bounds = np.linspace(0, idx.shape[0], n_threads + 1).astype(int)
    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(measure, bounds[:-1], bounds[1:]))
    np.sqrt(out, out=out)
    out[~valid] = np.inf
    return out


def _float32_if_exact(X: np.ndarray) -> np.ndarray:
    """A float32 copy of X when it holds the same values exactly, else X itself."""
    X32 = X.astype(np.float32)
    return X32 if np.array_equal(X32, X) else X


def _sort_rows(dist: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """First k of each row ordered by (distance, index): the deterministic tie order.

    Partition to k + 1 and sort by distance; rows with a tie among those, or whose K-th
    distance recurs outside them, are re-sorted by (distance, index) over the whole row.
    Exact ties are rare outside lattice-like data, so this is nearly a plain sort.
    """
    full_d, full_i = dist, idx
    if k < dist.shape[1]:
        part = np.argpartition(dist, k, axis=1)[:, : k + 1]
        dist, idx = np.take_along_axis(dist, part, 1), np.take_along_axis(idx, part, 1)
    order = np.argsort(dist, axis=1)
    d, i = np.take_along_axis(dist, order, 1)[:, :k], np.take_along_axis(idx, order, 1)[:, :k]
    tied = (d[:, 1:] == d[:, :-1]).any(1)
    if k < full_d.shape[1]:
        tied |= (full_d == d[:, -1:]).sum(1) > (d == d[:, -1:]).sum(1)
    rows = np.flatnonzero(tied)
    if rows.size:
        redo = np.lexsort((full_i[rows], full_d[rows]), axis=-1)[:, :k]
        d[rows] = np.take_along_axis(full_d[rows], redo, 1)
        i[rows] = np.take_along_axis(full_i[rows], redo, 1)
    return d, i


def _select_block(d2: np.ndarray, cols: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """The kk smallest of each row by (value, column), exact also when ties cross the cut."""
    if kk >= d2.shape[1]:
        return d2, np.broadcast_to(cols, d2.shape)
    part = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
    cand_d = np.take_along_axis(d2, part, 1)
    cand_i = cols[part]
    boundary = cand_d.max(1)
    tied = np.flatnonzero((d2 <= boundary[:, None]).sum(1) > kk)
    if tied.size:  # argpartition picks arbitrarily among ties: redo those rows stably
        order = np.argsort(d2[tied], axis=1, kind="stable")[:, :kk]
        cand_d[tied] = np.take_along_axis(d2[tied], order, 1)
        cand_i[tied] = cols[order]
    return cand_d, cand_i


def _exact_rows(
    X: np.ndarray,
    Q: np.ndarray,
    rows_self: np.ndarray | None,
    k: int,
    block: int,
    measure: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 search for every row of Q against all of X (blocked, bounded memory).

    ``rows_self[i]`` is the row of X equal to query i (excluded), or None. X and Q should be
    centred: a float64 expansion pre-selects ``k + 8`` candidates per row, which are then
    re-measured by direct differences on ``measure`` (the uncentred (X, Q); default X, Q).
    A row is certified when its exact K-th squared distance is strictly below the smallest
    expansion value it dropped minus the expansion's error bound; rows that are not (long
    runs of exact ties) are measured against every point by direct differences.
    """
    X_m, Q_m = measure or (X, Q)
    n_avail = X.shape[0] - (0 if rows_self is None else 1)
    width = min(k + 8, n_avail)
    nq = Q.shape[0]
    best_d = np.full((nq, width), np.inf)
    best_i = np.full((nq, width), -1, dtype=np.int64)
    xn = _sq_norms(X)
    qn = _sq_norms(Q)
    for s in range(0, X.shape[0], block):
        xb = X[s : s + block]
        d2 = qn[:, None] + xn[None, s : s + block] - 2.0 * (Q @ xb.T)
        cols = np.arange(s, s + xb.shape[0])
        if rows_self is not None:
            d2[rows_self[:, None] == cols[None, :]] = np.inf
        cand_d, cand_i = _select_block(d2, cols, min(width, d2.shape[1]))
        merged_d = np.concatenate([best_d, cand_d], axis=1)
        merged_i = np.concatenate([best_i, cand_i], axis=1)
        best_d, best_i = _sort_rows(merged_d, merged_i, width)
    dist, idx = _sort_rows(exact_distances(X_m, Q_m, best_i), best_i, width)
    if width < n_avail:
        # |expansion - d^2| <= gamma_(D+3) (|q|^2 + |x|^2 + 2|q||x|) <= 2 gamma (|q|^2 + max|x|^2)
        gamma = 4.0 * (X.shape[1] + 3) * np.finfo(np.float64).eps
        bound = best_d[:, -1] - gamma * (qn + xn.max())
        # the exact distance is squared again: allow a relative 1e-12 for that rounding
        doubtful = np.flatnonzero(~(dist[:, k - 1] ** 2 * (1 + 1e-12) < bound))
        for r in doubtful:
            self_row = None if rows_self is None else rows_self[r]
            dist[r, :k], idx[r, :k] = _brute_row(X_m, Q_m[r], self_row, k)
    return dist[:, :k], idx[:, :k]


def _brute_row(
    X: np.ndarray, q: np.ndarray, self_row: int | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of X to q by direct float64 differences (ties by index)."""
    dist = exact_distances(X, q[None, :], np.arange(len(X))[None, :])
    if self_row is not None:
        dist[0, self_row] = np.inf
    d, i = _sort_rows(dist, np.arange(len(X))[None, :], k)
    return d[0], i[0]


def _exact_search(
    X: np.ndarray, Q: np.ndarray | None, k: int, dev: object, block_size: int | None
) -> KNNResult:
    block = _choose_block(X.shape[0], dev, block_size)
    queries = X if Q is None else Q
    mean = X.mean(0)
    Xc, Qc = X - mean, queries - mean
    rows_self = np.arange(X.shape[0]) if Q is None else None
    d_all, i_all = [], []
    for s in range(0, queries.shape[0], block):
        rs = None if rows_self is None else rows_self[s : s + block]
        sl = slice(s, s + block)
        d, i = _exact_rows(Xc, Qc[sl], rs, k, block, measure=(X, queries[sl]))
        d_all.append(d)
        i_all.append(i)
    return KNNResult(np.concatenate(d_all), np.concatenate(i_all), "torch", "float64", 0)


# --------------------------------------------------------------------------- candidate search


def _certified_search(
    X: np.ndarray, Q: np.ndarray | None, k: int, dev: object, precision: str, block: int
) -> KNNResult:
    """Reduced-precision candidates, exact float64 re-measure, certification, fallback."""
    from repscope._candidate_search import CandidateSearch

    cand, dropped_lower = CandidateSearch(X, Q, k, dev, precision, block).candidates()
    queries = X if Q is None else Q
    dist, idx = _sort_rows(exact_distances(X, queries, cand), cand, k)
    # certified when every dropped point provably lies beyond the exact K-th distance
    bad = ~(dropped_lower > dist[:, -1]) | (idx[:, -1] < 0)
    n_bad = int(bad.sum())
    if n_bad:
        logger.info("kNN: %d of %d rows re-searched exactly in float64", n_bad, len(bad))
        mean = X.mean(0)
        Xc = X - mean
        bad_rows = np.flatnonzero(bad)
        # a few rows at a time: each pass holds a (rows × block) float64 tile, not (n_bad × block)
        for start in range(0, n_bad, _FALLBACK_ROWS):
            rows = bad_rows[start : start + _FALLBACK_ROWS]
            dist[rows], idx[rows] = _exact_rows(
                Xc,
                queries[rows] - mean,
                rows if Q is None else None,
                k,
                block,
                measure=(X, queries[rows]),
            )
    return KNNResult(dist, idx, "torch", precision, n_bad)


# --------------------------------------------------------------------------- faiss


def _knn_faiss(X: np.ndarray, Q: np.ndarray | None, k: int) -> KNNResult:
    try:
        import faiss
    except ImportError:
        raise InputError(
            "backend='faiss' needs faiss-cpu; install it with pip install 'repscope[faiss]'."
        ) from None
    index = faiss.IndexFlatL2(X.shape[1])
    index.add(np.ascontiguousarray(X, dtype=np.float32))
    queries = X if Q is None else Q
    extra = 1 if Q is None else 0
    _, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), k + extra)
    idx = idx.astype(np.int64)
    if Q is None:
        # drop self; if self was not returned (ties at distance 0), drop the last column
        is_self = idx == np.arange(len(X))[:, None]
        drop = np.where(is_self.any(1), is_self.argmax(1), k)
        keep = np.ones_like(idx, dtype=bool)
        keep[np.arange(len(X)), drop] = False
        idx = idx[keep].reshape(len(X), k)
    dist = exact_distances(X, queries, idx)
    dist, idx = _sort_rows(dist, idx, k)
    return KNNResult(dist, idx, "faiss", "float32", 0)
