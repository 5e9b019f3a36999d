"""The high-level entry point: local intrinsic dimension of an embedding at many scales.

One call validates the embedding, drops exact duplicates, reduces it by PCA (300 components by
default, as in the paper), runs ONE exact kNN search at the largest K, and evaluates the chosen
estimator at every K from that single result.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from repscope import _backend, _memory
from repscope._validation import InputError, check_embedding, check_k_list
from repscope.dimension.local import (
    AGGREGATES,
    ESTIMATORS,
    aggregate,
    bootstrap_ci,
    min_neighbors,
    pointwise_dimension,
)
from repscope.neighbors import KNNResult, knn
from repscope.preprocessing import PCAResult, drop_duplicates, pca_reduce

__all__ = [
    "DEFAULT_SCALES",
    "LocalDimensionResult",
    "check_options",
    "estimate_prepared",
    "local_dimension",
    "prepare_embedding",
]

DEFAULT_SCALES: tuple[int, ...] = (5, 10, 20, 50, 100, 200, 500, 1000)
_NEEDS_POINTS = ("tle",)


@dataclass(frozen=True)
class PreparedEmbedding:
    """An embedding ready for neighbour search.

    Attributes
    ----------
    X : ndarray of shape (n_points, n_components)
        Distinct rows, PCA scores when PCA was applied.
    kept : ndarray of shape (n_points,), int64
        Input row of each point.
    n_samples, n_features : int
        Input shape.
    duplicates_dropped : int
        Input rows removed as exact duplicates (before or after PCA).
    pca : int or None
        Components kept, or None when PCA was skipped.
    projection : PCAResult or None
        The fitted PCA (axes and mean, for projecting new points), None when skipped.
    """

    X: np.ndarray
    kept: np.ndarray
    n_samples: int
    n_features: int
    duplicates_dropped: int
    pca: int | None
    projection: PCAResult | None = field(default=None, repr=False)


def prepare_embedding(
    X: npt.ArrayLike,
    *,
    pca: int | None = 300,
    duplicates: Literal["drop", "raise"] = "drop",
) -> PreparedEmbedding:
    """Validate, de-duplicate and PCA-reduce an embedding (METHOD.md §2–3).

    Duplicates are checked on the input and again after PCA (points that differ only in the
    discarded components coincide after the projection, and would give log 0).
    """
    if duplicates not in ("drop", "raise"):
        raise InputError(f"duplicates={duplicates!r} is not known; pass 'drop' or 'raise'.")
    _preflight(X, pca, None, "cpu", whole=False)
    arr = check_embedding(X)
    n_samples, n_features = arr.shape
    distinct, kept = drop_duplicates(arr)
    reduced = None
    if pca is not None and len(distinct) > 1:
        reduced = pca_reduce(distinct, pca)
        distinct, again = drop_duplicates(reduced.scores)
        kept = kept[again]
    n_dropped = n_samples - len(kept)
    if len(kept) < 2:
        raise InputError(
            f"all {n_samples} rows of X are identical; local dimension needs distinct points."
        )
    if n_dropped and duplicates == "raise":
        raise InputError(
            f"X has {n_dropped} duplicate rows (of {n_samples}); remove them or pass "
            "duplicates='drop'."
        )
    n_pca = None if reduced is None else reduced.n_components
    return PreparedEmbedding(distinct, kept, n_samples, n_features, n_dropped, n_pca, reduced)


@dataclass(frozen=True)
class LocalDimensionResult:
    """Local intrinsic dimension at several neighbourhood sizes.

    Attributes
    ----------
    profile : dict of int to float
        Aggregate LID (dimensionless) at each K.
    pointwise : ndarray of shape (n_points, len(k))
        Per-point LID; column j is scale ``k[j]``; rows follow ``kept``.
    k : tuple of int
        Neighbourhood sizes, ascending.
    estimator, aggregate : str
    n_samples : int
        Input rows.
    n_points : int
        Distinct points analysed.
    n_features : int
        Input columns.
    duplicates_dropped : int
    pca : int or None
        PCA components used; None when skipped.
    ci : dict of int to (float, float) or None
        Percentile bootstrap interval of the aggregate over points, when requested.
    confidence : float or None
    kept : ndarray of shape (n_points,)
        Input row of each analysed point.
    neighbors : KNNResult
        The single kNN search (at the largest K) every scale was read from.
    """

    profile: dict[int, float]
    pointwise: np.ndarray
    k: tuple[int, ...]
    estimator: str
    aggregate: str
    n_samples: int
    n_points: int
    n_features: int
    duplicates_dropped: int
    pca: int | None
    ci: dict[int, tuple[float, float]] | None = None
    confidence: float | None = None
    kept: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    neighbors: KNNResult | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's ``lid --json`` schema)."""
        rows = []
        for kk in self.k:
            row: dict[str, Any] = {"k": kk, "lid": float(self.profile[kk])}
            if self.ci is not None:
                row["ci_low"], row["ci_high"] = (float(v) for v in self.ci[kk])
            rows.append(row)
        return {
            "estimator": self.estimator,
            "aggregate": self.aggregate,
            "n_points": self.n_points,
            "n_features": self.n_features,
            "duplicates_dropped": self.duplicates_dropped,
            "pca": self.pca,
            "profile": rows,
        }


