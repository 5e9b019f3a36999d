"""Picklable image transforms and the canonical JSON description of each (a cache-key part).

Every transform is a library's own eval pipeline wrapped in :class:`ImageTransform`, which
makes the input RGB and the output a contiguous float32 ``(C, H, W)`` tensor. Instances hold
only picklable objects, so DataLoader worker processes receive them by pickling.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "HFProcessorTransform",
    "ImageTransform",
    "describe_hf",
    "describe_pipeline",
    "timm_transform",
]


class ImageTransform:
    """PIL image -> float32 ``(C, H, W)`` tensor through ``inner`` (a library's eval transform).

    Parameters
    ----------
    inner : callable
        Picklable ``PIL.Image -> Tensor of shape (C, H, W)``.
    """

    def __init__(self, inner: Callable[[Any], Any]) -> None:
        self.inner = inner

    def __call__(self, image: Any) -> Any:
        if image.mode != "RGB":
            image = image.convert("RGB")
        return self.inner(image).float().contiguous()

    def __repr__(self) -> str:
        return f"ImageTransform({self.inner!r})"

    def split(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        """``(per_image, per_batch)`` with ``per_batch(stack(per_image(img)))`` == ``self(img)``.

        When the pipeline ends in ``ToTensor``/``MaybeToTensor`` then ``Normalize``,
        ``per_image`` stops at a uint8 ``(C, H, W)`` tensor and ``per_batch`` applies the same
        float operations (÷255, −mean, ÷std) to a whole ``(B, C, H, W)`` batch: bitwise the
        same result, a quarter of the bytes between processes, and normalisation on the
        device that runs the model. Other pipelines return ``(self, float32 cast)``.
        """
        steps = list(getattr(self.inner, "transforms", []))
        names = [type(step).__name__ for step in steps[-2:]]
        if len(steps) < 2 or names[0] not in _TO_TENSOR or names[1] != "Normalize":
            return self, as_float32
        return _Uint8Head(steps[:-2]), _BatchNormalize(steps[-1].mean, steps[-1].std)


_TO_TENSOR = ("ToTensor", "MaybeToTensor")


def as_float32(batch: Any) -> Any:
    """A batch cast to float32: the batch stage of pipelines that already normalise."""
    return batch.float()


class _Uint8Head:
    """The geometric steps of a pipeline, ending in a uint8 ``(C, H, W)`` tensor."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps

    def __call__(self, image: Any) -> Any:
        from torchvision.transforms.functional import pil_to_tensor

        if image.mode != "RGB":
            image = image.convert("RGB")
        for step in self.steps:
            image = step(image)
        return pil_to_tensor(image)


class _BatchNormalize:
    """uint8 ``(B, C, H, W)`` -> float32, as ``ToTensor`` then ``Normalize`` compute it."""

    def __init__(self, mean: Any, std: Any) -> None:
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    def __call__(self, batch: Any) -> Any:
        import torch

        x = batch.to(torch.float32).div(255)
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)[:, None, None]
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device)[:, None, None]
        return x.sub_(mean).div_(std)


class HFProcessorTransform:
    """A Hugging Face image processor as ``PIL.Image -> Tensor of shape (C, H, W)``."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, image: Any) -> Any:
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]

    def __repr__(self) -> str:
        return f"HFProcessorTransform({type(self.processor).__name__})"


def timm_transform(data_config: dict[str, Any]) -> ImageTransform:
    """timm's eval transform for a data config (``timm.data.resolve_data_config`` output)."""
    from timm.data import create_transform

    return ImageTransform(create_transform(**data_config, is_training=False))


def describe_pipeline(
    library: str, pipeline: Any, input_size: tuple[int, int, int]
) -> dict[str, Any]:
    """Canonical description of a torchvision-style pipeline (``Compose`` or one transform).

    Parameters
    ----------
    library : str
        Library whose eval transform this is (``"timm"``, ``"torchvision"``, ``"open_clip"``).
    pipeline : callable
        ``torchvision.transforms.Compose``, or one transform such as torchvision's
        ``ImageClassification`` preset.
    input_size : tuple of int
        ``(C, H, W)`` of the tensor the pipeline produces.

    Returns
    -------
    dict
        JSON-able: library, input_size, steps (class names), resize, crop, interpolation,
        antialias, mean, std.
    """
    steps = list(getattr(pipeline, "transforms", [pipeline]))
    described: dict[str, Any] = {
        "library": library,
        "input_size": input_size,
        "steps": [type(step).__name__ for step in steps],
        "resize": None,
        "crop": None,
        "interpolation": None,
        "antialias": None,
        "mean": None,
        "std": None,
    }
    for step in steps:
        described.update(_step_fields(step))
    return _jsonable(described)


def describe_hf(processor: Any, input_size: tuple[int, int, int]) -> dict[str, Any]:
    """Canonical description of a Hugging Face image processor (same keys as the others)."""
    config = processor.to_dict()
    resample = config.get("resample")
    return _jsonable(
        {
            "library": "transformers",
            "input_size": input_size,
            "steps": [type(processor).__name__],
            "resize": config.get("size") if config.get("do_resize", True) else None,
            "crop": config.get("crop_size") if config.get("do_center_crop") else None,
            "interpolation": _pil_filter_name(resample) if resample is not None else None,
            "antialias": None,
            "rescale_factor": config.get("rescale_factor") if config.get("do_rescale") else None,
            "mean": config.get("image_mean") if config.get("do_normalize") else None,
            "std": config.get("image_std") if config.get("do_normalize") else None,
        }
    )


def _step_fields(step: Any) -> dict[str, Any]:
    if hasattr(step, "resize_size"):  # torchvision's ImageClassification preset
        return {
            "resize": step.resize_size,
            "crop": step.crop_size,
            "interpolation": step.interpolation,
            "antialias": step.antialias,
            "mean": step.mean,
            "std": step.std,
        }
    kind = type(step).__name__.lower()
    if "resize" in kind:
        return {
            "resize": step.size,
            "interpolation": getattr(step, "interpolation", None),
            "antialias": getattr(step, "antialias", None),
        }
    if "crop" in kind:
        return {"crop": step.size}
    if "normalize" in kind:
        return {"mean": step.mean, "std": step.std}
    return {}


def _pil_filter_name(resample: Any) -> str:
    if isinstance(resample, int):
        from PIL import Image

        return Image.Resampling(resample).name.lower()
    return str(getattr(resample, "value", resample)).lower()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "numpy"):  # torch tensors
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype == np.float32:  # shortest round-trip text: 0.485, not 0.48500001430511475
            value = value.astype(str).astype(np.float64)
        return value.tolist()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
