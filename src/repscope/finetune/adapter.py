"""Spectral fine-tuning: freeze the pretrained singular vectors, train the leading coefficients.

Method (METHOD.md §10, "spectral fine-tuning"). Each targeted weight matrix ``W`` (a Linear's
weight, ``out × in``; a convolution kernel reshaped to ``out × (in/groups · kh · kw)``) is
decomposed once, ``W = U Σ Vᵀ`` (singular values descending), and replaced by

    W(δ) = U diag(σ + δ) Vᵀ = W + U_r diag(δ) V_rᵀ,

where ``U``, ``V`` and ``σ`` are frozen and only ``δ`` — the leading ``r`` spectral coefficients
(default 16; ``rank="all"`` for all ``min(out, in)``) — is trainable. The right-hand form is what
runs: the pretrained weight itself stays frozen and the parametrization adds the low-rank
correction, so at ``δ = 0`` the weight is bit-identical to the original and the adapted model's
outputs equal the original's exactly, for any module that reads ``self.weight`` in its forward
(grouped, depthwise and strided convolutions included). After training,
:meth:`SpectralAdapter.merge` writes ``W(δ)`` back into a plain ``nn.Parameter`` and removes every
trace of the adapter.

Implementation: one :class:`torch.nn.utils.parametrize` parametrization per target, holding
``U_r`` (``out × r``) and ``V_r`` (``in_flat × r``) and ``σ_r`` as buffers and ``δ`` (``r``) as
the only parameter. The forward recomputes the weight at each call (one ``out × r × in_flat``
matrix product per layer), which is cheap next to the layer's own work.

Numerics: the SVD is the weight-space analysis' own (:func:`repscope.weightspace._svd.top_svd`:
the exact ``torch.linalg.svd`` up to a smaller dimension of 4096, on one CPU thread) computed in
float64 on the weight's device, then ``U_r``, ``V_r`` and ``σ_r`` are cast back to the weight's
dtype. Float64 makes the singular vectors accurate (a float32 SVD of a weight with close singular
values can give vectors wrong well beyond float32 round-off); casting back keeps the forward in
the model's own dtype and memory. Since the frozen term is the original ``W`` itself and not its
reconstruction ``U Σ Vᵀ``, the cast costs nothing at ``δ = 0`` and only rounds the (small)
correction afterwards.
"""

from __future__ import annotations

import copy as _copy
import difflib
import fnmatch
import numbers
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from repscope._validation import InputError
from repscope.weightspace._svd import svd_threads, top_svd

__all__ = ["SpectralAdapter", "SpectralDelta", "spectral_adapter"]

_SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_SUPPORTED_NAMES = "nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d"
_WILDCARDS = frozenset("*?[")


class SpectralDelta(nn.Module):
    """Parametrization ``W ↦ W + U_r diag(δ) V_rᵀ`` of one weight (see the module docstring).

    Parameters
    ----------
    weight : Tensor of shape (out, ...)
        The pretrained weight (Linear: ``(out, in)``; ConvNd: ``(out, in/groups, *kernel)``),
        finite. It is only read: the SVD is taken of ``weight.reshape(out, -1)``.
    rank : int
        Number of leading coefficients to train, ``1 <= rank <= min(out, in_flat)``.

    Attributes
    ----------
    U_r : Tensor of shape (out, rank)
        Leading left singular vectors (buffer, frozen, weight dtype).
    V_r : Tensor of shape (in_flat, rank)
        Leading right singular vectors (buffer, frozen, weight dtype).
    sigma : Tensor of shape (rank,)
        Leading singular values, descending (buffer, frozen, weight dtype).
    delta : nn.Parameter of shape (rank,)
        Trainable change of the leading singular values; initialised to zeros.
    """

    U_r: torch.Tensor
    V_r: torch.Tensor
    sigma: torch.Tensor

    def __init__(self, weight: torch.Tensor, rank: int) -> None:
        super().__init__()
        w = weight.detach()
        matrix = w.reshape(w.shape[0], -1).to(torch.float64)
        with svd_threads(w.device):  # one thread on the CPU: faster and machine-independent
            top = top_svd(matrix, rank)
        self.register_buffer("U_r", top.U.to(w.dtype).contiguous())
        self.register_buffer("V_r", top.V.to(w.dtype).contiguous())
        self.register_buffer("sigma", top.S.to(w.dtype).contiguous())
        self.delta = nn.Parameter(torch.zeros(rank, dtype=w.dtype, device=w.device))

    @property
    def rank(self) -> int:
        """Number of trainable coefficients."""
        return int(self.delta.numel())

    def forward(self, W0: torch.Tensor) -> torch.Tensor:
        """Return ``W0 + U_r diag(δ) V_rᵀ`` reshaped to ``W0.shape`` (exactly ``W0`` at δ = 0)."""
        return W0 + ((self.U_r * self.delta) @ self.V_r.T).reshape(W0.shape)

    def extra_repr(self) -> str:
        return f"out={self.U_r.shape[0]}, in_flat={self.V_r.shape[0]}, rank={self.rank}"


