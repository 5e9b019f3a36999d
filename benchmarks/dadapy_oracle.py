"""DADApy 0.3.4 as an oracle: reference values for the tests and timings for ``make bench``.

DADApy 0.3.4 needs numpy<2, so everything that imports it runs in ``.venv-oracle``
(``make oracle``). Three sub-commands:

``input``      (main venv) writes ``tests/data/dadapy_input.npz``: two small seeded data sets.
``reference``  (oracle venv) reads it, runs DADApy and writes ``tests/data/dadapy_reference.json``.
``time FILE``  (oracle venv) times ``Data(X).compute_id_2NN()`` on ``FILE.npy`` and prints one JSON
               object; the clock excludes interpreter start, imports and loading the file.

What DADApy 0.3.4 computes (read from its ``id_estimation.py`` and ``_utils/utils.py``):

* ``compute_id_2NN()`` = ``algorithm="base", mu_fraction=0.9, data_fraction=1``. Neighbours come
  from ``sklearn.neighbors.NearestNeighbors(n_neighbors=maxk + 1)`` on X cast to float64,
  ``maxk = min(100, N - 1)``; column 0 is the point itself. ``mu = r2 / r1``. The ``mu`` are
  sorted, the ``n_eff = int(N * 0.9)`` smallest kept, and ``d`` is the least-squares slope through
  the origin (``scipy.optimize.curve_fit`` of ``y = d x``) of ``y_i = -log(1 - i / N)`` against
  ``x_i = log mu_(i)``, ``i = 1 .. n_eff``; the empirical CDF uses the full ``N`` as denominator.
  No decimation (``data_fraction=1``).
* ``compute_id_2NN(algorithm="ml")`` = ``(N - 1) / sum(log mu)`` over all N points (the fraction
  is ignored by the ``"ml"`` branch).
* ``return_id_scaling_gride(range_max)``: for ``n1 = 1, 2, 4, ...`` and ``n2 = 2 n1`` up to
  ``range_max``, ``mu = r_n2 / r_n1`` (distances from ``pairwise_distances_chunked`` squared, then
  sqrt; zero distances raised to float64 eps), then ``_filter_mus`` drops every
  ``mu >= q50 + 20 (q95 - q50)`` and nudges ``mu == 1`` by 10 eps, and ``d`` is the root of the
  GRIDE likelihood's derivative found by bisection on ``[0.001, 1000]`` to ``|d0 - d1| <= 1e-7``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
INPUT = ROOT / "tests" / "data" / "dadapy_input.npz"
REFERENCE = ROOT / "tests" / "data" / "dadapy_reference.json"
GRIDE_RANGE_MAX = 64


def write_input(path: Path = INPUT) -> None:
    """Two seeded data sets of 2000 points with known intrinsic dimension, float64."""
    rng = np.random.default_rng(20261125)
    rotation, _ = np.linalg.qr(rng.normal(size=(20, 5)))
    gauss5_in_r20 = rng.normal(size=(2000, 5)) @ rotation.T
    cube3 = rng.uniform(size=(2000, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, gauss5_in_r20=gauss5_in_r20, cube3=cube3)


def _versions() -> dict:
    import dadapy
    import scipy
    import sklearn

    return {
        "dadapy": dadapy.__version__ if hasattr(dadapy, "__version__") else _dist_version("dadapy"),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _n_filtered(mus: np.ndarray) -> int:
    """How many ``mu`` DADApy's ``_filter_mus`` drops (the same rule, recomputed)."""
    q3, q2 = np.percentile(mus, [95, 50])
    return int(np.sum(mus >= 20 * (q3 - q2) + q2))


def write_reference(path: Path = REFERENCE) -> None:
    from dadapy import Data

    data = np.load(INPUT)
    out = {
        "source": "benchmarks/dadapy_oracle.py reference",
        "input": "tests/data/dadapy_input.npz",
        "versions": _versions(),
        "datasets": {},
    }
    for name in data.files:
        X = data[name]
        twonn = Data(X).compute_id_2NN()
        twonn_ml = Data(X).compute_id_2NN(algorithm="ml")
        gride = Data(X)
        ids, errs, ranks = gride.return_id_scaling_gride(
            range_max=GRIDE_RANGE_MAX, return_ranks=True
        )
        # set_attr=False keeps the ratios off the object; recompute them from its distances
        mus = np.stack([gride.distances[:, r] / gride.distances[:, r // 2] for r in ranks], axis=1)
        out["datasets"][name] = {
            "shape": list(X.shape),
            "twonn_linear": {
                "call": "Data(X).compute_id_2NN()",
                "meaning": "algorithm='base', mu_fraction=0.9, data_fraction=1",
                "id": float(twonn[0]),
                "scale": float(twonn[2]),
            },
            "twonn_ml": {
                "call": "Data(X).compute_id_2NN(algorithm='ml')",
                "id": float(twonn_ml[0]),
            },
            "gride": {
                "call": f"Data(X).return_id_scaling_gride(range_max={GRIDE_RANGE_MAX}, "
                "return_ranks=True)",
                "n1": [int(r) // 2 for r in ranks],
                "n2": [int(r) for r in ranks],
                "id": [float(v) for v in ids],
                "id_err": [float(v) for v in errs],
                "n_mus_filtered": [_n_filtered(mus[:, j]) for j in range(mus.shape[1])],
            },
        }
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def time_twonn(file: Path, maxk: int | None) -> None:
    from dadapy import Data

    X = np.load(file)
    # a tiny call first, so one-time costs (sklearn/BLAS thread pools) stay off the clock
    Data(X[:200]).compute_id_2NN()
    times = []
    for _ in range(4):  # as benchmarks/run.py: a call under 5 s is its own warm-up, min of 3 more
        start = time.perf_counter()
        result = Data(X, maxk=maxk).compute_id_2NN()
        times.append(time.perf_counter() - start)
        if times[0] >= 5.0:
            break
    seconds = times[0] if len(times) == 1 else min(times[1:])
    print(json.dumps({"seconds": seconds, "id": float(result[0]), "maxk": maxk}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("input", help="write tests/data/dadapy_input.npz (main venv)")
    sub.add_parser("reference", help="write tests/data/dadapy_reference.json (oracle venv)")
    timer = sub.add_parser("time", help="time Data(X).compute_id_2NN() on an .npy file")
    timer.add_argument("file", type=Path)
    timer.add_argument("--maxk", type=int, default=None, help="DADApy's default: min(100, N-1)")
    args = parser.parse_args(argv)
    if args.command == "input":
        write_input()
    elif args.command == "reference":
        write_reference()
    else:
        time_twonn(args.file, args.maxk)


if __name__ == "__main__":
    sys.exit(main())
