"""Loaders for the Hugging Face hub sources: open_clip image towers and transformers models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from repscope._validation import InputError
from repscope.io._model_spec import ModelSpec, near_matches
from repscope.io._preprocessing import (
    HFProcessorTransform,
    ImageTransform,
    describe_hf,
    describe_pipeline,
)
from repscope.io._source_common import (
    Built,
    hf_cache,
    probe_input_size,
    require,
    short,
    unavailable,
)
from repscope.io.layers import output_penultimate, reduce_output

__all__ = ["load_hf", "load_open_clip"]

_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors")


# --- open_clip --------------------------------------------------------------------------------


def load_open_clip(spec: ModelSpec, pretrained: bool, cache_dir: str | None) -> Built:
    """``open_clip:ARCH[/TAG or /FILE]`` (or ``open_clip:hf-hub:ORG/NAME``): the image tower."""
    open_clip = require("open_clip", spec, pip="open_clip_torch")
    tag = _open_clip_tag(open_clip, spec, pretrained)
    hub = spec.name.startswith("hf-hub:")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.name, pretrained=tag, load_weights=pretrained, cache_dir=cache_dir
        )
    except (OSError, RuntimeError) as exc:
        if not hub and (tag is None or _is_weights_file(tag)):
            raise InputError(f"open_clip could not build {spec.raw}: {short(exc)}") from None
        raise unavailable(
            spec,
            exc,
            fetch=f"import open_clip; open_clip.create_model_and_transforms('{spec.name}', "
            f"pretrained={tag!r})",
            copy=f"the Hugging Face hub cache {hf_cache(cache_dir)}",
            local=f"pass a weights file as open_clip:{'ARCH' if hub else spec.name}"
            "//path/open_clip_model.safetensors",
        ) from None
    transform = ImageTransform(preprocess)
    input_size = probe_input_size(transform)
    described = describe_pipeline("open_clip", preprocess, input_size)
    # the image tower: layer names are the tower's, and tower(x) == model.encode_image(x)
    return Built(model.visual, transform, described, input_size, output_penultimate)


def _open_clip_tag(open_clip: Any, spec: ModelSpec, pretrained: bool) -> str | None:
    if spec.name.startswith("hf-hub:"):
        return None
    models = open_clip.list_models()
    if spec.name not in models:
        raise InputError(
            f"{spec.name!r} is not an open_clip architecture{near_matches(spec.name, models)}; "
            "see open_clip.list_models()."
        )
    if not pretrained:
        return None
    tags = open_clip.list_pretrained_tags_by_model(spec.name)
    tag = spec.weights
    if tag is None:
        raise InputError(
            f"{spec.raw} names no weights; write open_clip:{spec.name}/TAG with TAG one of "
            f"{', '.join(tags) or '(none)'} or a weights file, or pass pretrained=False."
        )
    if _is_weights_file(tag):
        if not Path(tag).expanduser().is_file():
            raise InputError(f"open_clip weights file {tag} does not exist; check the path.")
        return str(Path(tag).expanduser())
    if tag not in tags:
        raise InputError(
            f"{tag!r} is not a pretrained tag of open_clip {spec.name!r}"
            f"{near_matches(tag, tags)}; its tags: {', '.join(tags) or 'none'}."
        )
    return tag


def _is_weights_file(tag: str) -> bool:
    return "/" in tag or os.sep in tag or tag.endswith(_WEIGHT_SUFFIXES)


# --- Hugging Face transformers ----------------------------------------------------------------


def load_hf(spec: ModelSpec, pretrained: bool, cache_dir: str | None) -> Built:
    """``hf:ORG/NAME`` or ``hf:/dir``: ``AutoModel`` with its ``AutoImageProcessor``."""
    transformers = require("transformers", spec)
    folder = Path(spec.name).expanduser()
    is_local = spec.name.startswith(("/", ".", "~")) or folder.is_dir()
    if is_local and not folder.is_dir():
        raise InputError(f"model folder {folder} does not exist; check the path in {spec.raw}.")
    source = str(folder) if is_local else spec.name
    try:
        processor, model = _hf_from_pretrained(transformers, source, pretrained, cache_dir)
    except OSError as exc:
        if is_local:
            raise InputError(
                f"{folder} is not a saved model and image processor ({short(exc)}); write it "
                "with model.save_pretrained(dir) and processor.save_pretrained(dir)."
            ) from None
        raise unavailable(
            spec,
            exc,
            fetch=f"import transformers as t; t.AutoModel.from_pretrained('{source}'); "
            f"t.AutoImageProcessor.from_pretrained('{source}')",
            copy=f"the Hugging Face hub cache {hf_cache(cache_dir)}",
            local="pass a folder written by save_pretrained as hf:/path/to/dir",
        ) from None
    transform = ImageTransform(HFProcessorTransform(processor))
    input_size = probe_input_size(transform)
    return Built(model, transform, describe_hf(processor, input_size), input_size, _hf_penultimate)


def _hf_from_pretrained(
    transformers: Any, source: str, pretrained: bool, cache_dir: str | None
) -> tuple[Any, Any]:
    import torch

    kwargs = {"cache_dir": cache_dir} if cache_dir else {}
    processor = transformers.AutoImageProcessor.from_pretrained(source, **kwargs)
    if pretrained:
        model = transformers.AutoModel.from_pretrained(source, dtype=torch.float32, **kwargs)
    else:
        config = transformers.AutoConfig.from_pretrained(source, **kwargs)
        model = transformers.AutoModel.from_config(config, dtype=torch.float32)
    return processor, model


def _hf_penultimate(module: Any, x: Any, pooling: str) -> Any:
    """``pooler_output`` for ``pooling="cls"`` when the model has one, else pooled
    ``last_hidden_state`` (mean over all tokens, CLS included, or token 0)."""
    out = module(pixel_values=x)
    pooled = getattr(out, "pooler_output", None)
    if pooling == "cls" and pooled is not None:
        return reduce_output(pooled.flatten(1), pooling)
    return reduce_output(out.last_hidden_state, pooling)