class SpectralAdapter:
    """A model adapted by :func:`spectral_adapter`: only the spectral deltas (and any
    ``trainable`` modules) train.

    Attributes
    ----------
    model : nn.Module
        The adapted model; train it as usual (its trainable parameters are the deltas and the
        ``trainable`` modules' parameters).
    targets : tuple of str
        Names of the adapted modules, in ``model.named_modules()`` order (``""`` when the model
        is itself a single Linear/Conv layer).
    ranks : dict of str to int
        Effective rank (number of trainable coefficients) per target.
    skipped : tuple of (str, str)
        ``(name, reason)`` for each Linear/Conv layer that was considered and left alone.
    trainable_modules : tuple of str
        Names of the modules kept fully trainable.
    n_trainable : int
        Trainable scalars: the deltas' sizes plus the ``trainable`` modules' parameters.
    n_parameters : int
        Scalars of the original model (the singular-vector buffers are not counted).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: dict[str, SpectralDelta],
        skipped: tuple[tuple[str, str], ...],
        trainable_modules: tuple[str, ...],
        n_parameters: int,
        requires_grad: dict[str, bool],
        param_order: dict[str, tuple[str, ...]],
    ) -> None:
        self.model = model
        self._layers = layers
        self.targets: tuple[str, ...] = tuple(layers)
        self.ranks: dict[str, int] = {name: layer.rank for name, layer in layers.items()}
        self.skipped = skipped
        self.trainable_modules = trainable_modules
        self.n_parameters = int(n_parameters)
        self.n_trainable = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
        self._requires_grad = requires_grad
        self._param_order = param_order
        self._merged = False

    @property
    def trainable_fraction(self) -> float:
        """``n_trainable / n_parameters`` (0.0 for a model without parameters)."""
        return self.n_trainable / self.n_parameters if self.n_parameters else 0.0

    @property
    def merged(self) -> bool:
        """Whether :meth:`merge` has been called (the adapter is then spent)."""
        return self._merged

    def deltas(self) -> dict[str, torch.Tensor]:
        """Current spectral deltas.

        Returns
        -------
        dict of str to Tensor of shape (rank,)
            Target name → a detached copy of its δ (still available after :meth:`merge`, with
            the values that were merged).
        """
        return {name: layer.delta.detach().clone() for name, layer in self._layers.items()}

    def merge(self) -> nn.Module:
        """Write ``U diag(σ + δ) Vᵀ`` into each target's weight and remove the adapter.

        Every target's parametrization is removed with ``leave_parametrized=True``, so each
        weight becomes a plain ``nn.Parameter`` of its original shape holding the trained value;
        the parameters' original ``requires_grad`` flags and order are restored, so the
        ``state_dict`` keys equal the original model's. The adapter is spent afterwards.

        Returns
        -------
        nn.Module
            :attr:`model`, now a plain model without parametrizations.

        Raises
        ------
        InputError
            If the adapter was already merged.
        """
        if self._merged:
            raise InputError(
                "this SpectralAdapter was already merged (its model is now a plain model); "
                "call spectral_adapter(...) again to adapt it anew."
            )
        modules = dict(self.model.named_modules())
        for name in self.targets:
            module = modules[name]
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            order = self._param_order.get(name)
            if order is not None:
                for key in order:
                    if key in module._parameters:
                        module._parameters[key] = module._parameters.pop(key)
        for pname, param in self.model.named_parameters():
            if pname in self._requires_grad:
                param.requires_grad_(self._requires_grad[pname])
        self._merged = True
        return self.model

    def __repr__(self) -> str:
        shown = ", ".join(self.targets[:3]) + (", ..." if len(self.targets) > 3 else "")
        ranks = sorted(set(self.ranks.values()))
        rank_text = str(ranks[0]) if len(ranks) == 1 else f"{ranks[0]}–{ranks[-1]}"
        state = ", merged" if self._merged else ""
        return (
            f"SpectralAdapter({len(self.targets)} targets [{shown}], rank {rank_text}, "
            f"{len(self.skipped)} skipped, trainable {self.n_trainable:,} / "
            f"{self.n_parameters:,} ({self.trainable_fraction:.3%}){state})"
        )


def spectral_adapter(
    model: nn.Module,
    rank: int | Literal["all"] = 16,
    targets: Sequence[str] | None = None,
    *,
    trainable: Sequence[str] = (),
    min_dim: int = 8,
    copy: bool = True,
) -> SpectralAdapter:
    """Adapt ``model`` for spectral fine-tuning: ``W = U diag(σ + δ) Vᵀ`` with only ``δ`` trained.

    Each target weight ``W`` (Linear ``(out, in)``; ConvNd ``(out, in/groups, *kernel)``,
    reshaped to ``(out, in_flat)``) gets a trainable ``δ`` of shape ``(r,)`` on its ``r`` leading
    singular values, ``r = min(rank, out, in_flat)``; ``U``, ``V``, ``σ`` and every other
    parameter of the model are frozen. At ``δ = 0`` the model computes exactly what the original
    did. Train :attr:`SpectralAdapter.model` as usual, then call :meth:`SpectralAdapter.merge`
    to get a plain model back.

    Parameters
    ----------
    model : nn.Module
        The pretrained model.
    rank : int or "all"
        Number of leading coefficients trained per layer (default 16). Capped per layer at
        ``min(out, in_flat)`` (one ``UserWarning`` for the call lists the capped layers);
        ``"all"`` trains all ``min(out, in_flat)`` coefficients.
    targets : sequence of str or None
        Modules to adapt. ``None``: every ``nn.Linear`` and ``nn.Conv1d/2d/3d``. Otherwise module
        names from ``model.named_modules()``; each pattern is matched with ``fnmatch`` against the
        full dotted name and against each of its dotted suffixes, so ``"query"`` selects every
        ``...attention.self.query`` (like peft's ``target_modules``) and ``"layer.*.value"`` or
        ``"features.*"`` work too. A matched container stands for the Linear/Conv layers inside
        it. A name without wildcards must resolve to a supported layer (or a container of some);
        a wildcard pattern adapts the supported layers among its matches.
    trainable : sequence of str
        Modules kept fully trainable and never targeted (e.g. a new head, ``"classifier"``),
        matched like ``targets``; everything inside them trains.
    min_dim : int
        Layers whose reshaped weight has ``min(out, in_flat) < min_dim`` are skipped (listed in
        :attr:`SpectralAdapter.skipped`); pass 1 to adapt every matched layer.
    copy : bool
        Deep-copy the model first (default; the given model is untouched). ``False`` adapts and
        freezes ``model`` in place.

    Returns
    -------
    SpectralAdapter
        Holds the adapted model, the target names, the per-layer ranks and the skipped layers.

    Raises
    ------
    InputError
        ``model`` is not an ``nn.Module``; ``rank`` is not a positive integer or ``"all"``;
        a ``targets``/``trainable`` pattern matches nothing; a target is not a supported layer;
        a target weight is not finite; nothing is left to adapt.

    Notes
    -----
    The SVD is computed in float64 and the frozen factors are cast back to the weight's dtype;
    the pretrained weight itself stays the frozen term, so ``δ = 0`` is exact (module
    docstring). Tied weights are adapted separately and untied by :meth:`~SpectralAdapter.merge`.

    Examples
    --------
    A Hugging Face BERT with random weights (offline), adapting the attention query and value
    projections like peft's ``target_modules`` and training a new classifier head:

    >>> import torch, transformers
    >>> from repscope.finetune import spectral_adapter
    >>> config = transformers.BertConfig(hidden_size=64, num_hidden_layers=2,
    ...                                  num_attention_heads=2, intermediate_size=128)
    >>> bert = transformers.BertForSequenceClassification(config).eval()
    >>> adapter = spectral_adapter(bert, rank=16, targets=["query", "value"],
    ...                            trainable=["classifier"])
    >>> adapter.targets[:2]
    ('bert.encoder.layer.0.attention.self.query', 'bert.encoder.layer.0.attention.self.value')
    >>> adapter.n_trainable  # 4 layers x 16 coefficients + the 64 x 2 head and its bias
    194
    >>> ids = torch.randint(0, config.vocab_size, (2, 8))
    >>> torch.equal(adapter.model(ids).logits, bert(ids).logits)  # delta = 0: the same model
    True
    >>> optimizer = torch.optim.AdamW(
    ...     [p for p in adapter.model.parameters() if p.requires_grad], lr=1e-3)
    >>> merged = adapter.merge()  # after training: a plain BertForSequenceClassification

    Real GLUE fine-tuning needs the pretrained weights and the dataset, which must be downloaded
    (this machine cannot), e.g.:

    >>> bert = transformers.BertForSequenceClassification.from_pretrained(
    ...     "bert-base-uncased", num_labels=2)  # doctest: +SKIP
    >>> sst2 = datasets.load_dataset("glue", "sst2")  # doctest: +SKIP
    """
    if not isinstance(model, nn.Module):
        raise InputError(
            f"model is a {type(model).__name__}, not a torch.nn.Module; pass the model itself "
            "(e.g. a torchvision or transformers model)."
        )
    _check_rank(rank)
    if isinstance(min_dim, bool) or not isinstance(min_dim, numbers.Integral) or int(min_dim) < 1:
        raise InputError(f"min_dim={min_dim!r} must be a positive integer; pass e.g. min_dim=8.")
    min_dim = int(min_dim)
    target_patterns = None if targets is None else _as_patterns(targets, "targets")
    trainable_patterns = _as_patterns(trainable, "trainable", allow_empty=True)

    if copy:
        try:
            model = _copy.deepcopy(model)
        except Exception as exc:
            raise InputError(
                f"model could not be deep-copied ({type(exc).__name__}: {exc}); "
                "pass copy=False to adapt it in place."
            ) from None

    modules = dict(model.named_modules())  # "" is the model itself
    names = [name for name in modules if name]
    trainable_roots = _resolve_trainable(trainable_patterns, names)
    in_trainable = {
        name for name in modules if any(_inside(name, root) for root in trainable_roots)
    }

    if target_patterns is None:
        candidates = [
            n for n in modules if isinstance(modules[n], _SUPPORTED) and n not in in_trainable
        ]
        if not candidates:
            raise InputError(
                f"model has no {_SUPPORTED_NAMES} layer outside `trainable`; pass a model "
                "with linear or convolution layers."
            )
    else:
        candidates = _resolve_targets(target_patterns, modules, in_trainable)

    # Validate, skip small layers, choose ranks.
    chosen: list[tuple[str, int]] = []
    skipped: list[tuple[str, str]] = []
    capped: list[tuple[str, int]] = []
    for name in candidates:
        weight = modules[name].weight
        if not isinstance(weight, torch.Tensor) or weight.is_meta or weight.dim() < 2:
            skipped.append((name, "weight is not materialised (lazy or meta module)"))
            continue
        out_dim, in_flat = weight.shape[0], weight[0].numel()
        small = min(out_dim, in_flat)
        if small < min_dim:
            skipped.append((name, f"min(out, in_flat) = {small} < min_dim = {min_dim}"))
            continue
        if not weight.is_floating_point():
            raise InputError(
                f"target {name!r} has a {weight.dtype} weight, not floating point; "
                "leave it out of targets."
            )
        if not bool(torch.isfinite(weight.detach()).all()):
            raise InputError(
                f"target {name!r} has a non-finite (NaN or inf) weight; fix or reload the "
                "model's weights, or leave this layer out of targets."
            )
        if rank == "all":
            r = small
        else:
            r = int(rank)
            if r > small:
                capped.append((name, small))
                r = small
        chosen.append((name, r))
    if not chosen:
        raise InputError(
            f"no layer left to adapt: all {len(skipped)} matched layers have "
            f"min(out, in_flat) < min_dim={min_dim}; pass a smaller min_dim or other targets."
        )
    if capped:
        listed = ", ".join(f"{n}: {d}" for n, d in capped[:3]) + (
            ", ..." if len(capped) > 3 else ""
        )
        warnings.warn(
            f"rank {rank} exceeds the smaller dimension of {len(capped)} "
            f"layer{'s' if len(capped) != 1 else ''} ({listed}); capped per layer.",
            UserWarning,
            stacklevel=2,
        )

    # Freeze everything, keep `trainable` modules trainable, then add the deltas.
    n_parameters = sum(p.numel() for p in model.parameters())
    requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
    model.requires_grad_(False)
    for root in trainable_roots:
        modules[root].requires_grad_(True)
    layers: dict[str, SpectralDelta] = {}
    param_order: dict[str, tuple[str, ...]] = {}
    for name, r in chosen:
        module = modules[name]
        param_order[name] = tuple(module._parameters)
        delta = SpectralDelta(module.weight, r)
        parametrize.register_parametrization(module, "weight", delta)
        module.parametrizations.weight.original.requires_grad_(False)
        layers[name] = delta
    return SpectralAdapter(
        model,
        layers,
        tuple(skipped),
        tuple(trainable_roots),
        n_parameters,
        requires_grad,
        param_order,
    )


def _check_rank(rank: Any) -> None:
    if isinstance(rank, str):
        if rank == "all":
            return
        raise InputError(
            f"rank={rank!r} is not a positive integer or 'all'; pass e.g. rank=16 or rank='all'."
        )
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral):
        raise InputError(
            f"rank={rank!r} is not a positive integer or 'all'; pass e.g. rank=16 or rank='all'."
        )
    if int(rank) < 1:
        raise InputError(
            f"rank={rank!r} must be >= 1 (a positive integer or 'all'); pass e.g. rank=16."
        )


def _as_patterns(value: Any, label: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        patterns = tuple(value)
    except TypeError:
        raise InputError(
            f"{label}={value!r} is not a list of module names; pass e.g. {label}=['query']."
        ) from None
    bad = [p for p in patterns if not isinstance(p, str) or not p]
    if bad:
        raise InputError(
            f"{label} must hold non-empty module-name strings, got {bad[0]!r}; "
            f"pass e.g. {label}=['query']."
        )
    if not patterns and not allow_empty:
        raise InputError(
            f"{label} is empty; pass None to adapt every Linear/Conv layer, or module names."
        )
    return patterns


def _suffixes(name: str) -> Iterable[str]:
    parts = name.split(".")
    for i in range(len(parts)):
        yield ".".join(parts[i:])


def _matches(name: str, pattern: str) -> bool:
    return any(fnmatch.fnmatchcase(s, pattern) for s in _suffixes(name))


def _inside(name: str, root: str) -> bool:
    return name == root or name.startswith(root + ".")


def _no_match(label: str, pattern: str, names: list[str]) -> InputError:
    pool = list(dict.fromkeys(names + [n.rsplit(".", 1)[-1] for n in names]))
    near = difflib.get_close_matches(pattern, pool, n=3, cutoff=0.5) or names[:3]
    return InputError(
        f"{label} pattern {pattern!r} matches no module name; near names: "
        f"{', '.join(map(repr, near))} (see model.named_modules())."
    )


def _resolve_trainable(patterns: tuple[str, ...], names: list[str]) -> list[str]:
    roots: list[str] = []
    for pattern in patterns:
        hits = [n for n in names if _matches(n, pattern)]
        if not hits:
            raise _no_match("trainable", pattern, names)
        roots.extend(hits)
    # keep only outermost roots, in model order
    unique = [n for n in names if n in set(roots)]
    return [n for n in unique if not any(r != n and _inside(n, r) for r in unique)]


def _resolve_targets(
    patterns: tuple[str, ...], modules: dict[str, nn.Module], in_trainable: set[str]
) -> list[str]:
    names = [name for name in modules if name]
    selected: set[str] = set()
    for pattern in patterns:
        hits = [n for n in names if _matches(n, pattern)]
        if not hits:
            raise _no_match("targets", pattern, names)
        found: set[str] = set()
        unsupported: list[str] = []
        for hit in hits:
            module = modules[hit]
            if isinstance(module, _SUPPORTED):
                found.add(hit)
            elif any(True for _ in module.children()):
                found.update(
                    n for n in names if _inside(n, hit) and isinstance(modules[n], _SUPPORTED)
                )
            elif not any(True for _ in module.parameters(recurse=False)) and _WILDCARDS & set(
                pattern
            ):
                continue  # parameter-free leaves (activations, dropout) under a wildcard
            else:
                unsupported.append(hit)
        if unsupported and (not found or not (_WILDCARDS & set(pattern))):
            bad = unsupported[0]
            raise InputError(
                f"target {bad!r} (matched by {pattern!r}) is a {type(modules[bad]).__name__}; "
                f"only {_SUPPORTED_NAMES} are supported, so name those layers instead."
            )
        kept = found - in_trainable
        if not kept:
            reason = "are listed in trainable" if found else "contain no supported layer"
            raise InputError(
                f"targets pattern {pattern!r} matches only modules that {reason}; "
                f"name {_SUPPORTED_NAMES} layers outside trainable."
            )
        selected |= kept
    return [n for n in names if n in selected]
