"""What every model-source loader shares: the Built record and one-line error helpers."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from repscope._validation import InputError
from repscope.io._model_spec import ModelSpec, WeightsUnavailableError

__all__ = [
    "Built",
    "hf_cache",
    "load_strict",
    "offline",
    "probe_input_size",
    "require",
    "short",
    "unavailable",
]


@dataclass
class Built:
    """What a loader produces (before eval mode, CPU placement and hashing)."""

    module: Any
    transform: Callable[[Any], Any]
    preprocessing: dict[str, Any]
    input_size: tuple[int, int, int]
    penultimate: Callable[[Any, Any, str], Any]


def require(module: str, spec: ModelSpec, pip: str | None = None) -> Any:
    """Import ``module`` or raise InputError with the install line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError(
            f"{spec.source} models need the {module} package ({exc}); install it with "
            f"pip install -c requirements/lock.txt {pip or module}."
        ) from None


def load_strict(model: Any, state: Any, spec: ModelSpec, path: Any) -> None:
    """``model.load_state_dict(state, strict=True)``; a mismatch becomes an InputError."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(
            f"weights file {path} does not match the architecture of {spec.raw} ({short(exc)})."
        ) from None


def probe_input_size(transform: Callable[[Any], Any]) -> tuple[int, int, int]:
    """(C, H, W) the transform produces for a square grey image."""
    from PIL import Image

    return tuple(transform(Image.new("RGB", (512, 512), (128, 128, 128))).shape)


def offline() -> bool:
    """Hugging Face offline mode, read now (the hub library reads it once, at import)."""
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    constants = sys.modules.get("huggingface_hub.constants")
    on = any(f.strip().upper() in {"1", "ON", "YES", "TRUE"} for f in flags)
    return on or bool(getattr(constants, "HF_HUB_OFFLINE", False))


def hf_cache(cache_dir: str | None) -> str:
    """The Hugging Face hub cache folder in use."""
    if cache_dir:
        return str(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def unavailable(
    spec: ModelSpec, reason: Any, *, fetch: str, copy: str, local: str
) -> WeightsUnavailableError:
    """The one-line error: model, cause, fetch command, folder to copy, local alternative."""
    return WeightsUnavailableError(
        f"weights for {spec.raw} are not available here ({short(reason, 120)}); on a machine "
        "with "
        f'internet run python -c "{fetch}" and copy {copy} to the same path here, or {local}.'
    )


def short(reason: Any, limit: int = 200) -> str:
    """``reason`` on one line, at most ``limit`` characters."""
    text = " ".join(str(reason).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
