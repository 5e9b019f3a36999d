"""How much of a pretrained spectral basis survives fine-tuning (METHOD.md §10).

For every weight matrix W → W′ of two checkpoints of one architecture (W = U Σ Vᵀ, singular
values descending) and every rank r:

- **index-wise alignment** |⟨u_i, u′_i⟩| and |⟨v_i, v′_i⟩| for i ≤ r, only where u_i is well
  defined: its relative gap min(σ_{i−1} − σ_i, σ_i − σ_{i+1}) / σ_i in the base exceeds
  ``gap_tol`` (default 0.01). Near-equal singular values make single vectors arbitrary within
  their span (Davis–Kahan), so pairing them by index would report noise;
- **subspace overlap** ‖U_rᵀ U′_r‖_F² / r (left; right likewise with V), the mean squared cosine
  of the principal angles: 1 for the same subspace, r/d in expectation for a random one;
- **update share** ‖U_rU_rᵀ ΔW V_rV_rᵀ‖_F² / ‖ΔW‖_F², ΔW = W′ − W: the part of the update
  inside the pretrained top-r subspaces. A zero update (an unchanged layer) lies in every
  subspace, so its share is 1; ``update_norm`` = 0 and ``changed`` = False say so;
- **singular-value change** ‖σ′_{1:r} − σ_{1:r}‖₂ / ‖σ_{1:r}‖₂.

r is capped per layer at the matrix's smaller dimension (one warning per call). Rows where r
reaches the smaller dimension stay in :attr:`SpectralStability.layers` but not in the
summaries: there the top-r subspace on that side is the whole space and scores a trivial 1.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repscope._backend import Device, resolve_device
from repscope._validation import InputError
from repscope.weightspace._pairing import LayerPair, load_pair
from repscope.weightspace._svd import EXACT_MAX, svd_threads, top_svd
from repscope.weightspace.matrices import MIN_DIM

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

__all__ = [
    "DEFAULT_RANKS",
    "GAP_TOL",
    "SUMMARY_RANK",
    "SpectralStability",
    "check_ranks",
    "depth_bins",
    "spectral_stability",
]

DEFAULT_RANKS = (1, 2, 4, 8, 16, 32, 64)
SUMMARY_RANK = 16
#: Relative singular-value gap above which a single singular vector counts as well defined.
GAP_TOL = 0.01
_DEPTH_NAMES = {1: ("all",), 2: ("early", "late"), 3: ("early", "middle", "late")}
_MEANS = (
    "overlap_left",
    "overlap_right",
    "baseline_left",
    "baseline_right",
    "update_share",
    "sigma_change",
)


@dataclass(frozen=True)
class SpectralStability:
    """Stability of a base model's spectral basis under fine-tuning, per layer and rank.

    Attributes
    ----------
    base, tuned : str
        Labels of the two models (spec, file name or class name).
    ranks : tuple of int
        The requested ranks r.
    gap_tol : float
    layers : pandas.DataFrame
        One row per (layer, rank): ``layer, kind, position, depth, shape, out_dim, in_dim,
        rank, r, capped, overlap_left, overlap_right, baseline_left, baseline_right,
        update_share, sigma_change, index_alignment_left, index_alignment_right,
        n_well_defined, update_norm, changed, svd, svd_residual``. ``rank`` is the requested
        r, ``r`` the one used (capped at min(out, in)); ``baseline_*`` = r / out and r / in;
        ``index_alignment_*`` the mean over the well-defined i ≤ r (NaN where none is);
        ``update_norm`` = ‖ΔW‖_F / ‖W‖_F; ``svd_residual`` the factorisations' measured error.
    indices : pandas.DataFrame
        One row per (layer, i ≤ max r): ``layer, position, depth, index, sigma_base,
        sigma_tuned, relative_gap, well_defined, alignment_left, alignment_right``.
    skipped : tuple of (str, str)
        Tensors left out and why (small, head, excluded, embedding).
    device : str
    """

    base: str
    tuned: str
    ranks: tuple[int, ...]
    gap_tol: float
    layers: pd.DataFrame = field(repr=False)
    indices: pd.DataFrame = field(repr=False)
    skipped: tuple[tuple[str, str], ...]
    device: str

    def summary(self, r: int = SUMMARY_RANK) -> dict[str, Any]:
        """Means over the layers at rank ``r`` (those with r below both dimensions).

        Returns
        -------
        dict
            ``rank, n_layers, n_changed, overlap`` (mean of left and right), ``overlap_left,
            overlap_right, baseline_left, baseline_right, update_share`` (changed layers; 1.0
            when none changed), ``sigma_change, update_norm, index_alignment`` (mean of the
            well-defined index-wise values, left and right pooled; None where none is).
        """
        rows = _at_rank(self.layers, r)
        changed = rows[rows["changed"]]
        pooled = [v for c in ("left", "right") for v in _defined(self.indices, rows, c)]
        out: dict[str, Any] = {"rank": r, "n_layers": len(rows), "n_changed": len(changed)}
        out["overlap"] = float((rows["overlap_left"] + rows["overlap_right"]).mean() / 2)
        for column in _MEANS:
            source = changed if column == "update_share" else rows
            out[column] = float(source[column].mean()) if len(source) else 1.0
        out["update_norm"] = float(rows["update_norm"].mean())
        out["index_alignment"] = float(sum(pooled) / len(pooled)) if pooled else None
        return out

    def by_depth(self, r: int | None = SUMMARY_RANK, bins: int = 3) -> pd.DataFrame:
        """Means by depth bin (``early/middle/late`` for 3 bins), at rank ``r`` or every rank.

        Returns
        -------
        pandas.DataFrame
            Columns ``depth_bin, rank, n_layers`` and the means of ``overlap_left,
            overlap_right, baseline_left, baseline_right, update_share, sigma_change``.
        """
        rows = _informative(self.layers) if r is None else _at_rank(self.layers, r)
        rows = rows.assign(depth_bin=depth_bins(rows["depth"], bins))
        grouped = rows.groupby(["depth_bin", "rank"], observed=True, sort=True)
        table = grouped[list(_MEANS)].mean()
        table.insert(0, "n_layers", grouped.size())
        return table.reset_index()

    def to_dict(self, r: int = SUMMARY_RANK) -> dict[str, Any]:
        """JSON-able: labels, ranks, the summary and depth table at ``r``, every layer row."""
        return {
            "base": self.base,
            "tuned": self.tuned,
            "ranks": list(self.ranks),
            "gap_tol": self.gap_tol,
            "device": self.device,
            "summary": self.summary(r),
            "by_depth": _records(self.by_depth(r)),
            "layers": _records(self.layers),
            "skipped": [list(s) for s in self.skipped],
        }


def spectral_stability(
    base: Any,
    tuned: Any,
    ranks: Sequence[int] = DEFAULT_RANKS,
    *,
    gap_tol: float = GAP_TOL,
    min_dim: int = MIN_DIM,
    exclude: Sequence[str] = (),
    device: Device = "auto",
    exact_max: int = EXACT_MAX,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SpectralStability:
    """Compare the spectral bases of every weight matrix of ``base`` and ``tuned``.

    Parameters
    ----------
    base, tuned : str, path-like, torch.nn.Module, mapping or loaded model
        Two checkpoints of one architecture: model specs (``"torchvision:mobilenet_v2"``,
        ``"minizoo:NAME"``, ``"finetuned:NAME"``), modules, state dicts, or ``.safetensors`` /
        ``.pt`` files (read with ``weights_only=True``). A replaced classification head (the
        last layer, output size changed) is skipped and listed.
    ranks : sequence of int
        Ranks r (positive); each is capped per layer at min(out, in).
    gap_tol : float
        Relative singular-value gap above which index-wise alignment is reported.
    min_dim : int
        Layers whose matrix has a smaller dimension below this are skipped (default 8).
    exclude : sequence of str
        ``fnmatch`` patterns of layer names to leave out, e.g. ``["classifier.*"]``.
    device : {"auto", "cpu", "cuda"} or str
        Where the SVDs run (float64).
    exact_max : int
        Matrices with a smaller dimension above this use a randomized SVD (error measured and
        reported in ``svd_residual``).
    cache_dir : path-like, optional
        Cache root for zoo and fine-tuned model specs.

    Returns
    -------
    SpectralStability

    Raises
    ------
    InputError
        Architectures that differ (first mismatched layer and both shapes), non-finite
        weights, a checkpoint that pickles arbitrary objects, invalid ranks.

    Examples
    --------
    >>> import torch
    >>> from repscope.weightspace import spectral_stability
    >>> _ = torch.manual_seed(0)
    >>> nn = torch.nn
    >>> base = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 16))
    >>> result = spectral_stability(base, base, ranks=(1, 4))
    >>> summary = result.summary(4)
    >>> round(summary["overlap"], 12), summary["n_changed"], summary["update_share"]
    (1.0, 0, 1.0)
    """
    ranks_checked = check_ranks(ranks)
    if not (isinstance(gap_tol, (int, float)) and 0 <= gap_tol < 1):
        raise InputError(f"gap_tol={gap_tol!r} must be a number in [0, 1); the default is 0.01.")
    dev = resolve_device(device)
    a, b, paired = load_pair(
        base, tuned, device=dev, min_dim=min_dim, exclude=exclude, cache_dir=cache_dir
    )
    rows: list[dict[str, Any]] = []
    index_rows: list[dict[str, Any]] = []
    with svd_threads(dev):
        for layer in paired.layers:
            layer_rows, layer_indices = _layer_scores(layer, ranks_checked, gap_tol, exact_max)
            rows += layer_rows
            index_rows += layer_indices
    warn_capped(paired.layers, max(ranks_checked))
    import pandas as pd

    return SpectralStability(
        base=a.label,
        tuned=b.label,
        ranks=ranks_checked,
        gap_tol=float(gap_tol),
        layers=pd.DataFrame(rows),
        indices=pd.DataFrame(index_rows),
        skipped=tuple(paired.skipped),
        device=str(dev),
    )


def check_ranks(ranks: Sequence[int] | int) -> tuple[int, ...]:
    """Sorted unique positive integer ranks, or InputError."""
    if isinstance(ranks, int) and not isinstance(ranks, bool):
        ranks = (ranks,)
    try:
        values = sorted({int(r) for r in ranks if not isinstance(r, bool) and int(r) == r})
        valid = len(values) == len(set(ranks)) and values and values[0] >= 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise InputError(
            f"ranks={ranks!r} must be positive integers, e.g. (1, 2, 4, 8, 16, 32, 64)."
        )
    return tuple(values)


def warn_capped(layers: Sequence[LayerPair], top: int) -> None:
    """One warning for every layer whose smaller dimension is below the largest rank."""
    capped = [
        (min(layer.base.shape), layer.name) for layer in layers if min(layer.base.shape) < top
    ]
    if capped:
        smallest, name = min(capped)
        warnings.warn(
            f"rank {top} exceeds the smaller dimension of {len(capped)} of {len(layers)} layers "
            f"(smallest: {name}, {smallest}); capped per layer and left out of the summaries "
            "at that rank.",
            UserWarning,
            stacklevel=3,
        )


def depth_bins(depth: Any, bins: int) -> Any:
    """Depths in [0, 1] → ordered categories (``early/middle/late`` for 3 bins)."""
    import pandas as pd

    if not (isinstance(bins, int) and bins >= 1):
        raise InputError(f"bins={bins!r} must be a positive integer, e.g. 3.")
    names = _DEPTH_NAMES.get(bins, tuple(f"depth {i + 1}/{bins}" for i in range(bins)))
    edges = [i / bins for i in range(bins + 1)]
    edges[0] = -1e-9
    return pd.cut(depth, edges, labels=list(names), include_lowest=True)


def _layer_scores(
    layer: LayerPair, ranks: tuple[int, ...], gap_tol: float, exact_max: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import torch

    W, W2 = layer.base, layer.tuned
    out_dim, in_dim = W.shape
    top = min(max(ranks), out_dim, in_dim)
    sb = top_svd(W, top + 1, exact_max=exact_max)
    st = top_svd(W2, top + 1, exact_max=exact_max)
    delta = W2 - W
    delta_sq = float(torch.linalg.matrix_norm(delta) ** 2)
    cross_u = (sb.U[:, :top].T @ st.U[:, :top]).square()
    cross_v = (sb.V[:, :top].T @ st.V[:, :top]).square()
    inside = (sb.U[:, :top].T @ delta @ sb.V[:, :top]).square()
    gaps = _relative_gaps(sb.S, top)
    align_u = cross_u.diagonal().sqrt()
    align_v = cross_v.diagonal().sqrt()
    common = {
        "layer": layer.name,
        "kind": layer.kind,
        "position": layer.position,
        "depth": layer.depth,
        "shape": "×".join(str(s) for s in layer.shape),
        "out_dim": out_dim,
        "in_dim": in_dim,
    }
    rows = []
    for rank in ranks:
        r = min(rank, out_dim, in_dim)
        defined = gaps[:r] > gap_tol
        rows.append(
            {
                **common,
                "rank": rank,
                "r": r,
                "capped": r < rank,
                "overlap_left": float(cross_u[:r, :r].sum()) / r,
                "overlap_right": float(cross_v[:r, :r].sum()) / r,
                "baseline_left": r / out_dim,
                "baseline_right": r / in_dim,
                "update_share": float(inside[:r, :r].sum()) / delta_sq if delta_sq else 1.0,
                "sigma_change": _relative_change(sb.S[:r], st.S[:r]),
                "index_alignment_left": _mean_where(align_u[:r], defined),
                "index_alignment_right": _mean_where(align_v[:r], defined),
                "n_well_defined": int(defined.sum()),
                "update_norm": math.sqrt(delta_sq) / float(torch.linalg.matrix_norm(W)),
                "changed": delta_sq > 0,
                "svd": sb.method if sb.method == st.method else "mixed",
                "svd_residual": max(sb.residual, st.residual),
            }
        )
    indices = [
        {
            "layer": layer.name,
            "position": layer.position,
            "depth": layer.depth,
            "index": i + 1,
            "sigma_base": float(sb.S[i]),
            "sigma_tuned": float(st.S[i]),
            "relative_gap": float(gaps[i]),
            "well_defined": bool(gaps[i] > gap_tol),
            "alignment_left": float(align_u[i]),
            "alignment_right": float(align_v[i]),
        }
        for i in range(top)
    ]
    return rows, indices


def _relative_gaps(S: torch.Tensor, top: int) -> torch.Tensor:
    """min(σ_{i−1} − σ_i, σ_i − σ_{i+1}) / σ_i for i < top; a missing neighbour does not count."""
    import torch

    inf = torch.tensor([math.inf], dtype=S.dtype, device=S.device)
    upper = torch.cat([inf, S[:-1] - S[1:]])[:top]
    lower = torch.cat([S[:-1] - S[1:], inf])[:top]
    gap = torch.minimum(upper, lower)
    return torch.where(S[:top] > 0, gap / S[:top], torch.zeros_like(gap)).cpu()


def _relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    import torch

    return float(torch.linalg.vector_norm(after - before) / torch.linalg.vector_norm(before))


def _mean_where(values: torch.Tensor, mask: torch.Tensor) -> float:
    chosen = values.cpu()[mask]
    return float(chosen.mean()) if len(chosen) else math.nan


def _at_rank(layers: pd.DataFrame, r: int) -> pd.DataFrame:
    if r not in set(layers["rank"]):
        raise InputError(
            f"rank {r} was not computed; pass one of {sorted(set(layers['rank']))} or add it "
            "to ranks."
        )
    rows = _informative(layers)
    rows = rows[rows["rank"] == r]
    if rows.empty:
        raise InputError(
            f"no layer has both dimensions above rank {r}; ask for the summary at a smaller rank."
        )
    return rows


def _informative(layers: pd.DataFrame) -> pd.DataFrame:
    """Rows whose rank is below both dimensions (r = d scores a trivial 1)."""
    return layers[layers["rank"] < layers[["out_dim", "in_dim"]].min(axis=1)]


def _defined(indices: pd.DataFrame, rows: pd.DataFrame, side: str) -> list[float]:
    """Well-defined index-wise alignments of the layers in ``rows``, indices ≤ each row's r."""
    r = int(rows["r"].iloc[0])
    chosen = indices[
        indices["layer"].isin(rows["layer"]) & indices["well_defined"] & (indices["index"] <= r)
    ]
    return [float(v) for v in chosen[f"alignment_{side}"]]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, NaN as None (JSON has no NaN)."""
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [{str(k): _plain(v) for k, v in row.items()} for row in records]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value) if not isinstance(value, (str, int, float, bool, type(None))) else value
