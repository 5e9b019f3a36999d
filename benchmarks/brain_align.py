"""Model–brain alignment at NSD scale: repscope's pipeline vs scikit-learn PCA + himalaya RidgeCV.

Data: one subject's worth of shapes, 10 000 images, an embedding of 1 280 features (MobileNetV2's
width) and an ROI of 10 000 voxels. The embedding is a seeded Gaussian mixture in 40 latent
dimensions mapped to 1 280; each voxel reads out a random direction of the latent space through
a fixed non-linearity, plus noise at a per-voxel SNR. Both pipelines do the same thing: 80/20
seeded split, PCA-300 fit on the train rows, X standardized with train statistics, per-voxel
penalty from 20 values (10^-2 … 10^6) by 5-fold CV, refit, held-out R² per voxel.

``--quick``: 2 000 images and 2 000 voxels. ``--device cuda`` times repscope on the GPU (and
himalaya's ``torch_cuda`` backend where himalaya is installed).
Usage: ``python benchmarks/brain_align.py [--quick] [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

N_IMAGES, N_FEATURES, N_VOXELS, LATENT, PCA, FOLDS, SEED = 10_000, 1_280, 10_000, 40, 300, 5, 0
ALPHAS = np.logspace(-2, 6, 20)


def problem(n_images: int, n_voxels: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded embedding (n_images, 1280) float32 and responses (n_images, n_voxels) float32."""
    rng = np.random.default_rng(SEED)
    z = rng.standard_normal((n_images, LATENT)) * np.linspace(2.0, 0.2, LATENT)
    X = np.tanh(z @ rng.standard_normal((LATENT, N_FEATURES)) / np.sqrt(LATENT))
    signal = np.tanh(z @ rng.standard_normal((LATENT, n_voxels)) / np.sqrt(LATENT))
    signal = (signal - signal.mean(0)) / signal.std(0)
    snr = rng.uniform(0.2, 2.0, n_voxels)
    Y = signal + rng.standard_normal((n_images, n_voxels)) / snr
    return X.astype(np.float32), Y.astype(np.float32)


def brain(Y: np.ndarray):
    from repscope.io.responses import BrainResponses

    n, v = Y.shape
    return BrainResponses(
        subject=1,
        stimulus_ids=np.array([f"nsd-{i:05d}" for i in range(n)]),
        responses=Y,
        n_repeats=np.full(n, 3),
        coordinates=np.zeros((v, 3), dtype=np.int64),
        ncsnr=np.ones(v),
        roi_masks={"ROI": np.ones(v, dtype=bool)},
        shared=np.zeros(n, dtype=bool),
        space="func1pt8mm",
    )


def run_repscope(X: np.ndarray, Y: np.ndarray, device: str) -> float:
    from repscope.alignment.brain import brain_alignment

    ids = np.array([f"nsd-{i:05d}" for i in range(len(X))])
    result = brain_alignment(X, ids, brain(Y), pca=PCA, random_state=SEED, device=device)
    return float(result.table.loc[result.table["subject"] == "1", "r2"].iloc[0])


def run_himalaya(X: np.ndarray, Y: np.ndarray, backend_name: str) -> float:
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV
    from sklearn.decomposition import PCA as SkPCA
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from repscope.alignment.ridge import _resolve_split

    train, test = _resolve_split(len(X), 0.2, None, np.random.default_rng(SEED))
    backend = set_backend(backend_name, on_error="raise")
    try:
        reduce = make_pipeline(SkPCA(PCA, svd_solver="full"), StandardScaler())
        Xtr = reduce.fit_transform(X[train].astype(np.float64))
        Xte = reduce.transform(X[test].astype(np.float64))
        model = RidgeCV(alphas=ALPHAS, cv=KFold(FOLDS, shuffle=True, random_state=SEED))
        model.fit(backend.asarray(Xtr), backend.asarray(Y[train].astype(np.float64)))
        pred = np.asarray(backend.to_numpy(model.predict(backend.asarray(Xte))))
    finally:
        set_backend("numpy")
    Yte = Y[test].astype(np.float64)
    r2 = 1 - ((Yte - pred) ** 2).sum(0) / ((Yte - Yte.mean(0)) ** 2).sum(0)
    return float(r2.mean())


def timed(fn) -> tuple[float, float]:
    fn_start = time.perf_counter()
    value = fn()
    return time.perf_counter() - fn_start, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 000 images and voxels")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args, _ = parser.parse_known_args(argv)
    n_images, n_voxels = (2_000, 2_000) if args.quick else (N_IMAGES, N_VOXELS)
    X, Y = problem(n_images, n_voxels)
    small_X, small_Y = problem(500, 50)
    with warnings.catch_warnings():  # the warm-up's PCA-300 on 400 train images warns
        warnings.simplefilter("ignore")
        run_repscope(small_X, small_Y, args.device)  # warm-up: imports, thread pools, CUDA context
    print(
        f"model–brain alignment: {n_images} images, {N_FEATURES} features → PCA {PCA}, "
        f"{n_voxels} voxels, {len(ALPHAS)} penalties, {FOLDS} folds, device {args.device}"
    )
    rows = {}
    seconds, r2 = timed(lambda: run_repscope(X, Y, args.device))
    rows["repscope"] = {"seconds": seconds, "mean_r2": r2}
    print(f"repscope brain_alignment   {seconds:8.2f} s  mean R² {r2:.6f}")
    try:
        import himalaya  # noqa: F401
    except ImportError:
        print("himalaya not installed: peer skipped")
    else:
        backend = "torch_cuda" if args.device == "cuda" else "numpy"
        peer_s, peer_r2 = timed(lambda: run_himalaya(X, Y, backend))
        rows[f"himalaya {backend}"] = {"seconds": peer_s, "mean_r2": peer_r2}
        print(
            f"sklearn PCA + himalaya {backend:<9} {peer_s:6.2f} s  mean R² {peer_r2:.6f}  "
            f"speed-up {peer_s / seconds:5.1f}×  |ΔR²| {abs(peer_r2 - r2):.1e}"
        )
    print(json.dumps({"n_images": n_images, "n_voxels": n_voxels, "device": args.device, **rows}))


if __name__ == "__main__":
    main()
