"""Distributed exact kNN: ``repscope.knn`` in one process vs ``distributed_knn`` on Dask.

Data: N points of a standard normal in d = 20, float32, seed 0 (i.i.d. Gaussian is the hard
case for the engine's candidate certification: distances concentrate). K = 50. Runs the
single-process engine, then ``distributed_knn`` on a ``LocalCluster`` of 1 and of 2
single-threaded worker processes, checks that each result is identical to the engine's, and
measures one block-pair search and one merge on a worker. Prints seconds and a projection for a
cluster: ``pairs × per-pair / workers + merges × per-merge / workers``.

Usage: ``python benchmarks/distributed_knn.py [--quick] [--n 60000] [--block-size 15000]
[--project-n 1000000] [--project-workers 64]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

D, K, SEED = 20, 50, 0


def seconds(fn, *args, **kwargs):
    """Wall-clock seconds of one call, and its result."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def same(a, b) -> bool:
    """Indices equal and distances equal bit for bit."""
    return np.array_equal(a.indices, b.indices) and np.array_equal(
        a.distances.view(np.int64), b.distances.view(np.int64)
    )


def pair_and_merge_cost(client, X: np.ndarray, block: int) -> tuple[float, float]:
    """Seconds of one off-diagonal block-pair search and of one merge, run on a worker."""
    from repscope.distributed.knn import _merge, _search_pair

    queries, reference = client.scatter([X[:block], X[block : 2 * block]])
    pair = client.submit(
        seconds, _search_pair, queries, reference, block, K, False, "cpu", "auto", pure=False
    )
    t_pair, res = pair.result()
    t_merge, _ = client.submit(seconds, _merge, res, res, K, pure=False).result()
    return t_pair, t_merge


def run_cluster(X: np.ndarray, n_workers: int, block: int, reference) -> tuple[float, float]:
    """Time ``distributed_knn`` on a fresh LocalCluster (start-up not timed); per-pair costs."""
    from distributed import Client, LocalCluster

    from repscope.distributed import distributed_knn

    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        distributed_knn(X[:2000], K, client=client, block_size=500)  # warm-up: imports on workers
        t, res = seconds(distributed_knn, X, K, client=client, block_size=block)
        t_pair, t_merge = pair_and_merge_cost(client, X, block)
    print(f"distributed_knn, {n_workers} worker(s): {t:6.1f} s   identical: {same(res, reference)}")
    print(
        f"  on a worker: one {block}x{block} pair search {t_pair:.2f} s, one merge {t_merge:.3f} s"
    )
    return t_pair, t_merge


def project(n: int, block: int, workers: int, t_pair: float, t_merge: float) -> None:
    """Print the projected time of ``distributed_knn`` on a cluster of single-core workers."""
    blocks = math.ceil(n / block)
    pairs, merges = blocks**2, blocks * (blocks - 1)
    total = (pairs * t_pair + merges * t_merge) / workers
    print(
        f"projection N={n:,}, block {block}: {pairs:,} pairs × {t_pair:.2f} s + {merges:,} merges "
        f"× {t_merge:.3f} s over {workers} workers ≈ {total / 60:.1f} min (plus gathering "
        f"{n * K * 16 / 1e9:.1f} GB of results)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60_000)
    parser.add_argument("--block-size", type=int, default=15_000)
    parser.add_argument("--quick", action="store_true", help="N = 20 000, blocks of 5 000")
    parser.add_argument("--project-n", type=int, default=1_000_000)
    parser.add_argument("--project-workers", type=int, default=64)
    args = parser.parse_args()
    if args.quick:
        args.n, args.block_size = 20_000, 5_000

    from repscope import knn

    X = np.random.default_rng(SEED).standard_normal((args.n, D)).astype(np.float32)
    knn(X[:2000], K)  # warm-up: torch and thread pools
    t_single, reference = seconds(knn, X, K)
    blocks = math.ceil(args.n / args.block_size)
    print(f"N={args.n:,} d={D} K={K}, block {args.block_size}: {blocks**2} pair searches")
    print(f"repscope.knn, one process:      {t_single:8.1f} s")
    run_cluster(X, 1, args.block_size, reference)
    t_pair, t_merge = run_cluster(X, 2, args.block_size, reference)
    project(args.n, args.block_size, 2, t_pair, t_merge)
    project(args.project_n, args.block_size, args.project_workers, t_pair, t_merge)


if __name__ == "__main__":
    main()
