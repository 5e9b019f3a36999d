"""Reduced-precision kNN candidate search with certified, exact results.

Used by :func:`repscope.neighbors.knn`; see its module docstring for the error bounds. This
module adds the search order that makes it fast:

* the reference points are grouped by a coarse k-means (``_clusters``) into contiguous
  segments, each with an exact float64 centroid ``c`` and radius ``r`` (largest member distance);
* ``||q - c|| - r`` is a rigorous lower bound of the distance from a query q to every member,
  so a (query, cluster) pair is skipped once that bound exceeds the query's running upper
  bound of its K-th neighbour distance;
* queries are processed in groups of nearby points (their nearest cluster), visiting clusters
  nearest-first so that the K-th bound is tight after the first one or two clusters; only the
  still-active rows of a group enter each GEMM.

Skipped points provably lie beyond the K-th neighbour, exactly like points rejected by the
per-pair GEMM bounds, so certification is unchanged.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from repscope import _backend

__all__ = ["CandidateSearch"]

_UNIT_ROUNDOFF_F32 = 2.0**-24
# bfloat16 keeps 8 significant bits: round-to-nearest error <= 2^-9; we allow 2^-8 as slack.
_OUTPUT_ROUNDING = {"bfloat16": 2.0**-8, "float32": 2.0**-23}
_N_NORM_PIECES = 3
_POINTS_PER_CLUSTER = 3000
_MAX_CLUSTERS = 256
_ROW_CHUNK = 8192
_COL_CHUNK = 1024


def _sq_norms(A: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", A, A)


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


@dataclass(frozen=True)
class _Clusters:
    """Reference points grouped into contiguous segments (positions in ``order``)."""

    order: np.ndarray  # (n,) input row of each position
    starts: np.ndarray  # (C + 1,) segment boundaries
    centroids: np.ndarray  # (C, D) float64, member means
    radii: np.ndarray  # (C,) float64, largest member distance, rounded up


def _clusters(X: np.ndarray, mean: np.ndarray, random_state: int = 0) -> _Clusters:
    """Coarse k-means of the centred points ``X - mean`` (any grouping gives the same result).

    Works on ``X`` directly (no centred copy): only a sample and per-cluster slices are centred.
    """
    n = X.shape[0]
    n_clusters = int(min(_MAX_CLUSTERS, max(1, n // _POINTS_PER_CLUSTER)))
    if n_clusters == 1:
        labels = np.zeros(n, dtype=np.int64)
    else:
        from sklearn.cluster import KMeans

        rng = np.random.default_rng(random_state)
        sample = X[rng.choice(n, size=min(n, 40 * n_clusters), replace=False)] - mean
        with warnings.catch_warnings():  # duplicate points may leave clusters empty: harmless
            warnings.simplefilter("ignore")
            km = KMeans(n_clusters, n_init=1, max_iter=20, random_state=random_state)
            centres = km.fit(sample.astype(np.float32)).cluster_centers_.astype(np.float64)
        # nearest centre of x - mean: argmin |c|^2 - 2 c·x + 2 c·mean, in row chunks
        offset = _sq_norms(centres) + 2.0 * (centres @ mean)
        labels = np.empty(n, dtype=np.int64)
        for s in range(0, n, _ROW_CHUNK):
            labels[s : s + _ROW_CHUNK] = np.argmin(
                offset - 2.0 * (X[s : s + _ROW_CHUNK] @ centres.T), 1
            )
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=n_clusters)
    counts = counts[counts > 0]
    starts = np.concatenate([[0], np.cumsum(counts)])
    centroids = np.empty((len(counts), X.shape[1]))
    radii = np.empty(len(counts))
    for c in range(len(counts)):
        members = X[order[starts[c] : starts[c + 1]]] - mean
        centroids[c] = members.mean(0)
        diff = members - centroids[c]
        # direct differences: correctly rounded to a few ulp; widened by a relative 1e-12
        radii[c] = math.sqrt(float(_sq_norms(diff).max())) * (1 + 1e-12)
    return _Clusters(order, starts, centroids, radii)


def _lower_bounds(Q: np.ndarray, clusters: _Clusters) -> np.ndarray:
    """(n_queries, C) float32 lower bounds of the distance from each query to each cluster.

    Rigorous: the float64 expansion errs by <= ~1e-13 (|q|^2 + |c|^2), a generous margin is
    subtracted, and the float32 copy is rounded down. Computed in row chunks.
    """
    cen = clusters.centroids
    cn = _sq_norms(cen)
    out = np.empty((Q.shape[0], len(cen)), dtype=np.float32)
    for s in range(0, Q.shape[0], _ROW_CHUNK):
        q = Q[s : s + _ROW_CHUNK]
        qn = _sq_norms(q)
        d2 = qn[:, None] + cn[None, :] - 2.0 * (q @ cen.T)
        slack = np.sqrt(1e-12 * (qn[:, None] + cn[None, :]))
        bound = np.sqrt(np.maximum(d2, 0.0)) - slack - clusters.radii[None, :]
        out[s : s + _ROW_CHUNK] = np.nextafter(bound.astype(np.float32), -np.inf)
    return out


class CandidateSearch:
    """Certified reduced-precision kNN (cluster-pruned, see module doc).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    Q : ndarray of shape (n_queries, n_features) or None
        None: X against itself, self excluded.
    k : int
    dev : torch.device
    precision : {"bfloat16", "float32"}
    block : int
        Largest number of rows or columns in one GEMM tile.
    """

    def __init__(
        self, X: np.ndarray, Q: np.ndarray | None, k: int, dev: object, precision: str, block: int
    ) -> None:
        torch = _backend.torch
        self.X, self.Q, self.k, self.dev, self.block = X, Q, k, dev, block
        self.symmetric = Q is None
        self.precision = precision
        self.dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        n_ref = X.shape[0]
        self.capacity = min(n_ref - (1 if Q is None else 0), k + max(32, k // 2))
        # centring keeps the norms, hence the GEMM's error bounds, at the scale of the data's
        # spread; exact distances are still measured on the original rows
        self.mean = X.mean(0)
        self.clusters = _clusters(X, self.mean)
        Xc = X[self.clusters.order]  # the one centred copy, in cluster order
        Xc -= self.mean
        self.col_chunk = min(block, _COL_CHUNK)
        self.ref = self._prepare(Xc, with_rhs=True, pad_rows=self.col_chunk)
        if Q is None:
            self.q_order = self.clusters.order
            self.q_starts = self.clusters.starts
            self.q_labels = np.arange(len(self.clusters.radii))
            self.qry = self.ref
            self.lower = _lower_bounds(Xc, self.clusters)
        else:
            del Xc
            Xc = Q - self.mean
            nearest = np.argmin(_lower_bounds(Xc, self.clusters), axis=1)
            self.q_order = np.argsort(nearest, kind="stable")
            counts = np.bincount(nearest, minlength=len(self.clusters.radii))
            self.q_labels = np.flatnonzero(counts)
            self.q_starts = np.concatenate([[0], np.cumsum(counts[self.q_labels])])
            Xc = Xc[self.q_order]
            self.qry = self._prepare(Xc, with_rhs=False)
            self.lower = _lower_bounds(Xc, self.clusters)
        del Xc
        self.rho = _OUTPUT_ROUNDING[precision]
        n_terms = X.shape[1] + 2 * _N_NORM_PIECES + 1
        gamma = n_terms * _UNIT_ROUNDOFF_F32 / (1 - n_terms * _UNIT_ROUNDOFF_F32)
        # accumulation + norm-split residual + (float32 only) product rounding, per row
        self.gamma = 2.0 * (gamma + 2.0**-40 + (0.0 if precision == "bfloat16" else 2.0**-23))
        a_ref, e_ref = self.ref["a"].cpu().numpy(), self.ref["e"].cpu().numpy()
        self.a_max, self.e_max = float(a_ref.max()), float(e_ref.max())
        segments = zip(self.clusters.starts[:-1], self.clusters.starts[1:], strict=True)
        self.cluster_a_e = [(float(a_ref[s:e].max()), float(e_ref[s:e].max())) for s, e in segments]
        n_q = len(self.q_order)
        self.buf_c = torch.full((n_q, self.capacity), math.inf, dtype=torch.float32, device=dev)
        self.buf_i = torch.full((n_q, self.capacity), -1, dtype=torch.int64, device=dev)
        self.evicted = torch.full((n_q,), math.inf, dtype=torch.float32, device=dev)

    def _prepare(self, A: np.ndarray, with_rhs: bool, pad_rows: int = 0) -> dict:
        """Rounded rows augmented so that one GEMM ``lhs_i · rhs_j`` gives ``d(h_i, h_j)^2``.

        Built in row chunks so the float64 temporaries stay small (bounded memory at large N).
        """
        torch = _backend.torch
        n, d = A.shape
        width = d + 2 * _N_NORM_PIECES
        lhs = torch.empty((n, width), dtype=self.dtype)
        # zero padding rows let every GEMM read a fixed-width column window (masked later)
        rhs = torch.zeros((n + pad_rows, width), dtype=self.dtype) if with_rhs else None
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
            split = np.column_stack(_split_exact(n2, self.dtype, _N_NORM_PIECES))
            pieces = torch.from_numpy(split).to(self.dtype)
            ones = torch.ones((len(rows), _N_NORM_PIECES), dtype=self.dtype)
            lhs[s : s + step] = torch.cat([h, pieces, ones], 1)
            if rhs is not None:
                rhs[s : s + len(rows)] = torch.cat([-2 * h, ones, pieces], 1)
        side = {
            "lhs": lhs.to(self.dev),
            "a": torch.from_numpy(a).to(self.dev),
            "e": torch.from_numpy(norm).to(self.dev),
        }
        if rhs is not None:
            side["rhs"] = rhs.to(self.dev)
        return side

    # -- bounds ---------------------------------------------------------------------------

    def _tau(self, rows: object) -> object:
        """Upper bound of each row's true K-th neighbour distance from its buffer."""
        torch = _backend.torch
        ck = self.buf_c[rows, self.k - 1].double()
        e = self.qry["e"][rows]
        upper_c = (ck + self.gamma * (e + self.e_max) ** 2) / (1 - self.rho)
        return torch.sqrt(upper_c) + self.qry["a"][rows] + self.a_max

    def _threshold(self, rows: object, tau: object, cluster: int) -> object:
        """Largest GEMM value whose lower distance bound can still beat the row's K-th."""
        a_j, e_j = self.cluster_a_e[cluster]
        e = self.qry["e"][rows]
        theta = (1 + self.rho) * (tau + self.qry["a"][rows] + a_j) ** 2
        theta = theta + self.gamma * (e + e_j) ** 2
        # rounded up, so the float32 comparison never drops a candidate
        return (theta * (1 + 2.0**-20)).float()

    # -- sweep ----------------------------------------------------------------------------

    def _visit_order(self, label: int) -> np.ndarray:
        cen = self.clusters.centroids
        return np.argsort(_sq_norms(cen - cen[label]), kind="stable")

    def _gemm(self, rows: object, col_start: int, col_end: int) -> object:
        """Squared-distance tile of ``rows`` × columns [col_start, col_end).

        oneDNN compiles a kernel per GEMM shape (~5 ms each), so shapes are bucketed: rows
        padded to a power of two, columns to the fixed width ``self.col_chunk`` (reading into
        the padding rows of ``rhs``); columns past ``col_end`` are masked to +inf.
        """
        torch = _backend.torch
        m = rows.numel()
        m_pad = min(max(16, 1 << (m - 1).bit_length()), max(m, self.block))
        padded = torch.cat([rows, rows[-1:].expand(m_pad - m)]) if m_pad > m else rows
        tile = self.qry["lhs"][padded] @ self.ref["rhs"][col_start : col_start + self.col_chunk].T
        tile = tile[:m]
        if col_end - col_start < self.col_chunk:
            tile[:, col_end - col_start :] = math.inf
        return tile

    def _sweep(self) -> None:
        torch = _backend.torch
        lower = torch.from_numpy(self.lower).to(self.dev)
        starts = self.clusters.starts
        for g, label in enumerate(self.q_labels):
            g0, g1 = int(self.q_starts[g]), int(self.q_starts[g + 1])
            for r0 in range(g0, g1, self.block):
                rows_all = torch.arange(r0, min(r0 + self.block, g1), device=self.dev)
                for j in self._visit_order(int(label)):
                    tau = self._tau(rows_all)
                    active = lower[rows_all, j] <= tau
                    if not bool(active.any()):
                        continue
                    rows, tau = rows_all[active], tau[active]
                    for c0 in range(int(starts[j]), int(starts[j + 1]), self.col_chunk):
                        c1 = min(c0 + self.col_chunk, int(starts[j + 1]))
                        tile = self._gemm(rows, c0, c1)
                        if self.symmetric and j == label:
                            own = (rows >= c0) & (rows < c1)
                            tile[own.nonzero().flatten(), rows[own] - c0] = math.inf
                        self._merge(rows, tile, c0, tau, int(j))
                        tau = self._tau(rows)

    def _merge(self, rows: object, tile: object, col_start: int, tau: object, cluster: int) -> None:
        """Fold one GEMM tile (rows × a column segment) into the rows' candidate buffers."""
        torch = _backend.torch
        theta = self._threshold(rows, tau, cluster)
        hit = tile.amin(1).float() <= theta
        if not bool(hit.any()):
            return
        rows, theta = rows[hit], theta[hit]
        c = tile[hit].float()
        width = c.shape[1]
        if bool(torch.isinf(theta).any()):  # buffers not yet full: keep the smallest outright
            vals = torch.where(c <= theta[:, None], c, math.inf)
            take = min(self.capacity + 1, width)
            cand_c, pos = torch.topk(vals, take, dim=1, largest=False, sorted=False)
            cand_i = torch.where(torch.isinf(cand_c), -1, pos + col_start)
        else:
            r, col = (c <= theta[:, None]).nonzero(as_tuple=True)
            if r.numel() == 0:
                return
            counts = torch.bincount(r, minlength=c.shape[0])
            slot = torch.arange(r.numel(), device=c.device) - (torch.cumsum(counts, 0) - counts)[r]
            max_count = int(counts.max())
            cand_c = torch.full((c.shape[0], max_count), math.inf, device=c.device)
            cand_i = torch.full((c.shape[0], max_count), -1, dtype=torch.int64, device=c.device)
            cand_c[r, slot] = c[r, col]
            cand_i[r, slot] = col + col_start
        all_c = torch.cat([self.buf_c[rows], cand_c], 1)
        all_i = torch.cat([self.buf_i[rows], cand_i], 1)
        take = min(self.capacity + 1, all_c.shape[1])
        top_c, top_pos = torch.topk(all_c, take, dim=1, largest=False, sorted=True)
        self.buf_c[rows] = top_c[:, : self.capacity]
        self.buf_i[rows] = torch.gather(all_i, 1, top_pos)[:, : self.capacity]
        if take > self.capacity:
            self.evicted[rows] = torch.minimum(self.evicted[rows], top_c[:, self.capacity])

    # -- result ---------------------------------------------------------------------------

    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """Run the sweep; return candidate indices (input rows, -1 padded) and, per query in
        input order, a lower bound of the distance to every point that is not a candidate."""
        torch = _backend.torch
        n_q = len(self.q_order)
        cand = np.full((n_q, self.capacity), -1, dtype=np.int64)
        ev_lower = np.empty(n_q)
        with torch.inference_mode():
            self._sweep()
            for s in range(0, n_q, _ROW_CHUNK):  # bounded temporaries
                rows = slice(s, s + _ROW_CHUNK)
                cand[rows], ev_lower[rows] = self._final_bounds(rows)
        # drop columns no row keeps (the buffer is sorted by GEMM value, not by bound)
        cand = cand[:, (cand >= 0).any(0)]
        cand = np.where(cand >= 0, self.clusters.order[np.maximum(cand, 0)], -1)
        inverse = np.empty_like(self.q_order)
        inverse[self.q_order] = np.arange(n_q)
        return cand[inverse], ev_lower[inverse]

    def _final_bounds(self, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """Candidates that can still beat the K-th (others set to -1) and, per row, a lower
        bound of the distance to every evicted point.

        Uses each candidate's own rounding error and norm, tighter than the sweep's maxima.
        """
        torch = _backend.torch
        buf_i = self.buf_i[rows]
        safe = buf_i.clamp_min(0)
        a_i, e_i = self.qry["a"][rows, None], self.qry["e"][rows, None]
        a_j, e_j = self.ref["a"][safe], self.ref["e"][safe]
        margin = self.gamma * (e_i + e_j) ** 2
        c = self.buf_c[rows].double()
        upper = torch.sqrt((c + margin) / (1 - self.rho)) + a_i + a_j
        lower = torch.sqrt((c - margin).clamp_min(0) / (1 + self.rho)) - a_i - a_j
        tau = torch.kthvalue(upper, self.k, dim=1).values
        keep = torch.where(lower <= tau[:, None], buf_i, -1)
        e = self.qry["e"][rows]
        ev_c = (self.evicted[rows].double() - self.gamma * (e + self.e_max) ** 2).clamp_min(0)
        ev_lower = torch.sqrt(ev_c / (1 + self.rho)) - self.qry["a"][rows] - self.a_max
        return keep.cpu().numpy(), ev_lower.cpu().numpy()
