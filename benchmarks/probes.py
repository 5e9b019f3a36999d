"""Probes: repscope's linear and kNN probes against scikit-learn's, same data, one run.

Data: 10 Gaussian classes in R^D (class means drawn with scale 0.5, unit noise), n rows, an
80/20 stratified split, float64, seeded; (n, D) = (4 000, 50), (4 000, 512) and (10 000, 512)
(``--quick``: the first two). It prints seconds of ``linear_probe`` (penalty chosen by 5-fold
CV over C = 1e-4 … 1e4, one value a decade) against ``LogisticRegressionCV`` on the same folds
and grid (``scoring="neg_log_loss"``, lbfgs), and of ``knn_probe`` (K = 10) against
``KNeighborsClassifier`` (brute force) scoring train and test; with the ratio peer / repscope
and whether the chosen C and the test accuracies agree.

Usage: ``python benchmarks/probes.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import measure

N_CLASSES, SEED = 10, 0
SHAPES = ((4000, 50), (4000, 512), (10000, 512))


def classes(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (n, d) points of 10 Gaussian classes and their labels."""
    rng = np.random.default_rng(SEED)
    means = rng.normal(scale=0.5, size=(N_CLASSES, d))
    y = rng.integers(N_CLASSES, size=n)
    return means[y] + rng.normal(size=(n, d)), y


def bench_linear(X: np.ndarray, y: np.ndarray) -> str:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    from repscope.generalization.probes import (
        DEFAULT_CS,
        _stratified_folds,
        linear_probe,
        probe_split,
    )

    train, test = probe_split(y, random_state=SEED)
    t_ours, ours = measure(lambda: linear_probe(X, y, split=(train, test), random_state=SEED))
    # a given split: the probe's generator draws the folds first
    folds = _stratified_folds(y[train], 5, np.random.default_rng(SEED))
    scaler = StandardScaler().fit(X[train])

    def peer() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return LogisticRegressionCV(
                Cs=DEFAULT_CS, cv=folds, scoring="neg_log_loss", max_iter=1000
            ).fit(scaler.transform(X[train]), y[train])

    t_peer, model = measure(peer)
    same_c = np.isclose(float(np.ravel(model.C_)[0]), ours.penalty)
    acc = float((model.predict(scaler.transform(X[test])) == y[test]).mean())
    return (
        f"linear {t_ours:8.2f} {t_peer:8.2f} {t_peer / t_ours:7.1f}x "
        f"C {ours.penalty:g}/{float(np.ravel(model.C_)[0]):g} {'same' if same_c else 'DIFFER'} "
        f"acc {ours.test_accuracy:.4f}/{acc:.4f}"
    )


def bench_knn(X: np.ndarray, y: np.ndarray) -> str:
    from sklearn.neighbors import KNeighborsClassifier

    from repscope.generalization.probes import knn_probe, probe_split

    train, test = probe_split(y, random_state=SEED)
    t_ours, ours = measure(lambda: knn_probe(X, y, split=(train, test), n_neighbors=10))

    def peer() -> tuple[float, float]:
        model = KNeighborsClassifier(10, algorithm="brute").fit(X[train], y[train])
        return model.score(X[train], y[train]), model.score(X[test], y[test])

    t_peer, (_, acc) = measure(peer)
    same = "same" if ours.test_accuracy == acc else "DIFFER"
    return (
        f"knn    {t_ours:8.2f} {t_peer:8.2f} {t_peer / t_ours:7.1f}x "
        f"acc {ours.test_accuracy:.4f}/{acc:.4f} {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the two 4 000-row shapes only")
    shapes = SHAPES[:2] if parser.parse_args().quick else SHAPES
    print("probes: repscope vs scikit-learn (seconds; ratio = scikit-learn / repscope)")
    print("probe  repscope  sklearn   ratio")
    for n, d in shapes:
        X, y = classes(n, d)
        print(f"-- n = {n}, D = {d}")
        print(bench_linear(X, y))
        print(bench_knn(X, y))


if __name__ == "__main__":
    main()
