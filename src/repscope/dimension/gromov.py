"""Multi-scale structural similarity by Gromov–Wasserstein distance (METHOD.md §4).

The paper's main scale-invariance metric: for a seeded sample of reference points, the GW
distance between a point's K-NN neighbourhood and its 2K-NN neighbourhood, each a metric-
measure space with uniform weights and Euclidean distances normalised by their mean. Uses POT
(``ot.gromov.gromov_wasserstein2``). Reads ONE exact kNN result at ``k_max``, as
:mod:`repscope.dimension.scales` does.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import pdist, squareform

from repscope._validation import InputError, check_embedding, check_random_state
from repscope.dimension.scales import _check_half_scales, _check_indices

__all__ = ["gromov_wasserstein_profile", "neighbourhood_gw"]


def neighbourhood_gw(A: npt.ArrayLike, B: npt.ArrayLike) -> float:
    """Gromov–Wasserstein discrepancy between two point clouds, scale-free.

    Each cloud is a metric-measure space: Euclidean distances divided by their mean over
    distinct pairs, uniform weights. The value is POT's squared-loss GW objective
    ``min_T Σ (C_A[i,k] − C_B[j,l])² T[i,j] T[k,l]`` (the GW distance of Mémoli 2011 is
    ``sqrt(value) / 2``), found by conditional gradient from the product coupling. GW is
    non-convex, so this is a local optimum: an upper bound of the exact discrepancy,
    deterministic for given inputs. Rounding below 0 is clipped to 0.

    Parameters
    ----------
    A : array-like of shape (n_a, n_features)
        First point cloud, n_a >= 2, not all points equal.
    B : array-like of shape (n_b, n_features_b)
        Second point cloud, n_b >= 2; its features need not match A's.

    Returns
    -------
    float
        Non-negative, dimensionless; 0 for isometric clouds up to a global scale.

    Raises
    ------
    InputError
        Invalid arrays, or a cloud whose points all coincide (mean distance 0).
    ImportError
        POT is not installed.

    References
    ----------
    Mémoli, F. (2011). Gromov–Wasserstein distances and the metric approach to object
    matching. Found. Comput. Math. 11, 417–487.
    Flamary, R. et al. (2021). POT: Python Optimal Transport. JMLR 22(78).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.random.default_rng(0).normal(size=(12, 3))
    >>> neighbourhood_gw(A, 3.0 * A[::-1] + 1.0) < 1e-12
    True
    """
    return _gw(
        _normalised_distances(check_embedding(A, name="A"), "A"),
        _normalised_distances(check_embedding(B, name="B"), "B"),
    )


def _gw(C1: np.ndarray, C2: np.ndarray) -> float:
    ot = _import_ot()
    value = ot.gromov.gromov_wasserstein2(C1, C2, loss_fun="square_loss", symmetric=True)
    return max(float(value), 0.0)


def _import_ot() -> ModuleType:
    try:
        import ot
    except ImportError as exc:
        raise ImportError(
            'Gromov-Wasserstein needs POT; install it with pip install "POT>=0.9".'
        ) from exc
    return ot


def _normalised_distances(points: np.ndarray, what: str) -> np.ndarray:
    condensed = pdist(points)
    scale = condensed.mean()
    if not scale > 0:
        raise InputError(
            f"{what} has {len(points)} coinciding points (mean pairwise distance 0); "
            "drop duplicate points first."
        )
    return squareform(condensed / scale)


def gromov_wasserstein_profile(
    X: npt.ArrayLike,
    indices: npt.ArrayLike,
    ks: Sequence[int],
    *,
    n_samples: int = 500,
    random_state: int | np.random.Generator | None = 0,
) -> dict[int, float]:
    """Structural similarity across scales: GW between each point's K- and 2K-neighbourhood.

    For a seeded sample of reference points x, the K-neighbourhood is x together with its
    K nearest neighbours (K + 1 points; x is included so the space is centred on the point
    it describes) and the 2K-neighbourhood is x with its 2K nearest neighbours; both are
    compared with :func:`neighbourhood_gw` (Euclidean distances in `X`, each matrix divided
    by its mean off-diagonal distance, uniform weights). The profile is the mean over the
    reference points at each K; lower and flatter means more scale-invariant.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        The embedding the kNN was computed on, in input units.
    indices : array-like of int, shape (n_samples_X, k_max)
        Exact kNN of `X` among its own rows, nearest first, self excluded, no repeats.
    ks : sequence of int
        Scales K, each with ``1 <= K`` and ``2K <= k_max``, no repeats.
    n_samples : int
        Reference points averaged over, drawn without replacement; capped at the number
        of rows of `X` (all points are then used).
    random_state : int, numpy Generator or None
        Seed of the reference sample.

    Returns
    -------
    dict of int to float
        ``{K: mean GW}`` in ascending K; dimensionless, >= 0.

    Raises
    ------
    InputError
        Malformed inputs, `indices` not matching `X`, a K with ``2K > k_max``, or a
        neighbourhood whose points all coincide (duplicates).
    ImportError
        POT is not installed.

    Notes
    -----
    Cost: one GW solve per reference point and K, on (K+1) × (2K+1) points; each
    conditional-gradient step solves an exact OT problem of that size, so large K
    dominate (seconds per point at K = 500).

    References
    ----------
    Scale-Invariance Drives Convergence in AI and Brain Representations (2025),
    "structural similarity across scales".

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.spatial.distance import cdist
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> d = cdist(X, X)
    >>> np.fill_diagonal(d, np.inf)
    >>> indices = np.argsort(d, axis=1, kind="stable")[:, :8]
    >>> sorted(gromov_wasserstein_profile(X, indices, [2, 4], n_samples=10))
    [2, 4]
    """
    arr = check_embedding(X)
    idx = _check_indices(indices)
    if idx.shape[0] != arr.shape[0]:
        raise InputError(
            f"indices has {idx.shape[0]} rows but X has {arr.shape[0]}; pass the kNN of X itself."
        )
    ks_checked = sorted(_check_half_scales(ks, idx.shape[1]))
    references = _sample_references(arr.shape[0], n_samples, random_state)
    return {
        k: float(np.mean([_reference_gw(arr, idx, x, k) for x in references])) for k in ks_checked
    }


def _reference_gw(X: np.ndarray, idx: np.ndarray, x: int, k: int) -> float:
    small = np.concatenate(([x], idx[x, :k]))
    large = np.concatenate(([x], idx[x, : 2 * k]))
    where = f"the neighbourhood of point {x} at K={k}"
    return _gw(_normalised_distances(X[small], where), _normalised_distances(X[large], where))


def _sample_references(
    n: int, n_samples: int, random_state: int | np.random.Generator | None
) -> np.ndarray:
    if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise InputError(f"n_samples={n_samples!r} must be a positive integer; pass e.g. 500.")
    rng = check_random_state(random_state)
    return rng.choice(n, size=min(int(n_samples), n), replace=False)
