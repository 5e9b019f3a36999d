"""Whether fine-tunes of one base on different tasks reuse the same directions (METHOD.md §10).

For each layer and each fine-tune a, the update ΔW_a = W_a − W has leading left and right
singular subspaces P_a, Q_a of rank r. The scores are overlaps ‖P_aᵀ P_b‖_F² / r between the
updates of two tasks, and ‖P_aᵀ U_r‖_F² / r between an update and the base's own top-r basis
(right: Q and V_r likewise). Each score sits beside its random baseline r/d and a null from
random orthogonal rotations: rotating one of the two subspaces by a Haar-random rotation R of
R^d. ‖P_aᵀ R P_b‖_F² has the same law for every fixed pair of r-frames, that of the overlap
of the first r axes with a Haar-random r-frame, which is drawn exactly in O(r³) per rotation
(:func:`_null_overlaps`; the tests check it against explicit rotations from
``scipy.stats.ortho_group``). The p-value is (1 + #{null ≥ observed}) / (1 + n_null),
one-sided. The summary's null draws one rotation per layer per draw and averages over layers,
as the observed summary does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repscope._backend import Device, resolve_device
from repscope._validation import InputError, check_random_state
from repscope.weightspace._pairing import LayerPair, pair_layers
from repscope.weightspace._sources import ResolvedWeights, resolve_weights
from repscope.weightspace._svd import EXACT_MAX, svd_threads, top_svd
from repscope.weightspace.matrices import MIN_DIM
from repscope.weightspace.stability import SUMMARY_RANK, _records, check_ranks, warn_capped

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import torch

__all__ = ["SpectralSharing", "spectral_sharing"]

BASE = "base"
_SIDES = ("left", "right")


@dataclass(frozen=True)
class SpectralSharing:
    """Overlaps of fine-tuning updates across tasks and with the base basis.

    Attributes
    ----------
    base : str
    tuned : tuple of str
        Labels of the fine-tunes (made unique).
    rank : int
        The requested r (capped per layer at the smaller dimension).
    n_null : int
    seed : int
    layers : pandas.DataFrame
        One row per (layer, a, b, side): ``layer, kind, position, depth, a, b, side, r, dim,
        overlap, baseline, null_mean, p_value``; ``b`` is ``"base"`` for the overlap with
        the base's top-r basis; ``dim`` the side's dimension d, ``baseline`` = r / d.
    summary : pandas.DataFrame
        One row per (a, b, side): ``a, b, side, n_layers, overlap, baseline, null_mean,
        p_value``, means over layers and the null of that mean.
    skipped : tuple of (str, str)
    """

    base: str
    tuned: tuple[str, ...]
    rank: int
    n_null: int
    seed: int
    layers: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    skipped: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: labels, settings, the summary and every layer row."""
        return {
            "base": self.base,
            "tuned": list(self.tuned),
            "rank": self.rank,
            "n_null": self.n_null,
            "seed": self.seed,
            "summary": _records(self.summary),
            "layers": _records(self.layers),
            "skipped": [list(s) for s in self.skipped],
        }


