"""The weight matrices of a model, as METHOD.md §10 reads them.

Every linear layer's weight W (out × in); a convolution kernel reshaped to out × (in/groups ·
kh · kw); attention projections as their linear layers (``nn.MultiheadAttention``'s packed
``in_proj_weight`` split into its query, key and value blocks; Hugging Face's GPT-2 style
``Conv1D``, stored in × out, transposed). Matrices whose smaller dimension is below ``min_dim``
(default 8) are skipped and listed, as are embedding tables and all-zero matrices.

From an ``nn.Module`` the layer types decide. From a bare state dict (a ``.safetensors`` or
``.pt`` file) only names and shapes are known: a 2-D tensor whose name ends in ``weight`` is a
linear layer, a 3-D to 5-D one a convolution, and names containing ``embed`` are embedding
tables (skipped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

from repscope._validation import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["MIN_DIM", "WeightMatrix", "extract_matrices", "module_kinds"]

#: Layers whose smaller matrix dimension is below this are skipped (METHOD.md §10).
MIN_DIM = 8

Kind = Literal["linear", "conv", "attention"]

_ATTENTION_LEAVES = frozenset(
    {"query", "key", "value", "q_proj", "k_proj", "v_proj", "o_proj", "out_proj", "qkv", "c_attn"}
)
_QKV = ("q", "k", "v")


@dataclass(frozen=True)
class WeightMatrix:
    """One weight matrix, reshaped to 2-D.

    Attributes
    ----------
    name : str
        The state-dict key, with ``[q]``, ``[k]``, ``[v]`` appended for the blocks of a packed
        attention projection.
    kind : {"linear", "conv", "attention"}
    matrix : torch.Tensor of shape (out, in_flat)
        The weight as stored (dtype and device of the source), reshaped, not copied.
    shape : tuple of int
        The tensor's stored shape, e.g. ``(out, in, kh, kw)``.
    """

    name: str
    kind: Kind
    matrix: torch.Tensor
    shape: tuple[int, ...]

    @property
    def dims(self) -> tuple[int, int]:
        """``(out, in_flat)``: the matrix's row and column counts."""
        return int(self.matrix.shape[0]), int(self.matrix.shape[1])


