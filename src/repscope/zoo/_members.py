"""The mini zoo's members: their configs and their networks (no training, no files)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Literal

from repscope._validation import InputError
from repscope.zoo._mnist import IMAGE_SIDE, N_POOL

__all__ = [
    "BY_NAME",
    "MINIZOO",
    "NAME_PATTERN",
    "MiniZooConfig",
    "build_minizoo_module",
    "resolve_config",
]

N_CLASSES = 10
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True)
class MiniZooConfig:
    """One mini-zoo member.

    Parameters
    ----------
    name : str
        Cache folder name: lowercase letters, digits, ``.``, ``_``, ``-``.
    family : {"cnn", "mlp"}
    width : int
        CNN: channels of the first conv block (doubling per block; hidden layer ``4 * width``).
        MLP: units of every hidden layer.
    depth : int
        CNN: conv blocks (1–3). MLP: hidden layers.
    n_train : int
        Training images, a prefix of the 4 000-image pool (nested across members).
    epochs : int
    seed : int
        Seeds initialisation and batch order.
    batch_size : int
    learning_rate : float
        Adam step size.
    """

    name: str
    family: Literal["cnn", "mlp"]
    width: int
    depth: int
    n_train: int
    epochs: int
    seed: int = 0
    batch_size: int = 64
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise InputError(
                f"mini-zoo name {self.name!r} is not a safe folder name; use lowercase letters, "
                "digits, '.', '_' and '-', e.g. 'cnn-w16-d2-n4000'."
            )
        if self.family not in ("cnn", "mlp"):
            raise InputError(f"family={self.family!r} is not known; pass 'cnn' or 'mlp'.")
        max_depth = 3 if self.family == "cnn" else 8
        _check_int("depth", self.depth, 1, max_depth)
        for key, high in (("width", 4096), ("n_train", N_POOL), ("epochs", 1000)):
            _check_int(key, getattr(self, key), 1, high)
        _check_int("batch_size", self.batch_size, 1, N_POOL)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if not (isinstance(self.learning_rate, float) and 0 < self.learning_rate < 1):
            raise InputError(
                f"learning_rate={self.learning_rate!r} must be a float in (0, 1); pass e.g. 1e-3."
            )


def _check_int(key: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{key}={value!r} must be an integer in [{low}, {high}].")


def _member(family: Literal["cnn", "mlp"], width: int, depth: int, n: int) -> MiniZooConfig:
    # fewer images get more epochs, so small-n members are not merely under-trained
    epochs = {500: 30, 1000: 20, 2000: 15, 4000: 10}[n]
    return MiniZooConfig(f"{family}-w{width}-d{depth}-n{n}", family, width, depth, n, epochs)


#: The default members: two families, several widths, depths and training-set sizes.
MINIZOO: tuple[MiniZooConfig, ...] = (
    _member("cnn", 8, 1, 500),
    _member("cnn", 8, 2, 1000),
    _member("cnn", 8, 2, 2000),
    _member("cnn", 16, 2, 1000),
    _member("cnn", 16, 2, 4000),
    _member("cnn", 16, 3, 4000),
    _member("mlp", 64, 1, 500),
    _member("mlp", 128, 1, 1000),
    _member("mlp", 64, 2, 2000),
    _member("mlp", 256, 2, 1000),
    _member("mlp", 256, 2, 4000),
    _member("mlp", 512, 3, 4000),
)
BY_NAME = {c.name: c for c in MINIZOO}


def build_minizoo_module(config: MiniZooConfig | str) -> Any:
    """The untrained network of a member (initialised from torch's global RNG).

    Parameters
    ----------
    config : MiniZooConfig or str
        A config, or the name of a default member.

    Returns
    -------
    torch.nn.Sequential
        Input (B, 1, 28, 28) float32, output (B, 10) logits. CNN: ``depth`` blocks of 3×3
        conv (``width * 2**i`` channels), ReLU and 2×2 max-pool, then flatten, a hidden
        ``nn.Linear`` to ``4 * width`` units with ReLU, and the classifier. MLP: flatten,
        ``depth`` hidden ``nn.Linear`` layers of ``width`` units with ReLU, and the classifier.
        The last module is always the ``nn.Linear`` classifier.
    """
    from torch import nn

    config = resolve_config(config)
    if config.family == "mlp":
        layers: list[nn.Module] = [nn.Flatten()]
        features = IMAGE_SIDE * IMAGE_SIDE
        for _ in range(config.depth):
            layers += [nn.Linear(features, config.width), nn.ReLU()]
            features = config.width
        return nn.Sequential(*layers, nn.Linear(features, N_CLASSES))
    layers, channels, side = [], 1, IMAGE_SIDE
    for block in range(config.depth):
        out = config.width * 2**block
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels, side = out, side // 2
    hidden = 4 * config.width
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(channels * side * side, hidden),
        nn.ReLU(),
        nn.Linear(hidden, N_CLASSES),
    )


def resolve_config(config: MiniZooConfig | str) -> MiniZooConfig:
    """``config`` itself, or the default member of that name."""
    if isinstance(config, MiniZooConfig):
        return config
    if isinstance(config, str) and config in BY_NAME:
        return BY_NAME[config]
    known = sorted(BY_NAME)
    near = difflib.get_close_matches(str(config), known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(near)}?" if near else f"known: {', '.join(known)}."
    raise InputError(f"minizoo model {str(config)!r} is not known; {hint}")
