"""Model spec strings (``SOURCE:NAME``) and the error raised when weights are not at hand.

Grammar, one per source:

==================  ===============================================  =====================
source              spec                                             ``weights`` field
==================  ===============================================  =====================
timm                ``timm:NAME[.TAG]``                              TAG
torchvision         ``torchvision:NAME[.WEIGHTS]``                   WEIGHTS enum name
open_clip           ``open_clip:ARCH[/PRETRAINED]`` (tag or a file)  PRETRAINED
hf                  ``hf:ORG/NAME`` or ``hf:/path/to/saved/dir``     None
local               ``local:PATH[?arch=TIMM_NAME][&size=N]``         the ``?`` options
efficientnet_lite   ``efficientnet_lite:efficientnet-liteK`` (K 0-4)  None
minizoo             ``minizoo:NAME``                                 None
==================  ===============================================  =====================
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from repscope._validation import InputError

__all__ = [
    "SOURCES",
    "ModelSpec",
    "WeightsUnavailableError",
    "local_options",
    "near_matches",
    "parse_model_spec",
]

SOURCES = ("timm", "torchvision", "open_clip", "hf", "local", "efficientnet_lite", "minizoo")

GRAMMAR = {
    "timm": "timm:NAME[.TAG], e.g. timm:convnext_tiny.fb_in22k_ft_in1k",
    "torchvision": "torchvision:NAME[.WEIGHTS], e.g. torchvision:resnet50.IMAGENET1K_V2",
    "open_clip": "open_clip:ARCH[/PRETRAINED], e.g. open_clip:ViT-B-32/laion2b_s34b_b79k",
    "hf": "hf:ORG/NAME or hf:/path/to/dir, e.g. hf:facebook/dinov2-small",
    "local": "local:PATH[?arch=TIMM_NAME][&size=N], e.g. local:/models/net.pth?arch=resnet50",
    "efficientnet_lite": "efficientnet_lite:efficientnet-liteK with K in 0-4",
    "minizoo": "minizoo:NAME",
}

EFFICIENTNET_LITE = tuple(f"efficientnet-lite{k}" for k in range(5))
_LOCAL_KEYS = ("arch", "size")


class WeightsUnavailableError(InputError):
    """Published weights are neither cached nor downloadable here.

    The one-line message names the model, the command that fetches its weights on a machine
    with internet and the cache folder to copy, or how to pass local weights instead.
    """


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes
    ----------
    source : str
        One of :data:`SOURCES`.
    name : str
        Model name in its library (timm / torchvision / open_clip architecture, Hugging Face
        repo id or folder, file path for ``local``).
    weights : str or None
        timm pretrained tag, torchvision weights enum name, open_clip pretrained tag or file,
        the ``key=value&...`` options of a ``local`` spec; None when not given.
    raw : str
        The spec string as given.
    """

    source: str
    name: str
    weights: str | None
    raw: str


def parse_model_spec(spec: str) -> ModelSpec:
    """Split ``"SOURCE:NAME..."`` into its parts (see the module docstring for the grammar).

    Parameters
    ----------
    spec : str
        e.g. ``"timm:convnext_tiny.fb_in22k_ft_in1k"``.

    Returns
    -------
    ModelSpec

    Raises
    ------
    InputError
        Missing or unknown source prefix (with the known ones and near matches), empty name,
        malformed ``local`` options or an unknown EfficientNet-Lite variant.

    Examples
    --------
    >>> parse_model_spec("timm:convnext_tiny.fb_in22k_ft_in1k")
    ModelSpec(source='timm', name='convnext_tiny', weights='fb_in22k_ft_in1k', raw='timm:convnext_tiny.fb_in22k_ft_in1k')
    >>> parse_model_spec("open_clip:ViT-B-32/laion2b_s34b_b79k").weights
    'laion2b_s34b_b79k'
    """  # noqa: E501
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(
            f"model spec {spec!r} is empty; write SOURCE:NAME, e.g. {GRAMMAR['timm']}."
        )
    text = spec.strip()
    source, sep, rest = text.partition(":")
    if not sep or source not in SOURCES:
        raise _unknown_source(text, source if sep else None)
    if not rest:
        raise InputError(
            f"model spec {text!r} has no name after '{source}:'; write {GRAMMAR[source]}."
        )
    name, tag = _split(source, rest)
    if not name:
        raise InputError(f"model spec {text!r} has no model name; write {GRAMMAR[source]}.")
    parsed = ModelSpec(source=source, name=name, weights=tag or None, raw=text)
    _check_parts(parsed)
    return parsed


def local_options(spec: ModelSpec) -> dict[str, str | int]:
    """The ``?arch=...&size=N`` options of a ``local`` spec (``size`` as an int)."""
    options: dict[str, str | int] = {}
    for item in filter(None, (spec.weights or "").split("&")):
        key, sep, value = item.partition("=")
        if not sep or key not in _LOCAL_KEYS or not value:
            raise InputError(
                f"option {item!r} in {spec.raw!r} is not understood; local specs take "
                f"?arch=TIMM_NAME and/or size=N: {GRAMMAR['local']}."
            )
        options[key] = value
    if "size" in options:
        size = str(options["size"])
        if not size.isdigit() or int(size) < 1:
            raise InputError(
                f"size={size!r} in {spec.raw!r} must be a positive int, e.g. size=224."
            )
        options["size"] = int(size)
    return options


def _split(source: str, rest: str) -> tuple[str, str]:
    """(name, weights part) of the text after ``SOURCE:``."""
    if source in ("timm", "torchvision"):
        name, _, tag = rest.partition(".")
    elif source == "open_clip" and not rest.startswith("hf-hub:"):
        name, _, tag = rest.partition("/")
    elif source == "local":
        name, _, tag = rest.partition("?")
    else:
        name, tag = rest, ""
    return name, tag


def _check_parts(spec: ModelSpec) -> None:
    if spec.source == "local":
        local_options(spec)
    if spec.source == "efficientnet_lite" and spec.name not in EFFICIENTNET_LITE:
        raise InputError(
            f"{spec.name!r} is not an EfficientNet-Lite variant; pass one of "
            f"{', '.join(EFFICIENTNET_LITE)}{near_matches(spec.name, EFFICIENTNET_LITE)}."
        )


def _unknown_source(text: str, source: str | None) -> InputError:
    known = ", ".join(SOURCES)
    if source is None:
        return InputError(
            f"model spec {text!r} has no source prefix; write SOURCE:NAME with SOURCE one of "
            f"{known} (e.g. timm:{text} or torchvision:{text})."
        )
    return InputError(
        f"unknown model source {source!r} in {text!r}; known sources: {known}"
        f"{near_matches(source, SOURCES)}."
    )


def near_matches(word: str, options: tuple[str, ...] | list[str]) -> str:
    """``" (did you mean 'a' or 'b'?)"`` naming the closest options, or ``""``."""
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.5)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