def resolve_scales(k: int | Sequence[int] | None, n_points: int, estimator: str) -> tuple[int, ...]:
    """The neighbourhood sizes to evaluate: ``k`` checked, or the default list capped at N−1."""
    k_min = min_neighbors(estimator)
    if k is None:
        if n_points - 1 < k_min:
            raise InputError(
                f"only {n_points} distinct points; estimator {estimator!r} needs at least "
                f"{k_min + 1}."
            )
        capped = [kk for kk in DEFAULT_SCALES if k_min <= kk <= n_points - 1]
        return tuple(capped) if capped else (n_points - 1,)
    return check_k_list(k, n_distinct=n_points, min_k=k_min)


def local_dimension(
    X: npt.ArrayLike,
    k: int | Sequence[int] | None = None,
    *,
    estimator: str = "mle",
    aggregate: str = "mean",
    pca: int | None = 300,
    duplicates: Literal["drop", "raise"] = "drop",
    device: _backend.Device = "auto",
    n_bootstrap: int = 0,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    backend: Literal["torch", "faiss"] = "torch",
    **estimator_params: Any,
) -> LocalDimensionResult:
    """Local intrinsic dimension of an embedding at one or many neighbourhood sizes.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embedding, one row per stimulus (NumPy array or torch tensor).
    k : int or sequence of int, optional
        Neighbourhood sizes K. Default: 5, 10, 20, 50, 100, 200, 500, 1000, capped at N−1
        (N distinct points). Explicit values above N−1 are an error.
    estimator : {"mle", "mle-unbiased", "twonn", "mada", "mom", "tle", "gride"}
        Pointwise estimator (METHOD.md §3); ``"mle"`` is Levina–Bickel, the paper's.
    aggregate : {"mean", "harmonic", "median"}
        How pointwise values become one number per K; the paper uses the mean.
    pca : int or None
        Principal components kept before the search (300, as in the paper); None skips PCA.
    duplicates : {"drop", "raise"}
        Exact duplicate rows give zero distances; they are dropped and counted by default.
    device : {"auto", "cpu", "cuda"}
        Where the kNN GEMMs run.
    n_bootstrap : int
        Bootstrap resamples of the points for a percentile CI of each aggregate (0: none).
    confidence : float
        CI level.
    random_state : int, Generator or None
        Seed of the bootstrap.
    backend : {"torch", "faiss"}
        kNN backend.
    **estimator_params
        Passed to the estimator (e.g. ``fit="linear"`` for twonn, ``epsilon`` for tle).

    Returns
    -------
    LocalDimensionResult

    References
    ----------
    Levina & Bickel (2004), "Maximum likelihood estimation of intrinsic dimension", eq. (8).

    Examples
    --------
    >>> import numpy as np
    >>> from repscope import local_dimension
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(2000, 3)) @ rng.standard_normal((3, 20))
    >>> res = local_dimension(X, k=[10, 20], pca=None)
    >>> {k: round(v) for k, v in res.profile.items()}
    {10: 3, 20: 3}
    """
    check_options(estimator, aggregate, n_bootstrap)
    _preflight(X, pca, k, device)
    prepared = prepare_embedding(X, pca=pca, duplicates=duplicates)
    return estimate_prepared(
        prepared,
        k,
        estimator=estimator,
        aggregate=aggregate,
        device=device,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        random_state=random_state,
        backend=backend,
        **estimator_params,
    )


