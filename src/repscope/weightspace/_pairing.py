"""Match the weight matrices of two checkpoints of one architecture, layer by layer.

Layers are matched by name. A layer present in one model only, or a shape that differs, means
the architectures differ: one error names the first such layer and both shapes. The one
exception is a replaced classification head: when the *last* matrix of both models differs
only in its output size (1000 ImageNet classes → 10 digits), it is skipped and listed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from repscope._validation import InputError
from repscope.weightspace._sources import ResolvedWeights, resolve_weights
from repscope.weightspace.matrices import Kind, WeightMatrix, check_finite, extract_matrices

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["LayerPair", "PairedModels", "load_pair", "pair_layers"]


@dataclass(frozen=True)
class LayerPair:
    """One layer in both models, float64 on the analysis device.

    Attributes
    ----------
    name : str
    kind : {"linear", "conv", "attention"}
    position : int
        Index among the compared layers, in model order.
    depth : float
        ``position / (n_layers - 1)``: 0 the first compared layer, 1 the last.
    shape : tuple of int
        Stored shape of the weight.
    base, tuned : torch.Tensor of shape (out, in_flat)
    """

    name: str
    kind: Kind
    position: int
    depth: float
    shape: tuple[int, ...]
    base: torch.Tensor
    tuned: torch.Tensor


@dataclass(frozen=True)
class PairedModels:
    """The layers two models share, and what was left out (name, reason)."""

    layers: list[LayerPair]
    skipped: list[tuple[str, str]]


def load_pair(
    base: Any,
    tuned: Any,
    *,
    device: Any,
    min_dim: int,
    exclude: Sequence[str],
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[ResolvedWeights, ResolvedWeights, PairedModels]:
    """Resolve both sources and pair their layers (see :func:`pair_layers`)."""
    a = resolve_weights(base, cache_dir=cache_dir)
    b = resolve_weights(tuned, cache_dir=cache_dir)
    return a, b, pair_layers(a, b, device=device, min_dim=min_dim, exclude=exclude)


def pair_layers(
    base: ResolvedWeights,
    tuned: ResolvedWeights,
    *,
    device: Any,
    min_dim: int,
    exclude: Sequence[str],
) -> PairedModels:
    """The matrices of ``base`` and ``tuned``, matched by name, as float64 on ``device``.

    Raises
    ------
    InputError
        Architectures that differ (first mismatched layer and both shapes), non-finite weights,
        or no matrix left to compare.
    """
    import torch

    options = {"min_dim": min_dim, "exclude": exclude, "heads": (*base.heads, *tuned.heads)}
    left, skipped = extract_matrices(base.state, base.kinds or tuned.kinds, **options)
    right, _ = extract_matrices(tuned.state, tuned.kinds or base.kinds, **options)
    left, right, head = _drop_new_head(left, right, base.label, tuned.label)
    skipped += head
    right = _check_same_layers(left, right, base.label, tuned.label)
    check_finite(left, base.label)
    check_finite(right, tuned.label)
    if not left:
        raise InputError(
            f"{base.label} and {tuned.label} share no weight matrix with both dimensions >= "
            f"{min_dim}; pass models with linear or convolution layers, or a smaller min_dim."
        )
    last = max(len(left) - 1, 1)
    layers = [
        LayerPair(
            a.name,
            a.kind,
            i,
            i / last,
            a.shape,
            a.matrix.detach().to(device=device, dtype=torch.float64),
            b.matrix.detach().to(device=device, dtype=torch.float64),
        )
        for i, (a, b) in enumerate(zip(left, right, strict=True))
    ]
    return PairedModels(layers, skipped)


def _drop_new_head(
    left: list[WeightMatrix], right: list[WeightMatrix], base: str, tuned: str
) -> tuple[list[WeightMatrix], list[WeightMatrix], list[tuple[str, str]]]:
    if not left or not right:
        return left, right, []
    a, b = left[-1], right[-1]
    if a.name == b.name and a.dims != b.dims and a.dims[1] == b.dims[1]:
        reason = f"a new head ({_dims(a)} in {base}, {_dims(b)} in {tuned})"
        return left[:-1], right[:-1], [(a.name, reason)]
    return left, right, []


def _check_same_layers(
    left: list[WeightMatrix], right: list[WeightMatrix], base: str, tuned: str
) -> list[WeightMatrix]:
    """``right`` in ``left``'s order; an error at the first layer that does not match."""
    names_right = {m.name: m for m in right}
    names_left = {m.name for m in left}
    for a in left:
        b = names_right.get(a.name)
        if b is None:
            _mismatch(f"layer {a.name} ({_dims(a)}) of {base} is missing from {tuned}")
        if a.dims != b.dims:
            _mismatch(f"layer {a.name} is {_dims(a)} in {base} but {_dims(b)} in {tuned}")
    for b in right:
        if b.name not in names_left:
            _mismatch(f"layer {b.name} ({_dims(b)}) of {tuned} is missing from {base}")
    return [names_right[a.name] for a in left]


def _mismatch(what: str) -> NoReturn:
    raise InputError(
        f"the architectures differ: {what}; compare two checkpoints of one architecture "
        "(or leave such layers out with exclude=[...])."
    )


def _dims(m: WeightMatrix) -> str:
    return "×".join(str(s) for s in m.shape)