def module_kinds(module: Any) -> dict[str, tuple[Kind, bool]]:
    """State-dict keys of ``module``'s weight matrices → (kind, stored transposed).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    dict
        Key ``"<module name>.weight"`` (or ``".in_proj_weight"``) in ``named_modules`` order.
    """
    from torch import nn

    kinds: dict[str, tuple[Kind, bool]] = {}
    for name, child in module.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(child, nn.MultiheadAttention) and child.in_proj_weight is not None:
            kinds[f"{prefix}in_proj_weight"] = ("attention", False)
        elif isinstance(child, nn.Linear):
            kinds[f"{prefix}weight"] = (_linear_kind(name), False)
        elif isinstance(child, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            kinds[f"{prefix}weight"] = ("conv", False)
        elif type(child).__name__ == "Conv1D" and hasattr(child, "nf"):  # transformers' GPT-2
            kinds[f"{prefix}weight"] = (_linear_kind(name), True)
    return kinds


def _linear_kind(module_name: str) -> Kind:
    parts = module_name.lower().split(".")
    in_attention = any("attn" in p or "attention" in p for p in parts[:-1])
    return "attention" if parts[-1] in _ATTENTION_LEAVES or in_attention else "linear"


def extract_matrices(
    state: Mapping[str, Any],
    kinds: Mapping[str, tuple[Kind, bool]] | None,
    *,
    min_dim: int = MIN_DIM,
    exclude: Sequence[str] = (),
    heads: Sequence[str] = (),
) -> tuple[list[WeightMatrix], list[tuple[str, str]]]:
    """The weight matrices of a state dict, and the skipped tensors with the reason.

    Parameters
    ----------
    state : mapping of str to torch.Tensor
        A model's state dict.
    kinds : mapping or None
        :func:`module_kinds` of the module the state came from; None guesses from names and
        shapes (module docstring).
    min_dim : int
        Matrices with ``min(out, in_flat) < min_dim`` are skipped.
    exclude : sequence of str
        ``fnmatch`` patterns of layer names (``"classifier.1"`` or ``"classifier.*"``) to leave
        out; a pattern matches a key or the key without its ``.weight`` suffix.
    heads : sequence of str
        Module names of classification heads a fine-tune replaced, left out as such.

    Returns
    -------
    matrices : list of WeightMatrix
        In the module's order (``kinds``), else in state-dict order.
    skipped : list of (name, reason)
    """
    found = kinds if kinds is not None else _guess_kinds(state)
    matrices: list[WeightMatrix] = []
    skipped: list[tuple[str, str]] = []
    if kinds is None:
        skipped += [(k, "embedding table") for k, v in state.items() if _is_embedding(k, v)]
    for key in (k for k in found if k in state):  # the module's order when it is known
        if _excluded(key, heads):
            skipped.append((key, "the head a fine-tune replaced"))
            continue
        if _excluded(key, exclude):
            skipped.append((key, "excluded"))
            continue
        kind, transposed = found[key]
        for candidate in _split(key, kind, state[key], transposed):
            reason = _skip_reason(candidate, min_dim)
            if reason:
                skipped.append((candidate.name, reason))
            else:
                matrices.append(candidate)
    return matrices, skipped


def _guess_kinds(state: Mapping[str, Any]) -> dict[str, tuple[Kind, bool]]:
    kinds: dict[str, tuple[Kind, bool]] = {}
    for key, value in state.items():
        ndim = getattr(value, "ndim", 0)
        if key.endswith("in_proj_weight") and ndim == 2:
            kinds[key] = ("attention", False)
        elif key.endswith("weight") and not _is_embedding(key, value):
            if ndim == 2:
                kinds[key] = (_linear_kind(key.rsplit(".", 1)[0]), False)
            elif 3 <= ndim <= 5:
                kinds[key] = ("conv", False)
    return kinds


def _is_embedding(key: str, value: Any) -> bool:
    return "embed" in key.lower() and getattr(value, "ndim", 0) == 2


def _excluded(key: str, patterns: Sequence[str]) -> bool:
    stem = key.rsplit(".", 1)[0] if "." in key else key
    return any(fnmatchcase(key, p) or fnmatchcase(stem, p) for p in patterns)


def _split(key: str, kind: Kind, tensor: Any, transposed: bool) -> list[WeightMatrix]:
    shape = tuple(int(s) for s in tensor.shape)
    matrix = tensor.t() if transposed else tensor.reshape(shape[0], -1)
    if key.endswith("in_proj_weight") and matrix.shape[0] % 3 == 0:
        blocks = matrix.chunk(3, dim=0)
        return [
            WeightMatrix(f"{key}[{q}]", "attention", b, tuple(b.shape))
            for q, b in zip(_QKV, blocks, strict=True)
        ]
    return [WeightMatrix(key, kind, matrix, shape)]


def _skip_reason(candidate: WeightMatrix, min_dim: int) -> str | None:
    import torch

    out, inner = candidate.dims
    if min(out, inner) < min_dim:
        return f"smaller dimension {min(out, inner)} < {min_dim}"
    if not torch.is_floating_point(candidate.matrix):
        return f"not floating point ({candidate.matrix.dtype})"
    if not bool(candidate.matrix.any()):
        return "all zeros"
    return None


def check_finite(matrices: Sequence[WeightMatrix], label: str) -> None:
    """Raise InputError naming the first matrix with a NaN or an infinity."""
    import torch

    for m in matrices:
        if not bool(torch.isfinite(m.matrix).all()):
            raise InputError(
                f"{label}: layer {m.name} has non-finite weights (NaN or inf); check the "
                "checkpoint (a diverged run?) before comparing it."
            )
