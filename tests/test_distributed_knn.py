"""Distributed kNN: identical to the single-process engine, indices and distances bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from repscope import InputError, knn, local_dimension
from repscope.dimension.estimate import estimate_prepared, prepare_embedding
from repscope.distributed import distributed_knn, distributed_local_dimension

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def two_workers():
    """A client of two single-threaded worker processes, as on a cluster (shared per module)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def assert_identical(got, want) -> None:
    np.testing.assert_array_equal(got.indices, want.indices)
    # distances to the last bit: compare the float64 bit patterns
    np.testing.assert_array_equal(got.distances.view(np.int64), want.distances.view(np.int64))


def lattice(n: int) -> np.ndarray:
    """Points on a small integer grid with repeated rows: many exact ties and zero distances."""
    rng = np.random.default_rng(1)
    return rng.integers(0, 3, size=(n, 3)).astype(np.float32)


@pytest.mark.slow
def test_identical_to_knn_on_50000_points(two_workers):
    X = np.random.default_rng(0).standard_normal((50_000, 20)).astype(np.float32)
    got = distributed_knn(X, 20, client=two_workers, block_size=12_500)
    assert_identical(got, knn(X, 20))


def test_identical_on_worker_processes(two_workers):
    X = lattice(500)
    assert_identical(distributed_knn(X, 30, client=two_workers, block_size=97), knn(X, 30))


@pytest.mark.parametrize("block_size", [7, 18, 64, 199, 500])
@pytest.mark.parametrize("n_neighbors", [1, 13, 198])
def test_ties_duplicates_and_ragged_blocks(block_size, n_neighbors, brute_knn):
    # 27 grid points for 199 rows: ties cross every block boundary; block 18 leaves a last
    # block of one row, which has no pair with itself
    X = lattice(199)
    got = distributed_knn(X, n_neighbors, block_size=block_size)
    assert_identical(got, knn(X, n_neighbors))
    want_d, want_i = brute_knn(X.astype(np.float64), n_neighbors)
    np.testing.assert_array_equal(got.indices, want_i)
    np.testing.assert_allclose(got.distances, want_d, rtol=1e-15)


@pytest.mark.parametrize("n_neighbors", [1, 4, 11])
def test_blocks_of_one_row(n_neighbors):
    X = lattice(12)
    assert_identical(distributed_knn(X, n_neighbors, block_size=1), knn(X, n_neighbors))


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_identical_for_every_precision(precision):
    X = np.random.default_rng(2).standard_normal((1000, 8))
    got = distributed_knn(X, 10, block_size=300, precision=precision)
    assert_identical(got, knn(X, 10, precision=precision))


def test_self_is_excluded_and_rows_are_sorted():
    X = np.random.default_rng(3).standard_normal((301, 4))
    res = distributed_knn(X, 50, block_size=100)
    assert not (res.indices == np.arange(301)[:, None]).any()
    assert (np.diff(res.distances, axis=1) >= 0).all()
    assert res.distances.dtype == np.float64 and res.indices.dtype == np.int64


@pytest.mark.parametrize(
    ("X", "n_neighbors", "kwargs", "match"),
    [
        (np.zeros((10, 2)), 10, {}, r"n_neighbors=10 must be < n_samples=10 .*<= 9"),
        (np.zeros((10, 2)), 0, {}, "n_neighbors=0 must be >= 1"),
        (np.zeros((10, 2)), 2.5, {}, "n_neighbors=2.5 is not an integer"),
        (np.zeros((10, 2)), 3, {"block_size": 0}, "block_size=0 must be positive"),
        (np.full((10, 2), np.nan), 3, {}, "NaN or infinite values"),
        (np.zeros(10), 3, {}, "X"),
    ],
)
def test_bad_input_is_one_line(X, n_neighbors, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        distributed_knn(X, n_neighbors, **kwargs)
    assert "\n" not in str(info.value)


def test_local_dimension_matches_single_process():
    X = np.random.default_rng(4).uniform(size=(1500, 3)) @ np.random.default_rng(5).normal(
        size=(3, 12)
    )
    kwargs = {"k": [5, 20, 50], "pca": 10, "n_bootstrap": 20}
    got = distributed_local_dimension(X, block_size=400, **kwargs)
    want = local_dimension(X, **kwargs)
    assert got.profile == want.profile and got.ci == want.ci
    np.testing.assert_array_equal(got.pointwise, want.pointwise)
    assert got.neighbors.n_neighbors == 50


def test_precomputed_neighbors_are_truncated_to_the_largest_k():
    prepared = prepare_embedding(np.random.default_rng(6).standard_normal((400, 5)), pca=None)
    wide = knn(prepared.X, 60)
    got = estimate_prepared(prepared, [10, 30], neighbors=wide)
    want = estimate_prepared(prepared, [10, 30])
    np.testing.assert_array_equal(got.pointwise, want.pointwise)
    assert got.neighbors.n_neighbors == 30


@pytest.mark.parametrize(
    ("rows", "n_neighbors", "match"),
    [
        (399, 60, "neighbors has 399 rows but the prepared embedding has 400 points"),
        (400, 20, "computed K_max=20"),
    ],
)
def test_precomputed_neighbors_are_checked(rows, n_neighbors, match):
    prepared = prepare_embedding(np.random.default_rng(6).standard_normal((400, 5)), pca=None)
    res = knn(prepared.X, n_neighbors)
    wrong = res.__class__(res.distances[:rows], res.indices[:rows])
    with pytest.raises(InputError, match=match):
        estimate_prepared(prepared, [10, 30], neighbors=wrong)
