"""Turn what a user passes as a model (spec, module, state dict, checkpoint file) into weights.

Accepted, for every ``base``/``tuned`` argument of the weight-space analysis:

- a model spec as in the zoo (``"torchvision:mobilenet_v2.IMAGENET1K_V1"``,
  ``"minizoo:cnn-w8-d1-n500"``; :func:`repscope.io.models.load_model`), or
  ``"finetuned:NAME"`` for a model of :func:`repscope.zoo.finetuned.finetune_zoo` (its new
  classification head is left out of the comparison);
- a ``torch.nn.Module``, or a loaded model object with a ``module`` attribute;
- a state dict (mapping of names to tensors or arrays);
- a checkpoint file: ``.safetensors``, or a ``torch.save``'d state dict read with
  ``torch.load(weights_only=True)``. A pickle of arbitrary Python objects is refused: it can run
  code when loaded.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repscope._validation import InputError
from repscope.io._model_spec import SOURCES
from repscope.weightspace.matrices import Kind, module_kinds

__all__ = ["ResolvedWeights", "resolve_weights"]

_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")
_FINETUNED = "finetuned:"


@dataclass(frozen=True)
class ResolvedWeights:
    """A model's state dict, what is known about its layers, and how to name it.

    Attributes
    ----------
    label : str
        The spec, file name or class name, for tables and messages.
    state : dict of str to torch.Tensor
    kinds : dict or None
        Layer kinds from the module (:func:`~repscope.weightspace.matrices.module_kinds`);
        None for a bare state dict.
    heads : tuple of str
        Module names of classification heads the source says it replaced (a fine-tuned
        model's new head), left out of comparisons.
    """

    label: str
    state: dict[str, Any] = field(repr=False)
    kinds: dict[str, tuple[Kind, bool]] | None = field(repr=False)
    heads: tuple[str, ...] = ()


def resolve_weights(
    source: Any, *, cache_dir: str | os.PathLike[str] | None = None
) -> ResolvedWeights:
    """Read the weights of ``source`` (module docstring lists what is accepted).

    Raises
    ------
    InputError
        A missing file, an unknown spec, a checkpoint holding arbitrary Python objects, or an
        object that is none of the accepted kinds.
    """
    from torch import nn

    if isinstance(source, nn.Module):
        return _from_module(source, type(source).__name__)
    if isinstance(source, Mapping):
        return ResolvedWeights("state dict", _tensors(source, "the state dict"), None)
    if isinstance(source, (str, os.PathLike)):
        return _from_text(source, cache_dir)
    module = getattr(source, "module", None)
    if isinstance(module, nn.Module):
        head = getattr(source, "head", None)
        return _from_module(module, _object_label(source), (head,) if head else ())
    raise InputError(
        f"cannot read weights from a {type(source).__name__}; pass a model spec, an "
        "nn.Module, a state dict or a .safetensors/.pt file."
    )


def _from_module(module: Any, label: str, heads: tuple[str, ...] = ()) -> ResolvedWeights:
    return ResolvedWeights(label, dict(module.state_dict()), module_kinds(module), heads)


def _object_label(source: Any) -> str:
    """A loaded model's spec, a fine-tuned model's ``finetuned:NAME``, else the class name."""
    spec = getattr(getattr(source, "spec", None), "raw", None)
    if spec:
        return str(spec)
    name = getattr(source, "name", None)
    if isinstance(name, str) and getattr(source, "head", None):
        return f"{_FINETUNED}{name}"
    return type(source).__name__


def _from_text(
    source: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None
) -> ResolvedWeights:
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_file():
        return ResolvedWeights(path.name, _read_file(path), None)
    if isinstance(source, str) and text.startswith(_FINETUNED):
        from repscope.zoo.finetuned import load_finetuned

        tuned = load_finetuned(text[len(_FINETUNED) :], cache_dir=cache_dir)
        return _from_module(tuned.module, text, (tuned.head,))
    if isinstance(source, str) and text.split(":", 1)[0] in SOURCES:
        from repscope.io.models import load_model

        return _from_module(load_model(text, cache_dir=cache_dir).module, text)
    raise InputError(
        f"{text} is neither an existing checkpoint file nor a model spec; pass a "
        ".safetensors/.pt file or a spec such as torchvision:mobilenet_v2.IMAGENET1K_V1."
    )


def _read_file(path: Path) -> dict[str, Any]:
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(
            f"{path} holds Python objects besides tensors, and repscope loads checkpoints with "
            "torch.load(weights_only=True) only (a pickle can run code); save it with "
            "torch.save(model.state_dict(), ...) or as .safetensors."
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise InputError(
            f"{path} is not a readable torch checkpoint ({str(exc).splitlines()[0][:120]}); pass "
            "a torch.save'd state dict or a .safetensors file."
        ) from None
    return _tensors(_unwrap(loaded, path), str(path))


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(path, device="cpu")
    except (SafetensorError, OSError) as exc:
        raise InputError(
            f"{path} is not a readable safetensors file ({str(exc).splitlines()[0][:120]}); "
            "write it with safetensors.torch.save_file(model.state_dict(), path)."
        ) from None
    # safetensors stores names sorted; a natural sort restores layer order for the usual
    # dotted names (features.2 before features.10)
    return {k: state[k] for k in sorted(state, key=_natural_key)}


def _natural_key(name: str) -> list[Any]:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)]


def _unwrap(loaded: Any, path: Path) -> Mapping[str, Any]:
    """A checkpoint's state dict: the object itself, or one level down under a usual key."""
    if not isinstance(loaded, Mapping):
        raise InputError(
            f"{path} holds a {type(loaded).__name__}, not a state dict; save "
            "model.state_dict() instead."
        )
    if not any(hasattr(v, "shape") for v in loaded.values()):
        for key in _NESTED_KEYS:
            if isinstance(loaded.get(key), Mapping):
                return loaded[key]
    return loaded


def _tensors(state: Mapping[str, Any], label: str) -> dict[str, Any]:
    """String keys to tensors (arrays converted); a shared ``module.`` prefix (DDP) dropped."""
    import numpy as np
    import torch

    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if isinstance(value, torch.Tensor):
            out[str(key)] = value
    if not out:
        raise InputError(f"{label} holds no tensors; pass a model's state_dict().")
    if all(k.startswith("module.") for k in out):
        out = {k[len("module.") :]: v for k, v in out.items()}
    return out
