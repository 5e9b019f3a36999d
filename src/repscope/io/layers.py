"""Any layer of a loaded model as a ``(batch, features)`` function, and the list of layers.

Named layers are read with forward hooks. The hook raises a private exception once the
hooked module has run and the forward pass is abandoned there, so later layers cost nothing.
Outputs become vectors the same way everywhere (:func:`reduce_output`): spatial maps
``(B, C, H, W)`` are averaged over ``H, W``; token sequences ``(B, T, C)`` are averaged over
tokens (``pooling="mean"``) or give token 0 (``pooling="cls"``); ``(B, D)`` is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from repscope._validation import InputError
from repscope.io._model_spec import near_matches

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from repscope.io.models import LoadedModel

__all__ = ["LayerInfo", "check_pooling", "feature_fn", "list_layers", "reduce_output"]

Pooling = Literal["mean", "cls"]
PENULTIMATE = "penultimate"


class _StopForward(BaseException):
    """Raised by a hook to end the forward pass; a BaseException so that a model's own
    ``except Exception`` cannot swallow it."""


@dataclass(frozen=True)
class LayerInfo:
    """One readable layer.

    Attributes
    ----------
    name : str
        ``"penultimate"`` or a module name from ``module.named_modules()``.
    type : str
        Module class name (``"pre-logits"`` for the penultimate features).
    output_shape : tuple of int or None
        Output shape for one zeros image, batch dimension (1) included; None when the module
        did not run in the forward pass or shapes were not asked for.
    """

    name: str
    type: str
    output_shape: tuple[int, ...] | None


def feature_fn(
    model: LoadedModel, layer: str = PENULTIMATE, pooling: Pooling = "mean"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from a preprocessed batch to one layer's features.

    Parameters
    ----------
    model : LoadedModel
        From :func:`repscope.io.models.load_model`.
    layer : str
        ``"penultimate"`` (the source's pooled pre-logits features, see
        :func:`~repscope.io.models.load_model`) or a module name listed by ``repscope layers
        SPEC`` / :func:`list_layers`.
    pooling : {"mean", "cls"}
        For token outputs ``(B, T, C)``: mean over tokens, or token 0. Spatial maps are
        always averaged over ``H, W`` (channels-first, or channels-last for timm models
        whose ``output_fmt`` is ``"NHWC"``, such as Swin). The penultimate features of timm,
        torchvision, open_clip and EfficientNet-Lite models are pooled by the model itself
        and ignore it; ``hf`` models use it.

    Returns
    -------
    callable
        ``f(x)`` with ``x`` a float tensor of shape ``(B, C, H, W)`` on the module's device,
        returning a tensor of shape ``(B, D)``; runs under ``torch.inference_mode``.

    Raises
    ------
    InputError
        Unknown pooling or layer name (near matches listed), or a named layer of a
        TorchScript module (hooks are not supported there).
    """
    check_pooling(pooling)
    if layer == PENULTIMATE:
        penultimate = model._penultimate or output_penultimate
        return _inference(lambda x: penultimate(model.module, x, pooling))
    target = _named_module(model, layer)
    # timm models that keep feature maps channels-last (Swin: output_fmt "NHWC") say so
    spatial = (1, 2) if str(getattr(model.module, "output_fmt", "NCHW")) == "NHWC" else (2, 3)

    def read_layer(x: torch.Tensor) -> torch.Tensor:
        captured = run_until(model.module, target, x, capture="output")
        if captured is None:
            raise InputError(
                f"layer {layer!r} of {model.spec.raw} did not run in the forward pass; pick "
                f"another from `repscope layers {model.spec.raw}`."
            )
        return reduce_output(captured, pooling, spatial_axes=spatial)

    return _inference(read_layer)


def check_pooling(pooling: str) -> None:
    """Raise a one-line InputError unless ``pooling`` is ``"mean"`` or ``"cls"``."""
    if pooling not in ("mean", "cls"):
        raise InputError(f"pooling={pooling!r} is not known; pass 'mean' or 'cls'.")


def list_layers(model: LoadedModel, *, with_shapes: bool = True) -> list[LayerInfo]:
    """Every layer :func:`feature_fn` can read, ``"penultimate"`` first.

    Parameters
    ----------
    model : LoadedModel
        From :func:`repscope.io.models.load_model`.
    with_shapes : bool
        Run one zeros image of ``model.input_size`` (batch 1) through the module, and once
        through the penultimate function, to record output shapes.

    Returns
    -------
    list of LayerInfo
        ``"penultimate"``, then ``model.module.named_modules()`` in order, root excluded.
    """
    import torch

    modules = [(name, mod) for name, mod in model.module.named_modules() if name]
    shapes: dict[str, tuple[int, ...]] = {}
    penultimate_shape = None
    if with_shapes:
        x = torch.zeros((1, *model.input_size), device=_device(model.module))
        shapes = _probe_shapes(model.module, modules, x)
        penultimate_shape = tuple(feature_fn(model)(x).shape)
    head = LayerInfo(PENULTIMATE, "pre-logits", penultimate_shape)
    return [head] + [LayerInfo(n, type(m).__name__, shapes.get(n)) for n, m in modules]