def _preflight(
    X: Any,
    pca: int | None,
    k: int | Sequence[int] | None,
    device: _backend.Device,
    *,
    whole: bool = True,
) -> None:
    """Refuse, before the float64 copy, an embedding whose estimated peak exceeds free memory.

    ``whole``: all of :func:`local_dimension` (copy, PCA, the kNN at the largest K, the
    estimates); else the copy and PCA of :func:`prepare_embedding` only. Anything the
    validation would reject (not a 2-D array, bad ``pca`` or ``k``) is left to it.
    """
    shape = _memory.array_shape(X)
    if shape is None or shape[0] < 2:
        return
    n, d, dtype = shape
    if pca is not None and (
        isinstance(pca, bool) or not isinstance(pca, (int, np.integer)) or pca < 1
    ):
        return
    itemsize = 8 if dtype == np.float64 else 4
    q = d if pca is None else min(int(pca), n, d)
    fix = (
        f"pass pca={min(300, d - 1)} or use repscope.distributed.distributed_local_dimension."
        if pca is None and d > 300
        else "pass a smaller pca, a random subsample of the rows, or use "
        "repscope.distributed.distributed_local_dimension."
    )
    if not whole:
        need = _memory.prepare_bytes(n, d, pca=pca, itemsize=itemsize)
        what = f"dimension: {_memory.describe((n, d), dtype)}"
        what += " as float64" if pca is None else f" with PCA to {q}"
        _memory.check_memory(what, need, "cpu", fix)
        return
    ks = DEFAULT_SCALES if k is None else ((k,) if isinstance(k, numbers.Integral) else k)
    try:
        k_max = min(max(int(v) for v in ks), n - 1)
    except (TypeError, ValueError):
        return
    if k_max < 1:
        return
    dev = _backend.resolve_device(device)
    n_scales = len(ks) if hasattr(ks, "__len__") else 1
    need = _memory.local_dimension_bytes(n, d, k_max, pca=pca, itemsize=itemsize, n_scales=n_scales)
    what = f"dimension: kNN on {_memory.describe((n, d), dtype)}"
    what += "" if pca is None else f" (PCA to {q})"
    what += f" at K={k_max}"
    _memory.check_memory(what, need, "cpu", fix)
    if dev.type != "cpu":
        _memory.check_memory(what, _memory.knn_device_bytes(n, q, k_max), dev, fix)


def check_options(estimator: str, aggregate: str, n_bootstrap: int) -> None:
    """Estimator, aggregate and bootstrap count, checked before any data work."""
    if estimator not in ESTIMATORS:
        raise InputError(
            f"estimator={estimator!r} is not known; pass one of {', '.join(ESTIMATORS)}."
        )
    if aggregate not in AGGREGATES:
        raise InputError(
            f"aggregate={aggregate!r} is not known; pass one of {', '.join(AGGREGATES)}."
        )
    if not isinstance(n_bootstrap, numbers.Integral) or n_bootstrap < 0:
        raise InputError(f"n_bootstrap={n_bootstrap!r} must be a non-negative integer.")


def estimate_prepared(
    prepared: PreparedEmbedding,
    k: int | Sequence[int] | None = None,
    *,
    estimator: str = "mle",
    aggregate: str = "mean",
    device: _backend.Device = "auto",
    n_bootstrap: int = 0,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    backend: Literal["torch", "faiss"] = "torch",
    neighbors: KNNResult | None = None,
    **estimator_params: Any,
) -> LocalDimensionResult:
    """:func:`local_dimension` on an embedding already prepared by :func:`prepare_embedding`.

    ``neighbors``, when given, is a kNN of ``prepared.X`` itself (self excluded) with at least
    ``max(k)`` columns, e.g. from :func:`repscope.distributed.distributed_knn`; it replaces the
    search here (``device`` and ``backend`` are then unused).
    """
    ks = resolve_scales(k, len(prepared.X), estimator)
    if neighbors is None:
        neighbors = knn(prepared.X, max(ks), device=device, backend=backend)
    elif len(neighbors.indices) != len(prepared.X):
        raise InputError(
            f"neighbors has {len(neighbors.indices)} rows but the prepared embedding has "
            f"{len(prepared.X)} points; pass the kNN of prepared.X."
        )
    else:
        neighbors = neighbors.truncate(max(ks))
    pointwise = pointwise_dimension(
        estimator,
        neighbors.distances,
        ks,
        indices=neighbors.indices,
        X=prepared.X if estimator in _NEEDS_POINTS else None,
        **estimator_params,
    )
    agg = np.atleast_1d(_aggregate(pointwise, aggregate))
    ci = None
    if n_bootstrap:
        bounds = bootstrap_ci(
            pointwise,
            aggregate,
            n_bootstrap=int(n_bootstrap),
            confidence=confidence,
            random_state=random_state,
        )
        ci = {kk: (float(lo), float(hi)) for kk, (lo, hi) in zip(ks, bounds, strict=True)}
    return LocalDimensionResult(
        profile={kk: float(v) for kk, v in zip(ks, agg, strict=True)},
        pointwise=pointwise,
        k=ks,
        estimator=estimator,
        aggregate=aggregate,
        n_samples=prepared.n_samples,
        n_points=len(prepared.X),
        n_features=prepared.n_features,
        duplicates_dropped=prepared.duplicates_dropped,
        pca=prepared.pca,
        ci=ci,
        confidence=confidence if n_bootstrap else None,
        kept=prepared.kept,
        neighbors=neighbors,
    )


def _aggregate(pointwise: np.ndarray, how: str) -> np.ndarray:
    return np.asarray(aggregate(pointwise, how), dtype=np.float64)
