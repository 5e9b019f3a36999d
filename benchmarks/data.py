"""The benchmark data set: a clustered 20-d Gaussian mixture embedded in R^300.

Definition (every tool in ``benchmarks/run.py`` sees exactly these arrays):

* Intrinsic part, d = 20: a mixture of ``N_COMPONENTS = 12`` Gaussians with unequal weights
  (Dirichlet(2, ..., 2) draw). Component means are N(0, 2.5² I_20); each component has its own
  anisotropic covariance ``R_c diag(s_c)² R_cᵀ`` with a random rotation ``R_c`` and axis scales
  ``s_c`` log-uniform in [0.3, 1.5], so clusters differ in size and shape and some overlap, as the
  classes of a trained network's embedding do.
* Embedding: ``Q`` is a random 300×20 matrix with orthonormal columns (QR of a Gaussian matrix),
  so ``X = Z Qᵀ`` is a random rotation of R^20 into R^300.
* Noise: isotropic N(0, 0.01² I_300) added in all 300 coordinates.
* float32; generated in fixed chunks of 8192 rows, each from its own child of one
  ``SeedSequence(seed)``, so the first n rows do not depend on the total size: the N = 10 000 set
  is a prefix of the N = 50 000 set, and memory during generation stays small.
"""

from __future__ import annotations

import numpy as np

D_INTRINSIC = 20
D_AMBIENT = 300
N_COMPONENTS = 12
NOISE = 0.01
SEED = 20261125
_CHUNK = 8192

DESCRIPTION = (
    f"Gaussian mixture ({N_COMPONENTS} anisotropic components, unequal weights), intrinsic "
    f"d={D_INTRINSIC}, randomly rotated into D={D_AMBIENT}, isotropic noise {NOISE}, float32, "
    f"seed {SEED}"
)


def _mixture_parameters(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    weights = rng.dirichlet(np.full(N_COMPONENTS, 2.0))
    means = rng.normal(0.0, 2.5, size=(N_COMPONENTS, D_INTRINSIC))
    factors = np.empty((N_COMPONENTS, D_INTRINSIC, D_INTRINSIC))
    for c in range(N_COMPONENTS):
        rot, _ = np.linalg.qr(rng.normal(size=(D_INTRINSIC, D_INTRINSIC)))
        scales = np.exp(rng.uniform(np.log(0.3), np.log(1.5), size=D_INTRINSIC))
        factors[c] = rot * scales  # z = mean + factor @ g has covariance rot diag(s²) rotᵀ
    embed, _ = np.linalg.qr(rng.normal(size=(D_AMBIENT, D_INTRINSIC)))
    return weights, means, factors, embed


def gaussian_mixture(n_samples: int, seed: int = SEED) -> np.ndarray:
    """Return the benchmark data, an array of shape (n_samples, 300), float32."""
    seeds = np.random.SeedSequence(seed).spawn(1 + -(-n_samples // _CHUNK))
    weights, means, factors, embed = _mixture_parameters(np.random.default_rng(seeds[0]))
    X = np.empty((n_samples, D_AMBIENT), dtype=np.float32)
    for i, start in enumerate(range(0, n_samples, _CHUNK)):
        rng = np.random.default_rng(seeds[1 + i])
        # Draw a full chunk even when the last one is short, so rows never depend on n_samples.
        labels = rng.choice(N_COMPONENTS, size=_CHUNK, p=weights)
        g = rng.normal(size=(_CHUNK, D_INTRINSIC))
        z = means[labels] + np.einsum("nij,nj->ni", factors[labels], g)
        x = z @ embed.T + NOISE * rng.normal(size=(_CHUNK, D_AMBIENT))
        stop = min(start + _CHUNK, n_samples)
        X[start:stop] = x[: stop - start]
    return X


def ridge_problem(
    n_samples: int, n_features: int, n_targets: int, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """An encoding problem like model→voxel ridge: Y = X W + noise, float32.

    X: a 300-PC-like embedding with a decaying spectrum (column scales i^-0.5);
    W: a rank-20 map, so every target is predictable in part; noise per target with a
    target-specific SNR (log-uniform), so the chosen penalties spread over the grid.
    """
    rng = np.random.default_rng([seed, n_samples, n_features, n_targets])
    scales = np.arange(1, n_features + 1) ** -0.5
    X = rng.standard_normal((n_samples, n_features)) * scales
    W = rng.standard_normal((n_features, 20)) @ rng.standard_normal((20, n_targets))
    signal = X @ W
    snr = np.exp(rng.uniform(np.log(0.05), np.log(5.0), size=n_targets))
    noise = rng.standard_normal((n_samples, n_targets)) * (signal.std(0) / np.sqrt(snr))
    return X.astype(np.float32), (signal + noise).astype(np.float32)
