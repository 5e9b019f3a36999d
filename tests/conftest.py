"""Shared seeded fixtures: small point clouds and an independent brute-force kNN."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from nsd_fixture import mini_algonauts, mini_nsd, mini_nsd_copy  # noqa: F401 (fixtures)


def _brute_knn(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN from the full distance matrix: self excluded, ties kept in row order."""
    dist = cdist(X, X)
    np.fill_diagonal(dist, np.inf)
    indices = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, indices, axis=1), indices.astype(np.int64)


@pytest.fixture(scope="session")
def brute_knn() -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    """``brute_knn(X, k) -> (distances, indices)``, each (n, k), independent of repscope."""
    return _brute_knn


@pytest.fixture(scope="session")
def small_cloud() -> SimpleNamespace:
    """60 Gaussian points in R^5 (seed 0) with their 25 nearest neighbours."""
    X = np.random.default_rng(0).standard_normal((60, 5))
    distances, indices = _brute_knn(X, 25)
    return SimpleNamespace(X=X, distances=distances, indices=indices)
