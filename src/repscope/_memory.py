"""Memory preflight: peak bytes of each stage from its shapes, and a clear refusal.

Every estimator returns the bytes a stage *allocates* beyond the arrays it is given (its
inputs already sit in memory, so they are not counted), at its peak, when it runs on the CPU.
They follow the code of the stage allocation by allocation (float64 copies, temporaries of
NumPy expressions, LAPACK work arrays, torch buffers) and take the larger of consecutive
phases rather than their sum. They are upper bounds meant to be tight: the tests hold them
to ``measured <= estimate <= 3 × measured`` on medium shapes (``tests/test_memory.py``).

:func:`check_memory` compares an estimate with the memory free now
(:func:`repscope._backend.available_memory`) and raises :class:`InputError` with one line:
what, how much is needed and free, and what to change. Stages call it before their first
large allocation.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from repscope import _backend
from repscope._validation import InputError

__all__ = [
    "ASSUMED_EMBEDDING_WIDTH",
    "ASSUMED_MODEL_BYTES",
    "ASSUMED_VOXELS",
    "PAIRWISE_METHODS",
    "array_shape",
    "brain_alignment_bytes",
    "check_memory",
    "describe",
    "extraction_bytes",
    "fit_pairwise_samples",
    "format_gb",
    "knn_bytes",
    "knn_device_bytes",
    "local_dimension_bytes",
    "pairwise_bytes",
    "pca_bytes",
    "prepare_bytes",
    "ridge_bytes",
    "ridge_device_bytes",
    "spectrum_bytes",
    "study_stage_bytes",
]

logger = logging.getLogger(__name__)

_F64 = 8
_I64 = 8
#: Width assumed for an embedding before extraction has produced one (a ResNet-50's 2048).
ASSUMED_EMBEDDING_WIDTH = 2048
#: Voxels assumed per subject before the responses are loaded (NSD's visual ROIs at 1.8 mm
#: hold 10 000 to 40 000).
ASSUMED_VOXELS = 20_000
#: Weights and framework state of a model before it is loaded (~300 M float32 parameters).
ASSUMED_MODEL_BYTES = 1.2e9
#: Activations of one image in a forward pass, per byte of its input tensor (a rough figure
#: for ConvNeXt/ViT-sized models at 224 px; only batches on the CPU rely on it).
_ACTIVATION_BYTES_PER_INPUT_BYTE = 60.0

# kNN internals, mirrored from neighbors.py / _candidate_search.py
_N_NORM_PIECES = 3
_POINTS_PER_CLUSTER = 3000
_MAX_CLUSTERS = 256
_COL_CHUNK = 1024
_PREPARE_ELEMENTS = 1 << 22
# one cell of a candidate-search tile: the float32 GEMM output, its float32 copy, the masked
# copy, comparison masks and top-k outputs
_CANDIDATE_TILE_CELL = 24
# one cell of an exact float64 tile: three live float64 temporaries of the expansion
# ``qn + xn - 2 Q xᵀ`` (measured 24 bytes per cell at the peak), and the self mask
_EXACT_TILE_CELL = 26
# what the estimates do not itemize: thread stacks, LAPACK blocking, small temporaries
_UNITEMIZED = 1.05
# neighbors.exact_distances: up to 8 threads, each with chunk temporaries of 2^17 values
_REMEASURE_THREADS = 8 * (1 << 17) * 3 * _F64
# rows of the uncertified-row fallback searched at once (neighbors._FALLBACK_ROWS)
_FALLBACK_ROWS = 512

#: Methods that build N × N (or condensed N(N-1)/2) matrices: float64 N × N matrices held at
#: their peak, measured at N = 2000-4000 (see tests/test_memory.py), rounded up by ~10 %.
#: Proportional to N² at any size, since only the N × N arrays matter.
PAIRWISE_METHODS: dict[str, float] = {
    "rsa": 7.8,  # two condensed RDMs, spearmanr's stacked copy, ranks and sort indices
    "rsa-pearson": 3.3,
    "rsa-kendall": 4.0,
    "cka-rbf": 5.5,  # K, L, their centred copies and one product
    "cka-rbf-debiased": 5.5,
    "null-cka": 3.3,  # K, L, the permuted L and the product
    "null-cka-rbf": 4.4,
    "null-rsa": 5.6,  # ranked RDMs, square Dy, its permuted copy, triangle indices
    "matrix-rsa": 3.9,  # one RDM being ranked, plus 0.55 per representation (ranks kept)
}
_MATRIX_RSA_PER_REPRESENTATION = 0.55


# --------------------------------------------------------------------------- formatting


def format_gb(n_bytes: float) -> str:
    """``"14.2 GB"`` (decimal gigabytes, one decimal)."""
    return f"{n_bytes / 1e9:.1f} GB"


def describe(shape: tuple[int, ...], dtype: Any) -> str:
    """``"200000×4096 float64"``."""
    return "×".join(str(int(s)) for s in shape) + f" {np.dtype(dtype).name}"


def array_shape(X: Any) -> tuple[int, int, Any] | None:
    """``(n_rows, n_columns, dtype)`` of a 2-D array-like without copying it, or None.

    None when ``X`` is not (cheaply) a 2-D numeric array; its validation reports that.
    """
    shape, dtype = getattr(X, "shape", None), getattr(X, "dtype", None)
    if shape is None or dtype is None:
        return None
    try:
        dt = np.dtype(str(dtype).replace("torch.", ""))
    except TypeError:
        return None
    if len(shape) != 2 or not (np.issubdtype(dt, np.number) or np.issubdtype(dt, np.bool_)):
        return None
    return int(shape[0]), int(shape[1]), dt


def _to_f64(n: float, d: float, itemsize: int) -> float:
    """``check_embedding``: a float64 copy unless the input is float64 already, plus the
    isfinite mask (transient, but at the same time as the copy)."""
    return (n * d * _F64 if itemsize != _F64 else 0.0) + n * d


# --------------------------------------------------------------------------- the check


def check_memory(what: str, need_bytes: float, device: Any, fix: str) -> float:
    """Refuse a stage whose estimated peak exceeds the memory free on ``device``.

    Parameters
    ----------
    what : str
        The stage and its shapes, e.g. ``"dimension: kNN on 200000×4096 float64"``.
    need_bytes : float
        Estimated peak bytes (one of the estimators here).
    device : torch.device or str
        Where the bytes are needed (``"cpu"`` for host memory).
    fix : str
        What the user can change, e.g. ``"pass pca=300"``.

    Returns
    -------
    float
        Bytes free on ``device``.

    Raises
    ------
    InputError
        ``"<what> needs ~14.2 GB, 9.8 GB free; <fix>"`` when ``need_bytes`` exceeds the free
        memory.
    """
    dev = _backend.resolve_device(device) if isinstance(device, str) or device is None else device
    free = float(_backend.available_memory(dev))
    logger.debug("%s: ~%s estimated, %s free", what, format_gb(need_bytes), format_gb(free))
    if need_bytes > free:
        where = "" if getattr(dev, "type", "cpu") == "cpu" else f" on {dev}"
        raise InputError(
            f"{what} needs ~{format_gb(need_bytes)}, {format_gb(free)} free{where}; {fix}"
        )
    return free


# --------------------------------------------------------------------------- kNN


def _clusters(n: int) -> int:
    return int(min(_MAX_CLUSTERS, max(1, n // _POINTS_PER_CLUSTER)))


def _capacity(n_ref: int, k: int, symmetric: bool) -> int:
    return max(1, min(n_ref - (1 if symmetric else 0), k + max(32, k // 2)))


def _block(n: int, free: float | None, block_size: int | None) -> int:
    """``neighbors._choose_block`` without a device query when ``free`` is given."""
    if block_size is not None:
        return max(1, min(int(block_size), n))
    budget = min((free if free is not None else 16e9) // 8, 2 << 30)
    b = int(math.sqrt(budget / 16))
    return max(1, min(n, 4096, max(256, b)))


def knn_bytes(
    n_samples: int,
    n_features: int,
    n_neighbors: int,
    *,
    n_queries: int | None = None,
    precision: str = "float32",
    itemsize: int = 8,
    block_size: int | None = None,
    free: float | None = None,
) -> float:
    """Peak bytes of :func:`repscope.knn` on the CPU.

    Parameters
    ----------
    n_samples, n_features : int
        Reference points.
    n_neighbors : int
        K_max.
    n_queries : int, optional
        Separate queries (same width); None: the points against themselves.
    precision : {"bfloat16", "float32", "float64", "auto"}
        ``"auto"`` is counted as float32 (the larger of the two reduced precisions).
    itemsize : int
        Bytes per value of the input (4 for float32: a float64 copy is made).
    block_size, free : optional
        The tile rows, or the free memory they are chosen from.

    Returns
    -------
    float
        Bytes: the float64 copy of the input, the rounded GEMM operands, the candidate
        buffers, the exact re-measure and sort, and one tile's working set.
    """
    n, d, k = int(n_samples), int(n_features), int(n_neighbors)
    symmetric = n_queries is None
    nq = n if symmetric else int(n_queries)
    n_all = n if symmetric else n + nq
    convert = _to_f64(n_all, d, itemsize)
    held = n_all * d * _F64 if itemsize != _F64 else 0.0  # the copy stays for the whole call
    block = _block(max(n, nq), free, block_size)
    if precision == "float64":
        return (
            held + max(convert - held, _exact_phase(n, nq, d, k, block, symmetric))
        ) * _UNITEMIZED
    item = 2 if precision == "bfloat16" else 4
    cap = _capacity(n, k, symmetric)
    width = d + 2 * _N_NORM_PIECES
    n_clusters = _clusters(n)
    operands = (2 * n + min(block, _COL_CHUNK) + (0 if symmetric else nq)) * width * item
    norms = 2 * n_all * _F64
    lower = nq * n_clusters * 4
    prepare_tmp = min(n * d, _PREPARE_ELEMENTS) * (3 * _F64 + item)
    init = n_all * d * _F64 + operands + norms + lower + prepare_tmp
    buffers = nq * cap * (4 + _I64) + nq * 4
    tile = block * min(block, _COL_CHUNK) * _CANDIDATE_TILE_CELL
    sweep = operands + norms + lower + buffers + tile
    final = operands + norms + lower + buffers + nq * cap * (4 * _I64 + 1)
    # exact float64 re-measure of the candidates, with a float32 copy of the points, in
    # threads that each gather chunks of ~2^17 values (source, difference, square)
    remeasure = nq * cap * (3 * _I64 + 1) + n * d * 5 + nq * _F64 + _REMEASURE_THREADS
    sort = nq * cap * (3 * _I64 + 1) + nq * (k + 1) * 5 * _I64 + nq * _F64
    # rows the candidates cannot certify are re-searched exactly, _FALLBACK_ROWS at a time
    fallback = n * d * _F64 + _exact_tile(min(block, _FALLBACK_ROWS), k, n, block)
    fallback += nq * k * 2 * _I64
    peak = held + max(convert - held, init, sweep, final, remeasure, sort, fallback)
    return peak * _UNITEMIZED


def _exact_tile(rows: int, k: int, n: int, block: int | None = None) -> float:
    """One (rows × block) float64 tile of the exact search with its candidate lists."""
    cols = rows if block is None else block
    width = min(k + 8, n)
    return rows * cols * _EXACT_TILE_CELL + rows * width * 6 * _I64


def _exact_phase(n: int, nq: int, d: int, k: int, block: int, symmetric: bool) -> float:
    """The float64 blocked search: centred copies, one tile, the growing result."""
    centred = (n + nq) * d * _F64  # X - mean and queries - mean (both, also when symmetric)
    result = 2 * nq * k * 2 * _I64  # per-block results, then their concatenation
    return centred + n * _F64 + _exact_tile(block, k, n) + result


def knn_device_bytes(
    n_samples: int,
    n_features: int,
    n_neighbors: int,
    *,
    n_queries: int | None = None,
    precision: str = "bfloat16",
    block_size: int | None = None,
    free: float | None = None,
) -> float:
    """Bytes :func:`repscope.knn` holds on an accelerator: GEMM operands, norms, cluster
    bounds, candidate buffers and one tile (the float64 copies stay on the host)."""
    n, d, k = int(n_samples), int(n_features), int(n_neighbors)
    symmetric = n_queries is None
    nq = n if symmetric else int(n_queries)
    block = _block(max(n, nq), free, block_size)
    if precision == "float64":
        return 0.0
    item = 2 if precision == "bfloat16" else 4
    cap = _capacity(n, k, symmetric)
    width = d + 2 * _N_NORM_PIECES
    operands = (2 * n + min(block, _COL_CHUNK) + (0 if symmetric else nq)) * width * item
    held = operands + 2 * (n + (0 if symmetric else nq)) * _F64 + nq * _clusters(n) * 4
    buffers = nq * cap * (4 + _I64) + nq * 4
    return held + buffers + block * min(block, _COL_CHUNK) * _CANDIDATE_TILE_CELL


# --------------------------------------------------------------------------- PCA, LID, spectrum


def pca_bytes(n_samples: int, n_features: int, n_components: int) -> float:
    """Peak bytes of ``preprocessing.pca_reduce`` on a float64 ``n_samples × n_features``.

    Up to ``min(n, d) = 512`` (the SVD path): the centred copy, LAPACK's copy of it, U, Vᵀ and
    the divide-and-conquer work arrays. Above (the Gram path): the centred copy and the
    ``min(n, d)²`` Gram matrix with ``eigh``'s copy, eigenvectors and work.
    """
    n, d = int(n_samples), int(n_features)
    m = min(n, d)
    q = min(int(n_components), m)
    centred = n * d * _F64
    scores = n * q * _F64 + 2 * q * d * _F64
    if m <= 512:  # preprocessing._SVD_LIMIT
        # NumPy's gufunc writes U and Vᵀ to work buffers, then copies them out: both twice
        factor = n * d * _F64 + 2 * (n * m + m * d) * _F64 + (4 * m * m + 8 * (n + d)) * _F64
        scores += m * d * _F64  # Vᵀ stays while the scores are formed
    else:
        # the Gram matrix, eigh's copy of it, eigenvectors (buffer and output), dsyevd's work
        factor = 6 * m * m * _F64
        scores += m * m * _F64 + (n * q + q * d) * _F64 * (d > n)
    return (centred + max(factor, scores)) * _UNITEMIZED


def prepare_bytes(
    n_samples: int, n_features: int, *, pca: int | None = 300, itemsize: int = 8
) -> float:
    """Peak bytes of ``dimension.estimate.prepare_embedding``: the float64 copy of the input
    with its isfinite mask, duplicate removal (row hashes) and the PCA."""
    n, d = int(n_samples), int(n_features)
    convert = n * d * _F64 if itemsize != _F64 else 0.0
    dedupe = 2 * n * _I64 + min(n, 8192) * d * 2 * _F64
    reduce = 0.0 if pca is None else pca_bytes(n, d, min(int(pca), n, d))
    return convert + max(n * d, reduce + dedupe)


def local_dimension_bytes(
    n_samples: int,
    n_features: int,
    k_max: int,
    *,
    pca: int | None = 300,
    n_scales: int = 8,
    itemsize: int = 8,
    precision: str = "float32",
    free: float | None = None,
) -> float:
    """Peak bytes of :func:`repscope.local_dimension` on the CPU.

    The float64 copy of the input, then the larger of the PCA (with duplicate removal) and
    the kNN on the reduced points (plus what stays: the scores, the PCA axes, the pointwise
    estimates).
    """
    n, d = int(n_samples), int(n_features)
    k = max(1, min(int(k_max), n - 1))
    convert = n * d * _F64 if itemsize != _F64 else 0.0
    q = d if pca is None else min(int(pca), n, d)
    kept = 0.0 if pca is None else n * q * _F64 + q * d * _F64
    search = knn_bytes(n, q, k, precision=precision, free=free)
    estimates = n * k * 3 * _F64 + n * n_scales * _F64
    after = kept + max(search, n * k * 2 * _I64 + estimates)
    # without PCA the float64 copy is the searched array; with PCA it is freed after it
    return max(prepare_bytes(n, d, pca=pca, itemsize=itemsize), after + convert * (pca is None))


def spectrum_bytes(n_samples: int, n_features: int, *, itemsize: int = 8) -> float:
    """Peak bytes of :func:`repscope.spectrum` / ``eigenvalues``: the float64 copy, the
    centred copy and LAPACK's copy of it for the singular values (no singular vectors)."""
    n, d = int(n_samples), int(n_features)
    m = min(n, d)
    work = (4 * m * m + 8 * (n + d)) * _F64
    return (_to_f64(n, d, itemsize) + 2 * n * d * _F64 + work) * _UNITEMIZED


