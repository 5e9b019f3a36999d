"""Wasserstein-1: exact OT (POT's network simplex) against sliced W1, and SciPy in 1-D, one run.

Data: two independent samples of n points of an 8-d standard Gaussian embedded in R^64 by a
random matrix with orthonormal columns, the second shifted by 0.1 along the first embedded
axis; float64, seeded. For n = 500, 1 000, 2 000, 5 000 (``--quick``: 500, 1 000) it prints
seconds of ``ot.emd2`` alone (cost matrix built beforehand), of ``wasserstein1`` exact
(cost matrix + ``ot.emd2``) and sliced (1 000 directions, POT in chunks), of one unchunked
``ot.sliced_wasserstein_distance`` call on the same directions, the sliced/exact time ratio and
both distances (sliced W1 <= W1, a different number). Peer check in 1-D (first embedded
coordinate): ``wasserstein1`` exact against ``scipy.stats.wasserstein_distance``, seconds and
the absolute difference of the values.

Usage: ``python benchmarks/wasserstein.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import measure

D_AMBIENT, D_INTRINSIC, SHIFT, N_PROJECTIONS, SEED = 64, 8, 0.1, 1000, 0


def two_samples(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two seeded (n, 64) samples of an 8-d Gaussian in R^64, B shifted by SHIFT."""
    rng = np.random.default_rng(SEED)
    embed, _ = np.linalg.qr(rng.normal(size=(D_AMBIENT, D_INTRINSIC)))
    A = rng.normal(size=(n, D_INTRINSIC)) @ embed.T
    B = rng.normal(size=(n, D_INTRINSIC)) @ embed.T + SHIFT * embed[:, 0]
    return A, B


def bench_size(n: int) -> None:
    """One row of each table: timings and values at n points per sample."""
    import ot
    from scipy.spatial.distance import cdist
    from scipy.stats import wasserstein_distance

    from repscope._validation import check_random_state
    from repscope.generalization.wasserstein import _random_directions, wasserstein1

    A, B = two_samples(n)
    M = cdist(A, B)
    w = np.full(n, 1.0 / n)
    t_emd, _ = measure(lambda: ot.emd2(w, w, M, numItermax=10**12))
    t_exact, exact = measure(lambda: wasserstein1(A, B, method="exact", max_exact=n))
    t_sliced, sliced = measure(
        lambda: wasserstein1(A, B, method="sliced", n_projections=N_PROJECTIONS, random_state=SEED)
    )
    theta = _random_directions(D_AMBIENT, N_PROJECTIONS, check_random_state(SEED))
    t_pot, pot = measure(lambda: ot.sliced_wasserstein_distance(A, B, projections=theta, p=1))
    print(
        f"{n:>6} {t_emd:9.3f} {t_exact:9.3f} {t_sliced:9.3f} {t_pot:10.3f} "
        f"{t_sliced / t_exact:8.2f} {exact.distance:9.5f} {sliced.distance:9.5f} "
        f"{abs(float(pot) - sliced.distance):9.1e}"
    )
    a, b = A[:, 0], B[:, 0]
    t_rep1, rep1 = measure(lambda: wasserstein1(a, b, method="exact", max_exact=n))
    t_scipy, scipy_w = measure(lambda: wasserstein_distance(a, b))
    print(
        f"{'':>6} 1-D: wasserstein1 exact {t_rep1:8.3f} s   scipy {t_scipy:8.4f} s   "
        f"|ΔW1| {abs(rep1.distance - scipy_w):.1e}"
    )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 500 and 1 000 only")
    args, _ = parser.parse_known_args(argv)  # flags meant for run.py are ignored
    sizes = [500, 1000] if args.quick else [500, 1000, 2000, 5000]
    print(
        f"Wasserstein-1, two samples of an {D_INTRINSIC}-d Gaussian in R^{D_AMBIENT}, shift "
        f"{SHIFT}; sliced: {N_PROJECTIONS} directions; seconds (min of 3 below 5 s)"
    )
    print(
        f"{'n':>6} {'emd2':>9} {'exact':>9} {'sliced':>9} {'POT 1call':>10} "
        f"{'sl/exact':>8} {'W1':>9} {'SW1':>9} {'|ΔPOT|':>9}"
    )
    for n in sizes:
        bench_size(n)


if __name__ == "__main__":
    main()
