"""Ridge encoding: repscope vs himalaya and scikit-learn on the same data, in one run.

N_train = 9 000 (80 % of 11 250), P = 300, V = 2 000 and 20 000 targets, 20 penalties
(10^-2 … 10^6), 5 seeded folds, per-target penalty. Every tool gets the same standardized
train split and the same folds, and is scored by per-target R² on the same test split. Prints
seconds, speed-ups, the mean test R² of each tool and repscope's peak memory.

Usage: ``python benchmarks/ridge.py [--quick]`` (``--quick``: V = 2 000 only).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import ridge_problem
from run import _status_kb, measure

N_SAMPLES, N_FEATURES, TEST_SIZE, FOLDS, SEED = 11_250, 300, 0.2, 5, 0
ALPHAS = np.logspace(-2, 6, 20)
TARGET = "≥ 10× faster than himalaya RidgeCV at V = 20 000, mean R² equal within 1e-3"


def split_and_scale(X: np.ndarray, Y: np.ndarray):
    """The split repscope makes (seeded permutation), X standardized with train statistics."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(X))
    train, test = train_test_split(idx, test_size=TEST_SIZE, random_state=SEED)
    mu, sd = X[train].mean(0), X[train].std(0)
    return train, test, (X[train] - mu) / sd, (X[test] - mu) / sd


def r2_per_target(Y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    ss_res = ((Y - pred) ** 2).sum(0)
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
    return 1.0 - ss_res / ss_tot


def run_repscope(X, Y, train, test):
    import repscope

    res = repscope.ridge_alignment(
        X, Y, split=(train, test), alphas=ALPHAS, cv=FOLDS, random_state=SEED, device="cpu"
    )
    return float(res.score)


def run_himalaya(Xtr, Ytr, Xte, Yte, backend_name: str):
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV
    from sklearn.model_selection import KFold

    backend = set_backend(backend_name, on_error="raise")
    try:
        model = RidgeCV(alphas=ALPHAS, cv=KFold(FOLDS, shuffle=True, random_state=SEED))
        model.fit(backend.asarray(Xtr), backend.asarray(Ytr))
        pred = np.asarray(backend.to_numpy(model.predict(backend.asarray(Xte))))
    finally:
        set_backend("numpy")
    return float(r2_per_target(Yte, pred).mean())


def run_sklearn(Xtr, Ytr, Xte, Yte):
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    model = RidgeCV(alphas=ALPHAS, cv=KFold(FOLDS, shuffle=True, random_state=SEED))
    pred = model.fit(Xtr, Ytr).predict(Xte)
    return float(r2_per_target(Yte, pred).mean())


def peak_of(fn) -> tuple[float, float]:
    """(seconds, GB of peak RSS above the RSS before the call) for one call."""
    base = _status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, (_status_kb("VmHWM") - base) * 1024 / 1e9


def bench_size(n_targets: int) -> None:
    """Every tool on one problem size: seconds, mean test R², repscope peak memory."""
    X, Y = ridge_problem(N_SAMPLES, N_FEATURES, n_targets)
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    train, test, Xtr, Xte = split_and_scale(X, Y)
    Ytr, Yte = Y[train], Y[test]
    t_rep, r2_rep = measure(lambda: run_repscope(X, Y, train, test))
    _, peak = peak_of(lambda: run_repscope(X, Y, train, test))
    print(
        f"V={n_targets:>6}  repscope        {t_rep:8.2f} s  mean R² {r2_rep:.6f}  "
        f"peak +{peak:.2f} GB"
    )
    for name, fn in [
        ("himalaya numpy", lambda: run_himalaya(Xtr, Ytr, Xte, Yte, "numpy")),
        ("himalaya torch", lambda: run_himalaya(Xtr, Ytr, Xte, Yte, "torch")),
        ("sklearn shared α", lambda: run_sklearn(Xtr, Ytr, Xte, Yte)),
    ]:
        if name.startswith("sklearn") and n_targets > 2_000:
            continue  # one shared penalty, GridSearch over folds: minutes at V = 20 000
        if name == "himalaya torch" and n_targets > 2_000:
            # measured 2026-11-25: float64 inputs, RSS > 24 GB, killed by the OOM killer
            print(f"V={n_targets:>6}  {name:<15} skipped: exceeds 24 GB at this size (OOM-killed)")
            continue
        t_peer, r2_peer = measure(fn)
        print(
            f"V={n_targets:>6}  {name:<15} {t_peer:8.2f} s  mean R² {r2_peer:.6f}  "
            f"speed-up {t_peer / t_rep:6.1f}×  |ΔR²| {abs(r2_peer - r2_rep):.2e}"
        )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="V = 2 000 only")
    args, _ = parser.parse_known_args(argv)  # flags meant for run.py are ignored
    sizes = [2_000] if args.quick else [2_000, 20_000]
    print(
        f"ridge encoding, N_train = {int(N_SAMPLES * (1 - TEST_SIZE))}, P = {N_FEATURES}, "
        f"{len(ALPHAS)} penalties, {FOLDS} folds; target: {TARGET}"
    )
    for n_targets in sizes:
        bench_size(n_targets)


if __name__ == "__main__":
    main()