# --------------------------------------------------------------------------- ridge


def _ridge_parts(
    n: int, p: int, t: int, cv: int, n_alphas: int, n_te: int, batch: int | None
) -> tuple[float, float, float, float]:
    """(standardize peak, solver held, fold transient, per-batch work) of ridge_alignment."""
    n_tr = max(n - n_te, 1)
    n_fold_tr = n_tr - n_tr // cv
    n_val = n_tr - n_fold_tr + 1
    dual = p > n_fold_tr
    r = n_fold_tr if dual else p
    # X[train] copy, the difference and the quotient; std's deviation array
    standardize = 3 * n_tr * p * _F64
    if dual:
        per_fold = (2 * r * r + p * r + n_val * r) * _F64
        held = cv * per_fold + (2 * n_tr * n_tr + p * n_tr) * _F64
        transient = 2 * n_tr * p * _F64 + 5 * n_tr * n_tr * _F64
    else:
        held = (n_tr * p + (cv + 1) * 2 * p * p) * _F64
        transient = 2 * n_tr * p * _F64 + 5 * p * p * _F64 + 2 * n_val * p * _F64
    if batch is None:  # _ridge_cv.target_batch_size on the CPU, with 4 GB or more free
        per_target = 8 * (3 * n_tr + (3 * cv + 6) * min(p, n_tr) + 3 * n_alphas + 16)
        batch = max(1, int((1 << 30) // per_target))
    batch = min(t, batch)
    # one batch: its train targets, a fold's validation targets and products, the refit and
    # the test predictions with their residuals; plus one fold's validation design
    work = batch * (n_tr + 3 * n_val + 7 * n_te + 10 * r + 2 * n_alphas) * _F64
    work += n_val * p * _F64
    held += n * p * _F64 + n_te * p * _F64  # standardized train and test rows, test tensor
    return standardize, held, transient, work


def _test_rows(n: int, test_size: float, n_test: int | None) -> int:
    """Held-out rows of a ridge fit: ``n_test`` when given, else ``ceil(test_size * n)``."""
    return math.ceil(test_size * n) if n_test is None else int(n_test)


def ridge_bytes(
    n_samples: int,
    n_features: int,
    n_targets: int,
    *,
    cv: int = 5,
    n_alphas: int = 20,
    test_size: float = 0.2,
    n_test: int | None = None,
    x_itemsize: int = 8,
    y_itemsize: int = 8,
    batch_targets: int | None = None,
) -> float:
    """Peak bytes of :func:`repscope.alignment.ridge.ridge_alignment` on the CPU.

    Float64 copies of X and Y; the standardized train and test rows; per fold the
    eigendecomposition of the p × p (primal) or n × n (dual, p > n) Gram matrix with the
    validation design in its basis, held for every penalty; and one batch of targets, sized
    by the kernel from the free memory (``batch_targets``, from
    ``_ridge_cv.target_batch_size``; default: its CPU value, a 1 GiB working set). ``n_test``
    (an explicit split's test rows; 0 for :class:`~repscope.alignment.ridge.RidgeEncoder`)
    overrides ``test_size``.
    """
    n, p, t = int(n_samples), int(n_features), int(n_targets)
    n_te = _test_rows(n, test_size, n_test)
    convert = _to_f64(n, p, x_itemsize) + _to_f64(n, t, y_itemsize)
    standardize, held, transient, work = _ridge_parts(n, p, t, cv, n_alphas, n_te, batch_targets)
    outputs = 12 * t * _F64
    return convert + max(standardize, held + max(transient, work)) + outputs


def ridge_device_bytes(
    n_samples: int,
    n_features: int,
    n_targets: int,
    *,
    cv: int = 5,
    n_alphas: int = 20,
    test_size: float = 0.2,
    n_test: int | None = None,
    batch_targets: int | None = None,
) -> float:
    """Bytes the ridge kernel holds on an accelerator (design, fold bases, one batch)."""
    n, p, t = int(n_samples), int(n_features), int(n_targets)
    n_te = _test_rows(n, test_size, n_test)
    _, held, transient, work = _ridge_parts(n, p, t, cv, n_alphas, n_te, batch_targets)
    return held + max(transient, work)


def brain_alignment_bytes(
    n_images: int,
    n_features: int,
    n_voxels: int,
    *,
    pca: int | None = 300,
    n_stimuli: int | None = None,
    cv: int = 5,
    n_alphas: int = 20,
    test_size: float = 0.2,
    n_test: int | None = None,
    x_itemsize: int = 4,
    y_itemsize: int = 4,
    batch_targets: int | None = None,
) -> float:
    """Peak bytes of :func:`repscope.alignment.brain.brain_alignment` for one subject.

    The float64 copy of the embedding (``n_stimuli`` rows, default ``n_images``), the
    subject's images × voxels responses, the PCA fit on the train rows and the ridge from
    the scores to every voxel. ``n_test`` (e.g. the shared images) overrides ``test_size``.
    """
    n, d, v = int(n_images), int(n_features), int(n_voxels)
    n_stim = n if n_stimuli is None else int(n_stimuli)
    convert = _to_f64(n_stim, d, x_itemsize)
    responses = n * v * y_itemsize + n * v  # the copy and its isfinite mask
    n_te = _test_rows(n, test_size, n_test)
    n_tr = n - n_te
    if pca is None:
        project = n * d * _F64
        q = d
    else:
        q = min(int(pca), n_tr, d)
        project = n * d * _F64 + n_tr * d * _F64 + pca_bytes(n_tr, d, q) + n * q * _F64
    fit = ridge_bytes(
        n,
        q,
        v,
        cv=cv,
        n_alphas=n_alphas,
        n_test=n_te,
        y_itemsize=y_itemsize,
        batch_targets=batch_targets,
    )
    return convert + responses + max(project, n * q * _F64 + fit)


# --------------------------------------------------------------------------- N × N methods


def pairwise_bytes(n_samples: int, method: str, *, n_representations: int = 2) -> float:
    """Peak bytes of a method that builds N × N (or condensed N(N-1)/2) matrices.

    Parameters
    ----------
    n_samples : int
    method : str
        A key of :data:`PAIRWISE_METHODS`.
    n_representations : int
        For ``"matrix-rsa"``: representations whose ranked RDMs are kept at once.
    """
    n = float(n_samples)
    matrices = PAIRWISE_METHODS[method]
    if method == "matrix-rsa":
        matrices += _MATRIX_RSA_PER_REPRESENTATION * n_representations
    return matrices * n * n * _F64


def fit_pairwise_samples(free: float, method: str, *, n_representations: int = 2) -> int:
    """The largest number of stimuli whose ``method`` fits in ``free`` bytes."""
    per_cell = pairwise_bytes(1, method, n_representations=n_representations)
    return max(4, int(math.sqrt(max(free, 0.0) / per_cell)))


# --------------------------------------------------------------------------- extraction


def extraction_bytes(
    n_images: int,
    n_features: int,
    *,
    batch_size: int = 8,
    input_shape: tuple[int, ...] = (3, 224, 224),
    model_bytes: float = ASSUMED_MODEL_BYTES,
    on_cpu: bool = True,
    prefetch: int = 0,
    cached: bool = True,
) -> float:
    """Peak bytes of :func:`repscope.io.extract.extract_embeddings` in host memory.

    The features are kept per batch, joined (a copy, then its reordering: another) and, when
    ``cached``, serialized for the cache (two more): four float32 copies of ``n × width`` at
    the end (three without the cache). While batches run: the model (``model_bytes``), the
    batch input and, on the CPU, its activations (``batch × input bytes × 60``, a rough
    figure), plus ``prefetch`` batches decoded ahead by DataLoader workers.
    """
    features = float(n_images) * n_features * 4
    image = 4.0 * math.prod(input_shape)
    batch = batch_size * image * (1 + prefetch)
    if on_cpu:
        batch += batch_size * image * _ACTIVATION_BYTES_PER_INPUT_BYTE
    return max(model_bytes + batch + features, (4 if cached else 3) * features)


# --------------------------------------------------------------------------- a study plan


def study_stage_bytes(config: Any, n_images: int) -> dict[str, float]:
    """Peak bytes of each kind of stage of ``repscope run``, before anything is loaded.

    From the image count and the config, with two assumptions stated here because the
    numbers are unknown before extraction and loading: every embedding is
    :data:`ASSUMED_EMBEDDING_WIDTH` (2048) wide and every subject has :data:`ASSUMED_VOXELS`
    (20 000) voxels; models weigh :data:`ASSUMED_MODEL_BYTES`. Each stage runs as the run
    does it: ``extract`` (the model, a batch, the features), ``dimension`` (the embedding,
    then LID per estimator and the spectrum), ``alignment`` (the embeddings of the model
    and its targets, their train-fit PCA scores, one ridge), ``brain`` (the loaded
    responses of every subject, the embedding, brain alignment or the model's LID) and
    ``brain-lid`` (the responses, LID of one ROI).

    Returns
    -------
    dict of str to float
        Keys ``extract``, ``dimension``, ``alignment``, ``brain``, ``brain-lid``.
    """
    n, w = int(n_images), ASSUMED_EMBEDDING_WIDTH
    on_cpu = _device_type(config.study.device) == "cpu"
    batch = config.embedding.batch_size
    batch = (8 if on_cpu else 256) if batch == "auto" else int(batch)
    pca = config.preprocessing.pca
    dim = config.dimension
    k_max = max(dim.k)
    embedding = n * w * 4.0  # float32 features, held by the stage that reads them
    out = {"extract": extraction_bytes(n, w, batch_size=batch, on_cpu=on_cpu)}
    lid = local_dimension_bytes(n, w, k_max, pca=pca, itemsize=4, n_scales=len(dim.k))
    spectral = spectrum_bytes(n, w, itemsize=4) if dim.global_measures else 0.0
    out["dimension"] = embedding + max(lid, spectral)
    n_test = math.ceil(0.2 * n)
    n_tr = n - n_test
    q = w if pca is None else min(int(pca), max(n_tr, 1), w)
    specs = list(config.model_specs)
    n_loaded = len(specs) if config.alignment.reference == "all-pairs" else min(2, len(specs))
    project = n * w * _F64 + n_tr * w * _F64 + pca_bytes(n_tr, w, q)
    ridge = ridge_bytes(n, q, q, n_test=n_test)
    out["alignment"] = n_loaded * (embedding + n * q * _F64) + max(project, ridge)
    brain = config.brain
    if brain is None:
        out["brain"] = out["brain-lid"] = 0.0
        return out
    responses = len(brain.subjects) * n * ASSUMED_VOXELS * 4.0
    n_shared = min(1000, n // 2) if brain.test == "shared" else None
    fit = brain_alignment_bytes(n, w, ASSUMED_VOXELS, pca=brain.pca, n_test=n_shared)
    out["brain"] = responses + embedding + max(fit, lid)
    roi = local_dimension_bytes(n, ASSUMED_VOXELS, k_max, pca=brain.pca, itemsize=4)
    out["brain-lid"] = responses + roi
    return out


def _device_type(device: Any) -> str:
    try:
        return str(_backend.resolve_device(device).type)
    except InputError:
        return "cpu"
