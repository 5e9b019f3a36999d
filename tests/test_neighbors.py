"""The kNN engine against an independent reference (scikit-learn's exact brute-force search).

Exactness is the contract: identical neighbour indices (ties ordered by index) and distances
equal to float64 direct differences within 1e-12 relative, for every precision, block size
(including ragged block boundaries) and for data far from the origin.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from repscope import InputError, knn

PRECISIONS = ["bfloat16", "float32", "float64"]


def reference_knn(X: np.ndarray, k: int, queries: np.ndarray | None = None):
    """Exact float64 distances by direct differences; ties ordered by index."""
    Q = X if queries is None else queries
    D = cdist(Q, X)
    if queries is None:
        np.fill_diagonal(D, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(X.shape[0]), D.shape), D), axis=1)[:, :k]
    return np.take_along_axis(D, order, 1), order


def mixture(rng: np.random.Generator, n: int = 1500, d: int = 12, D: int = 40) -> np.ndarray:
    centres = rng.standard_normal((6, d)) * 4
    Z = centres[rng.integers(0, 6, n)] + rng.standard_normal((n, d))
    rot, _ = np.linalg.qr(rng.standard_normal((D, d)))
    return Z @ rot.T


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("block_size", [None, 97, 512])
def test_matches_sklearn_brute(precision, block_size):
    X = mixture(np.random.default_rng(1))
    res = knn(X, 25, precision=precision, block_size=block_size, device="cpu")
    nn = NearestNeighbors(n_neighbors=25, algorithm="brute").fit(X)
    d_ref, i_ref = nn.kneighbors()
    np.testing.assert_array_equal(res.indices, i_ref)
    np.testing.assert_allclose(res.distances, d_ref, rtol=1e-9, atol=0)
    d_exact, _ = reference_knn(X, 25)
    np.testing.assert_allclose(res.distances, d_exact, rtol=1e-12, atol=0)
    assert res.distances.dtype == np.float64 and res.indices.dtype == np.int64


@pytest.mark.parametrize("precision", PRECISIONS)
def test_far_from_origin_and_tiny_spread(precision):
    # norms 1e4 times the neighbour distances: the regime where GEMM distances cancel
    rng = np.random.default_rng(2)
    X = rng.standard_normal((800, 10)) * 0.01 + 100.0
    res = knn(X, 10, precision=precision, device="cpu")
    d_ref, i_ref = reference_knn(X, 10)
    np.testing.assert_array_equal(res.indices, i_ref)
    np.testing.assert_allclose(res.distances, d_ref, rtol=1e-9)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_ties_ordered_by_index(precision):
    # an integer lattice: squared distances are exact integers, so ties are genuine
    grid = np.stack(np.meshgrid(*[np.arange(6)] * 3), -1).reshape(-1, 3).astype(float)
    res = knn(grid, 20, precision=precision, block_size=50, device="cpu")
    d_ref, i_ref = reference_knn(grid, 20)
    np.testing.assert_array_equal(res.distances, d_ref)
    np.testing.assert_array_equal(res.indices, i_ref)


def test_k_equal_n_minus_one_and_tiny_sets():
    X = np.random.default_rng(3).standard_normal((7, 3))
    res = knn(X, 6)
    _, i_ref = reference_knn(X, 6)
    np.testing.assert_array_equal(res.indices, i_ref)
    assert not (res.indices == np.arange(7)[:, None]).any()  # self excluded


@pytest.mark.parametrize("precision", PRECISIONS)
def test_queries_against_reference(precision):
    rng = np.random.default_rng(4)
    X = mixture(rng, n=900)
    Q = mixture(rng, n=130)
    res = knn(X, 15, queries=Q, precision=precision, block_size=128, device="cpu")
    d_ref, i_ref = reference_knn(X, 15, queries=Q)
    np.testing.assert_array_equal(res.indices, i_ref)
    np.testing.assert_allclose(res.distances, d_ref, rtol=1e-12)


def test_faiss_backend_agrees():
    X = mixture(np.random.default_rng(5), n=700)
    res = knn(X, 12, backend="faiss")
    d_ref, i_ref = reference_knn(X, 12)
    np.testing.assert_array_equal(res.indices, i_ref)
    np.testing.assert_allclose(res.distances, d_ref, rtol=1e-12)
    assert res.backend == "faiss"


def test_truncate_is_a_prefix():
    X = mixture(np.random.default_rng(6), n=500)
    full = knn(X, 40)
    small = knn(X, 10)
    np.testing.assert_array_equal(full.truncate(10).indices, small.indices)
    np.testing.assert_array_equal(full.truncate(10).distances, small.distances)
    with pytest.raises(InputError, match="K_max=40"):
        full.truncate(41)


def test_float32_input_and_torch_tensor():
    torch = pytest.importorskip("torch")
    X = mixture(np.random.default_rng(7), n=400).astype(np.float32)
    a = knn(X, 8)
    b = knn(torch.from_numpy(X), 8)
    np.testing.assert_array_equal(a.indices, b.indices)
    _, i_ref = reference_knn(X.astype(np.float64), 8)
    np.testing.assert_array_equal(a.indices, i_ref)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_neighbors": 10}, r"between 1 and 9 \(n_samples=10, self excluded\)"),
        ({"n_neighbors": 0}, "between 1 and 9"),
        ({"n_neighbors": 2.5}, "not an integer"),
        ({"n_neighbors": 3, "precision": "half"}, "precision='half' is not known"),
        ({"n_neighbors": 3, "backend": "annoy"}, "backend='annoy' is not known"),
        ({"n_neighbors": 3, "device": "tpu"}, "device="),
        ({"n_neighbors": 3, "queries": np.zeros((2, 4))}, "queries have 4 features but X has 3"),
    ],
)
def test_bad_input_messages(kwargs, match):
    X = np.random.default_rng(8).standard_normal((10, 3))
    with pytest.raises(InputError, match=match):
        knn(X, **kwargs)


def test_nan_rejected():
    X = np.random.default_rng(9).standard_normal((10, 3))
    X[[2, 5]] = np.nan
    with pytest.raises(InputError, match="NaN or infinite values in 2 of 10 rows"):
        knn(X, 3)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 60),
    d=st.integers(1, 6),
    k_frac=st.floats(0.05, 1.0),
    block=st.integers(1, 70),
    seed=st.integers(0, 10_000),
    precision=st.sampled_from(PRECISIONS),
)
def test_property_exact_on_small_integer_data(n, d, k_frac, block, seed, precision):
    # small integers: many exact ties and duplicates (distance 0), any block size
    X = np.random.default_rng(seed).integers(-3, 4, size=(n, d)).astype(float)
    k = max(1, int(k_frac * (n - 1)))
    res = knn(X, k, precision=precision, block_size=block, device="cpu")
    d_ref, i_ref = reference_knn(X, k)
    np.testing.assert_array_equal(res.distances, d_ref)
    np.testing.assert_array_equal(res.indices, i_ref)
