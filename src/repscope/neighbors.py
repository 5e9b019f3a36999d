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
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from repscope import _backend
from repscope._validation import InputError, check_embedding

__all__ = ["KNNResult", "knn"]

logger = logging.getLogger(__name__)

Precision = Literal["auto", "bfloat16", "float32", "float64"]
_UNIT_ROUNDOFF_F32 = 2.0**-24
# bfloat16 keeps 8 significant bits: round-to-nearest error <= 2^-9; we allow 2^-8 as slack.
_OUTPUT_ROUNDING = {"bfloat16": 2.0**-8, "float32": 2.0**-23}
_N_NORM_PIECES = 3


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
    engine = _CandidateSearch(X64, Q64, int(n_neighbors), dev, prec, block_size)
    return engine.run()


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


def _choose_block(n: int, dev: object, block_size: int | None, bytes_per_cell: int = 16) -> int:
    """Rows per tile: a tile (b × b cells and its temporaries) uses <= 1/8 of free memory."""
    if block_size is not None:
        if block_size < 1:
            raise InputError(f"block_size={block_size} must be positive; pass e.g. 2048.")
        return min(int(block_size), n)
    budget = min(_backend.available_memory(dev) // 8, 2 << 30)
    b = int(math.sqrt(budget / bytes_per_cell))
    return max(1, min(n, 4096, max(256, b)))


# --------------------------------------------------------------------------- exact search


def _sq_norms(A: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", A, A)


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
    # small chunks keep each gathered (c, m, D) block in cache (measured fastest at ~2^17)
    chunk = max(1, (1 << 17) // max(1, idx.shape[1] * X.shape[1]))
    for s in range(0, idx.shape[0], chunk):
        diff = X[safe[s : s + chunk]]
        diff -= Q[s : s + chunk, None, :]
        out[s : s + chunk] = np.einsum("cmd,cmd->cm", diff, diff)
    np.sqrt(out, out=out)
    out[~valid] = np.inf
    return out


def _sort_rows(dist: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """First k of each row ordered by (distance, index): the deterministic tie order."""
    order = np.lexsort((idx, dist), axis=-1)[:, :k]
    return np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)


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
    centred (the float64 expansion pre-selects); ``measure`` gives the uncentred (X, Q) whose
    direct differences give the reported distances.
    """
    nq = Q.shape[0]
    best_d = np.full((nq, k), np.inf)
    best_i = np.full((nq, k), -1, dtype=np.int64)
    xn = _sq_norms(X)
    qn = _sq_norms(Q)
    for s in range(0, X.shape[0], block):
        xb = X[s : s + block]
        d2 = qn[:, None] + xn[None, s : s + block] - 2.0 * (Q @ xb.T)
        cols = np.arange(s, s + xb.shape[0])
        if rows_self is not None:
            d2[rows_self[:, None] == cols[None, :]] = np.inf
        cand_d, cand_i = _select_block(d2, cols, min(k, d2.shape[1]))
        merged_d = np.concatenate([best_d, cand_d], axis=1)
        merged_i = np.concatenate([best_i, cand_i], axis=1)
        # the float64 expansion is only a pre-selection; final order uses exact distances
        best_d, best_i = _sort_rows(merged_d, merged_i, k)
    # re-measure exactly by direct differences
    dist = exact_distances(*(measure or (X, Q)), best_i)
    return _sort_rows(dist, best_i, k)


def _exact_search(
    X: np.ndarray, Q: np.ndarray | None, k: int, dev: object, block_size: int | None
) -> KNNResult:
    # margin of a few extra neighbours guards the float64 pre-selection against last-ulp ties
    margin = min(8, (X.shape[0] - (1 if Q is None else 0)) - k)
    block = _choose_block(X.shape[0], dev, block_size)
    queries = X if Q is None else Q
    mean = X.mean(0)
    Xc, Qc = X - mean, queries - mean
    rows_self = np.arange(X.shape[0]) if Q is None else None
    d_all, i_all = [], []
    for s in range(0, queries.shape[0], block):
        rs = None if rows_self is None else rows_self[s : s + block]
        sl = slice(s, s + block)
        d, i = _exact_rows(Xc, Qc[sl], rs, k + margin, block, measure=(X, queries[sl]))
        d_all.append(d[:, :k])
        i_all.append(i[:, :k])
    return KNNResult(np.concatenate(d_all), np.concatenate(i_all), "torch", "float64", 0)


# --------------------------------------------------------------------------- candidate search


def _split_exact(values: np.ndarray, torch_dtype: object, pieces: int) -> list[np.ndarray]:
    """Split float64 values into ``pieces`` parts, each exactly representable in torch_dtype."""
    torch = _backend.torch
    parts = []
    rest = values.copy()
    for _ in range(pieces):
        p = torch.from_numpy(rest).to(torch_dtype).double().numpy()
        parts.append(p)
        rest = rest - p
    return parts


def _locality_order(X: np.ndarray, block: int, random_state: int = 0) -> np.ndarray:
    """A permutation that groups nearby points: coarse k-means, clusters chained greedily.

    Any order gives the same (exact) result; this one only makes the search faster.
    """
    n = X.shape[0]
    n_clusters = min(256, n // 8, (4 * n) // max(block, 1))
    if n <= block or n_clusters < 2:
        return np.arange(n)
    import warnings

    from sklearn.cluster import KMeans

    rng = np.random.default_rng(random_state)
    sample = X[rng.choice(n, size=min(n, 40 * n_clusters), replace=False)].astype(np.float32)
    with warnings.catch_warnings():  # duplicate points may leave clusters empty: harmless here
        warnings.simplefilter("ignore")
        km = KMeans(n_clusters, n_init=1, max_iter=20, random_state=random_state).fit(sample)
    centers = km.cluster_centers_.astype(np.float64)
    labels = np.argmin(
        _sq_norms(centers)[None, :] - 2.0 * (X @ centers.T), axis=1
    )  # nearest centre, without an n × k distance copy beyond one GEMM
    # chain clusters so that consecutive ones are close (greedy nearest unvisited centre)
    visited = np.zeros(n_clusters, dtype=bool)
    chain = [0]
    visited[0] = True
    for _ in range(n_clusters - 1):
        d = _sq_norms(centers - centers[chain[-1]])
        d[visited] = np.inf
        nxt = int(np.argmin(d))
        chain.append(nxt)
        visited[nxt] = True
    rank = np.empty(n_clusters, dtype=np.int64)
    rank[chain] = np.arange(n_clusters)
    return np.argsort(rank[labels], kind="stable")


class _CandidateSearch:
    """Reduced-precision blocked search with certified candidate buffers (see module doc)."""

    def __init__(
        self,
        X: np.ndarray,
        Q: np.ndarray | None,
        k: int,
        dev: object,
        precision: str,
        block_size: int | None,
    ) -> None:
        torch = _backend.torch
        self.X, self.Q, self.k, self.dev = X, Q, k, dev
        self.symmetric = Q is None
        self.precision = precision
        self.dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        n_ref = X.shape[0]
        n_q = n_ref if Q is None else Q.shape[0]
        self.capacity = min(n_ref - (1 if Q is None else 0), k + max(32, k // 2))
        self.block = _choose_block(max(n_ref, n_q), dev, block_size)
        # centring keeps the norms, hence the GEMM's error bounds, at the scale of the data's
        # spread; exact distances are still measured on the original rows
        self.mean = X.mean(0)
        Xc = X - self.mean
        # grouping nearby points into the same block makes the diagonal tiles yield tight
        # K-th bounds at once, so most later tiles are dismissed by a per-row minimum
        self.order = _locality_order(Xc, self.block) if Q is None else np.arange(n_ref)
        Xc = Xc[self.order]  # one reordered copy; the unordered one is released
        self.ref = self._prepare(Xc, with_rhs=True)
        del Xc
        self.qry = self.ref if Q is None else self._prepare(Q - self.mean, with_rhs=False)
        self.rho = _OUTPUT_ROUNDING[precision]
        n_terms = X.shape[1] + 2 * _N_NORM_PIECES + 1
        gamma = n_terms * _UNIT_ROUNDOFF_F32 / (1 - n_terms * _UNIT_ROUNDOFF_F32)
        # accumulation + norm-split residual + (float32 only) product rounding, per row
        self.gamma = 2.0 * (gamma + 2.0**-40 + (0.0 if precision == "bfloat16" else 2.0**-23))
        a_ref, e_ref = self.ref["a"].cpu().numpy(), self.ref["e"].cpu().numpy()
        self.a_max, self.e_max = float(a_ref.max()), float(e_ref.max())
        starts = range(0, n_ref, self.block)
        self.block_a_max = [float(a_ref[s : s + self.block].max()) for s in starts]
        self.block_e_max = [float(e_ref[s : s + self.block].max()) for s in starts]
        self.buf_c = torch.full((n_q, self.capacity), math.inf, dtype=torch.float32, device=dev)
        self.buf_i = torch.full((n_q, self.capacity), -1, dtype=torch.int64, device=dev)
        self.evicted = torch.full((n_q,), math.inf, dtype=torch.float32, device=dev)

    def _prepare(self, A: np.ndarray, with_rhs: bool) -> dict:
        """Rounded rows augmented so that one GEMM ``lhs_i · rhs_j`` gives ``d(h_i, h_j)^2``.

        Built in row chunks so the float64 temporaries stay small (bounded memory at large N).
        """
        torch = _backend.torch
        n, d = A.shape
        width = d + 2 * _N_NORM_PIECES
        lhs = torch.empty((n, width), dtype=self.dtype)
        rhs = torch.empty((n, width), dtype=self.dtype) if with_rhs else None
        a = np.empty(n)
        norm = np.empty(n)
        step = max(1, (1 << 22) // max(d, 1))
        for s in range(0, n, step):
            rows = A[s : s + step]
            h = torch.from_numpy(rows).to(self.dtype)
            h64 = h.double().numpy()
            a[s : s + step] = np.sqrt(_sq_norms(rows - h64))  # exact rounding error per row
            n2 = _sq_norms(h64)
            norm[s : s + step] = np.sqrt(n2)
            pieces = torch.from_numpy(np.column_stack(_split_exact(n2, self.dtype, _N_NORM_PIECES)))
            ones = torch.ones((len(rows), _N_NORM_PIECES), dtype=self.dtype)
            lhs[s : s + step] = torch.cat([h, pieces.to(self.dtype), ones], 1)
            if rhs is not None:
                rhs[s : s + step] = torch.cat([-2 * h, ones, pieces.to(self.dtype)], 1)
        side = {
            "lhs": lhs.to(self.dev),
            "a": torch.from_numpy(a).to(self.dev),
            "e": torch.from_numpy(norm).to(self.dev),
        }
        if rhs is not None:
            side["rhs"] = rhs.to(self.dev)
        return side

    # -- bounds ---------------------------------------------------------------------------

    def _tau(self, rows: slice) -> object:
        """Upper bound of each row's true K-th neighbour distance from its buffer."""
        torch = _backend.torch
        ck = self.buf_c[rows, self.k - 1]
        e = self.qry["e"][rows]
        upper_c = (ck + self.gamma * (e + self.e_max) ** 2) / (1 - self.rho)
        return torch.sqrt(upper_c) + self.qry["a"][rows] + self.a_max

    def _threshold(self, rows: slice, col_block: int) -> object:
        """Largest GEMM value whose lower distance bound can still beat the row's K-th."""
        a_j, e_j = self.block_a_max[col_block], self.block_e_max[col_block]
        tau = self._tau(rows)
        e = self.qry["e"][rows]
        theta = (1 + self.rho) * (tau + self.qry["a"][rows] + a_j) ** 2
        return theta + self.gamma * (e + e_j) ** 2

    # -- tiles ----------------------------------------------------------------------------

    def _tile(self, rows: slice, cols: slice) -> object:
        return self.qry["lhs"][rows] @ self.ref["rhs"][cols].T

    def _merge(self, rows: slice, tile: object, col_start: int, transposed: bool = False) -> None:
        """Fold one GEMM tile into the candidate buffers of ``rows``.

        ``tile`` holds squared distances of ``rows`` (its rows, or its columns when
        ``transposed``) to the reference points starting at ``col_start``. Most rows have no
        candidate in most tiles, so a per-row minimum (cheap) decides which rows to look at.
        """
        torch = _backend.torch
        width = tile.shape[0] if transposed else tile.shape[1]
        theta = self._threshold(rows, col_start // self.block)
        # round the float64 threshold up, so the float32 comparison never drops a candidate
        theta = (theta * (1 + 2.0**-20)).float()
        row_min = (tile.amin(0) if transposed else tile.amin(1)).float()
        active = torch.nonzero(row_min <= theta).flatten()
        if active.numel() == 0:
            return
        c = (tile[:, active].T if transposed else tile[active]).float()
        theta = theta[active]
        mask = c <= theta[:, None]
        counts = mask.sum(1)
        max_count = int(counts.max())
        n_rows = c.shape[0]
        if max_count * 4 > width:
            vals = torch.where(mask, c, math.inf)
            take = min(self.capacity + 1, width)
            cand_c, pos = torch.topk(vals, take, dim=1, largest=False, sorted=False)
            cand_i = torch.where(torch.isinf(cand_c), -1, pos + col_start)
        else:
            r, col = mask.nonzero(as_tuple=True)
            starts = torch.cumsum(counts, 0) - counts
            slot = torch.arange(r.numel(), device=c.device) - starts[r]
            cand_c = torch.full((n_rows, max_count), math.inf, device=c.device)
            cand_i = torch.full((n_rows, max_count), -1, dtype=torch.int64, device=c.device)
            cand_c[r, slot] = c[r, col]
            cand_i[r, slot] = col + col_start
        target = active + rows.start
        all_c = torch.cat([self.buf_c[target], cand_c], 1)
        all_i = torch.cat([self.buf_i[target], cand_i], 1)
        take = min(self.capacity + 1, all_c.shape[1])
        top_c, top_pos = torch.topk(all_c, take, dim=1, largest=False, sorted=True)
        self.buf_c[target] = top_c[:, : self.capacity]
        self.buf_i[target] = torch.gather(all_i, 1, top_pos)[:, : self.capacity]
        if take > self.capacity:
            self.evicted[target] = torch.minimum(self.evicted[target], top_c[:, self.capacity])

    def _sweep(self) -> None:
        n_q = self.qry["lhs"].shape[0]
        n_ref = self.ref["rhs"].shape[0]
        b = self.block
        q_blocks = [slice(s, min(s + b, n_q)) for s in range(0, n_q, b)]
        r_blocks = [slice(s, min(s + b, n_ref)) for s in range(0, n_ref, b)]
        if self.symmetric:
            # diagonal tiles first: every row gets a K-th bound before the long sweep
            for blk in q_blocks:
                tile = self._tile(blk, blk)
                tile.fill_diagonal_(math.inf)  # self excluded
                self._merge(blk, tile, blk.start)
            for pos, rows in enumerate(q_blocks):
                for cols in q_blocks[pos + 1 :]:
                    tile = self._tile(rows, cols)
                    self._merge(rows, tile, cols.start)
                    self._merge(cols, tile, rows.start, transposed=True)
        else:
            for rows in q_blocks:
                for cols in r_blocks:
                    self._merge(rows, self._tile(rows, cols), cols.start)

    def run(self) -> KNNResult:
        torch = _backend.torch
        with torch.inference_mode():
            self._sweep()
            tau = self._tau(slice(None))
            # lower bound of every candidate; only those that can beat the K-th are re-measured
            e = self.qry["e"]
            lower_c = (self.buf_c - self.gamma * (e[:, None] + self.e_max) ** 2).clamp_min(0)
            lower = torch.sqrt(lower_c / (1 + self.rho)) - self.qry["a"][:, None] - self.a_max
            keep = lower <= tau[:, None]
            # buffers are sorted by GEMM value, so the kept candidates form a prefix
            width = max(self.k, int(keep.sum(1).max()))
            cand = torch.where(keep, self.buf_i, -1)[:, :width].cpu().numpy()
            ev_c = (self.evicted.double() - self.gamma * (e + self.e_max) ** 2).clamp_min(0)
            ev_lower = torch.sqrt(ev_c / (1 + self.rho)) - self.qry["a"] - self.a_max
            ev_lower = ev_lower.cpu().numpy()
        queries = self.X if self.Q is None else self.Q
        cand = np.where(cand >= 0, self.order[np.maximum(cand, 0)], -1)
        if self.symmetric:  # buffers are in block order: put rows back in input order
            inverse = np.empty_like(self.order)
            inverse[self.order] = np.arange(len(self.order))
            cand, ev_lower = cand[inverse], ev_lower[inverse]
        dist = exact_distances(self.X, queries, cand)
        dist, idx = _sort_rows(dist, cand, self.k)
        # a row is certified when every evicted point lies provably beyond its exact K-th
        bad = ~(ev_lower > dist[:, -1]) | (idx[:, -1] < 0)
        n_bad = int(bad.sum())
        if n_bad:
            logger.info("kNN: %d of %d rows re-searched exactly in float64", n_bad, len(bad))
            rows = np.flatnonzero(bad)
            rows_self = rows if self.symmetric else None
            d_fix, i_fix = _exact_rows(
                self.X - self.mean,
                queries[rows] - self.mean,
                rows_self,
                self.k,
                _choose_block(len(self.X), self.dev, None),
                measure=(self.X, queries[rows]),
            )
            dist[rows], idx[rows] = d_fix, i_fix
        return KNNResult(dist, idx, "torch", self.precision, n_bad)


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