def reduce_output(
    output: Any, pooling: Pooling = "mean", *, spatial_axes: tuple[int, int] = (2, 3)
) -> torch.Tensor:
    """A module output as ``(B, D)``: first tensor of tuples/ModelOutputs, then pooled.

    Parameters
    ----------
    output : Tensor, tuple or mapping
        ``(B, D)`` kept; ``(B, T, C)`` mean over T or token 0 (``pooling="cls"``);
        4-D feature maps averaged over ``spatial_axes``.
    pooling : {"mean", "cls"}
    spatial_axes : tuple of int
        ``(2, 3)`` for ``(B, C, H, W)`` maps; ``(1, 2)`` for channels-last ``(B, H, W, C)``.

    Returns
    -------
    Tensor of shape (B, D)
    """
    t = first_tensor(output)
    if t is None or t.ndim not in (2, 3, 4):
        shape = None if t is None else tuple(t.shape)
        raise InputError(
            f"a layer output of shape {shape} cannot be pooled to (batch, features); pick a "
            "layer whose output is (B, D), (B, T, C) or (B, C, H, W)."
        )
    if t.ndim == 4:
        return t.mean(dim=spatial_axes)
    if t.ndim == 3:
        return t[:, 0] if pooling == "cls" else t.mean(dim=1)
    return t


def first_tensor(output: Any) -> torch.Tensor | None:
    """The output itself if a tensor, else the first tensor in a tuple, list or mapping."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):  # also transformers' ModelOutput
        output = list(output.values())
    if not isinstance(output, (tuple, list)):
        return None
    for item in output:
        found = first_tensor(item)
        if found is not None:
            return found
    return None


def run_until(
    module: torch.nn.Module,
    target: torch.nn.Module,
    x: torch.Tensor,
    *,
    capture: Literal["input", "output"],
) -> Any:
    """Run ``module(x)`` until ``target`` is reached; return its first input or its output.

    Returns None when ``target`` does not run.
    """
    captured: list[Any] = []

    def pre_hook(_mod: Any, args: tuple[Any, ...]) -> None:
        captured.append(args[0])
        raise _StopForward

    def hook(_mod: Any, _args: Any, output: Any) -> None:
        captured.append(output)
        raise _StopForward

    if capture == "input":
        handle = target.register_forward_pre_hook(pre_hook)
    else:
        handle = target.register_forward_hook(hook)
    try:
        module(x)
    except _StopForward:
        pass
    finally:
        handle.remove()
    return captured[0] if captured else None


def output_penultimate(module: torch.nn.Module, x: torch.Tensor, pooling: Pooling) -> Any:
    """Penultimate features as the pooled module output (TorchScript, open_clip towers)."""
    return reduce_output(module(x), pooling)


def last_linear_input(module: torch.nn.Module, x: torch.Tensor, pooling: Pooling) -> Any:
    """Penultimate features as the input of the last ``nn.Linear`` (the classifier).

    For torchvision ResNet, MobileNet, EfficientNet and ViT that is the pooled pre-logits
    vector; a module without any ``nn.Linear`` gives its pooled output instead.
    """
    import torch

    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        return output_penultimate(module, x, pooling)
    captured = run_until(module, linears[-1], x, capture="input")
    if captured is None:
        raise InputError(
            f"the last nn.Linear of {type(module).__name__} did not run in the forward pass; "
            "read a named layer instead (see `repscope layers SPEC`)."
        )
    return reduce_output(captured, pooling)


def _named_module(model: LoadedModel, layer: str) -> torch.nn.Module:
    import torch

    modules = dict(model.module.named_modules())
    modules.pop("", None)
    if layer not in modules:
        raise InputError(
            f"layer {layer!r} is not a module of {model.spec.raw}"
            f"{near_matches(layer, [PENULTIMATE, *modules])}; list them with "
            f"`repscope layers {model.spec.raw}`."
        )
    if isinstance(model.module, torch.jit.ScriptModule):
        raise InputError(
            f"{model.spec.raw} is a TorchScript module, whose layers cannot be hooked; read "
            "layer='penultimate' (its output) or load the model from its library instead."
        )
    return modules[layer]


def _probe_shapes(
    module: torch.nn.Module, modules: list[tuple[str, torch.nn.Module]], x: torch.Tensor
) -> dict[str, tuple[int, ...]]:
    """Output shape of every module that runs in one forward of ``x`` (first call wins)."""
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        return {}
    shapes: dict[str, tuple[int, ...]] = {}

    def recorder(name: str) -> Callable[..., None]:
        def hook(_mod: Any, _args: Any, output: Any) -> None:
            t = first_tensor(output)
            if t is not None and name not in shapes:
                shapes[name] = tuple(t.shape)

        return hook

    handles = [mod.register_forward_hook(recorder(name)) for name, mod in modules]
    try:
        with torch.inference_mode():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _inference(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], Any]:
    import torch

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fn(x)

    return run


def _device(module: torch.nn.Module) -> torch.device:
    import torch

    first = next(iter(module.parameters()), None)
    return first.device if first is not None else torch.device("cpu")