def spectral_sharing(
    base: Any,
    tuned: Sequence[Any],
    rank: int = SUMMARY_RANK,
    *,
    labels: Sequence[str] | None = None,
    n_null: int = 1000,
    seed: int = 0,
    min_dim: int = MIN_DIM,
    exclude: Sequence[str] = (),
    device: Device = "auto",
    exact_max: int = EXACT_MAX,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SpectralSharing:
    """Overlap of the updates' leading subspaces across fine-tunes and with the base basis.

    Parameters
    ----------
    base : str, path-like, torch.nn.Module, mapping or loaded model
        The pretrained model (accepted forms as in
        :func:`~repscope.weightspace.spectral_stability`).
    tuned : sequence
        Fine-tunes of ``base`` (one or more; pairs need two).
    rank : int
        r of the leading subspaces, capped per layer at the smaller dimension.
    labels : sequence of str, optional
        Names of the fine-tunes in the tables; default their specs or file names.
    n_null : int
        Random rotations per layer for the null.
    seed : int
        Seeds the rotations.
    min_dim, exclude, device, exact_max, cache_dir
        As in :func:`~repscope.weightspace.spectral_stability`.

    Returns
    -------
    SpectralSharing

    Raises
    ------
    InputError
        No fine-tune, architectures that differ, non-finite weights, bad rank or n_null.
    """
    import pandas as pd

    (r_req,) = check_ranks(rank)
    if isinstance(n_null, bool) or not isinstance(n_null, int) or n_null < 1:
        raise InputError(f"n_null={n_null!r} must be a positive integer, e.g. 1000.")
    if isinstance(tuned, (str, os.PathLike)) or len(tuned) == 0:
        raise InputError("tuned must be a list of one or more fine-tuned models of base.")
    dev = resolve_device(device)
    resolved_base = resolve_weights(base, cache_dir=cache_dir)
    resolved = [resolve_weights(t, cache_dir=cache_dir) for t in tuned]
    names = _labels(labels, resolved)
    pairs = [
        pair_layers(resolved_base, t, device=dev, min_dim=min_dim, exclude=exclude)
        for t in resolved
    ]
    common = _common_layers([p.layers for p in pairs])
    skipped = list(pairs[0].skipped)
    warn_capped(common[0], r_req)
    rng = check_random_state(seed)
    rows: list[dict[str, Any]] = []
    draws: dict[tuple[str, str, str], list[Any]] = {}
    with svd_threads(dev):
        for per_model in zip(*common, strict=True):
            layer_rows, layer_draws, dropped = _layer_sharing(
                per_model, names, r_req, n_null, rng, exact_max
            )
            rows += layer_rows
            skipped += dropped
            for key, null in layer_draws.items():
                draws.setdefault(key, []).append(null)
    layers = pd.DataFrame(rows)
    return SpectralSharing(
        base=resolved_base.label,
        tuned=tuple(names),
        rank=r_req,
        n_null=n_null,
        seed=seed,
        layers=layers,
        summary=_summary(layers, draws),
        skipped=tuple(skipped),
    )


def _labels(labels: Sequence[str] | None, resolved: list[ResolvedWeights]) -> list[str]:
    if labels is not None:
        if len(labels) != len(resolved) or len(set(labels)) != len(labels):
            raise InputError(
                f"labels must be {len(resolved)} distinct names, one per fine-tune; got "
                f"{list(labels)!r}."
            )
        return [str(x) for x in labels]
    names: list[str] = []
    for r in resolved:
        name = r.label if r.label not in names and r.label != BASE else f"{r.label}#{len(names)}"
        names.append(name)
    return names


def _common_layers(per_pair: list[list[LayerPair]]) -> list[list[LayerPair]]:
    """Each pair's layers restricted to the names all pairs share, in the first pair's order."""
    shared = set.intersection(*({layer.name for layer in layers} for layers in per_pair))
    return [[layer for layer in layers if layer.name in shared] for layers in per_pair]


def _layer_sharing(
    per_model: tuple[LayerPair, ...],
    names: list[str],
    r_req: int,
    n_null: int,
    rng: np.random.Generator,
    exact_max: int,
) -> tuple[list[dict[str, Any]], dict[tuple[str, str, str], Any], list[tuple[str, str]]]:
    first = per_model[0]
    W = first.base
    r = min(r_req, *W.shape)
    base_svd = top_svd(W, r, exact_max=exact_max)
    frames: dict[str, tuple[torch.Tensor, torch.Tensor]] = {BASE: (base_svd.U, base_svd.V)}
    dropped = []
    for name, pair in zip(names, per_model, strict=True):
        delta = pair.tuned - W
        if not bool(delta.any()):
            dropped.append((pair.name, f"unchanged in {name}"))
            continue
        update = top_svd(delta, r, exact_max=exact_max)
        frames[name] = (update.U, update.V)
    nulls = {d: _null_overlaps(d, r, n_null, rng) for d in sorted(set(W.shape))}
    tuned = [n for n in names if n in frames]
    comparisons = [(a, b) for i, a in enumerate(tuned) for b in tuned[i + 1 :]]
    comparisons += [(a, BASE) for a in tuned]
    rows, draws = [], {}
    for a, b in comparisons:
        for side, index in zip(_SIDES, (0, 1), strict=True):
            fa, fb = frames[a][index], frames[b][index]
            dim = fa.shape[0]
            overlap = float((fa.T @ fb).square().sum()) / r
            null = nulls[dim]
            draws[(a, b, side)] = null
            rows.append(
                {
                    "layer": first.name,
                    "kind": first.kind,
                    "position": first.position,
                    "depth": first.depth,
                    "a": a,
                    "b": b,
                    "side": side,
                    "r": r,
                    "dim": dim,
                    "overlap": overlap,
                    "baseline": r / dim,
                    "null_mean": float(null.mean()),
                    "p_value": _p_value(overlap, null),
                }
            )
    return rows, draws, dropped


def _null_overlaps(dim: int, r: int, n_null: int, rng: np.random.Generator) -> np.ndarray:
    """‖E_rᵀ Q‖_F² / r for ``n_null`` Haar-random r-frames Q of R^dim (E_r: first r axes).

    With Q the orthonormalised Gaussian G = [X; Y] (X its first r rows), the score equals
    tr(A (A + B)⁻¹) / r with A = XᵀX ~ W_r(r, I) and B = YᵀY ~ W_r(dim − r, I). B is drawn by
    Bartlett's decomposition when dim − r ≥ r, so a draw costs O(r³) whatever ``dim``.
    """
    import numpy as np

    if dim == r:  # the frame spans the whole space
        return np.ones(n_null)
    x = rng.standard_normal((n_null, r, r))
    a = np.einsum("nij,nik->njk", x, x)
    df = dim - r
    if df >= r:
        lower = np.tril(rng.standard_normal((n_null, r, r)), k=-1)
        diagonal = np.sqrt(rng.chisquare(df - np.arange(r), size=(n_null, r)))
        lower[:, np.arange(r), np.arange(r)] = diagonal
        b = lower @ lower.transpose(0, 2, 1)
    else:
        y = rng.standard_normal((n_null, df, r))
        b = np.einsum("nij,nik->njk", y, y)
    return np.trace(np.linalg.solve(a + b, a), axis1=1, axis2=2) / r


def _p_value(observed: float, null: np.ndarray) -> float:
    return float((1 + (null >= observed).sum()) / (1 + len(null)))


def _summary(layers: pd.DataFrame, draws: dict[tuple[str, str, str], list[Any]]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rows = []
    for (a, b, side), group in layers.groupby(["a", "b", "side"], sort=False):
        null = np.mean(np.stack(draws[(a, b, side)]), axis=0)
        overlap = float(group["overlap"].mean())
        rows.append(
            {
                "a": a,
                "b": b,
                "side": side,
                "n_layers": len(group),
                "overlap": overlap,
                "baseline": float(group["baseline"].mean()),
                "null_mean": float(null.mean()),
                "p_value": _p_value(overlap, null),
            }
        )
    return pd.DataFrame(rows)
