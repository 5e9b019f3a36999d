"""The weight-space stability of a zoo under fine-tuning (METHOD.md §10)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from repscope._validation import InputError
from repscope.report._style import (
    StatsRow,
    correlation_text,
    draw_fit,
    family_styles,
    scatter_by_family,
)
from repscope.report._tables import as_measures, as_models, paired, per_model, select

__all__ = ["DEPTHS", "spectral_panels"]

#: Depth bins drawn, one panel each.
DEPTHS = ("early", "middle", "late")
_LAYER = "weights"


def spectral_panels(
    measures: pd.DataFrame,
    models: pd.DataFrame,
    *,
    task: str,
    rank: int = 16,
    stats_row: Callable[[str, str], StatsRow | None] | None = None,
) -> Figure:
    """Top-r subspace overlap against r by depth, and its relation to pretraining-set size.

    Parameters
    ----------
    measures, models : pandas.DataFrame
        The run's tidy tables; ``measures`` holds the ``spectral_*`` rows of a ``[weights]``
        stage.
    task : str
        The fine-tuning task (``target`` of the rows).
    rank : int
        The r of the last panel.
    stats_row : callable, optional
        ``stats_row(x_quantity, y_quantity)``: the statistics-table row of a pair, whose
        bootstrap CI then goes in the last panel's title.

    Returns
    -------
    matplotlib.figure.Figure
        A 2 × 2 grid: early, middle and late layers (one line per model, coloured by family,
        its random baseline r/d dashed in the same colour), then the overlap at ``rank``
        against log10 pretraining-set size.

    Raises
    ------
    InputError
        No ``spectral_overlap`` rows for ``task``, or fewer than 3 models with a pretraining
        size for the last panel.
    """
    measures, models = as_measures(measures), as_models(models)
    rows = select(measures, "spectral_overlap", target=task, layer=_LAYER)
    baseline = select(measures, "spectral_baseline", target=task, layer=_LAYER)
    fig = Figure(figsize=(10.0, 7.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2).ravel()
    families = models.set_index("model")["family"].astype(str)
    styles = family_styles(sorted(set(families.reindex(rows["model"].unique()).fillna("unknown"))))
    for ax, depth in zip(axes[:3], DEPTHS, strict=True):
        _curves(ax, rows[rows["estimator"] == depth], families, styles)
        _curves(ax, baseline[baseline["estimator"] == depth], families, styles, dashed=True)
        ax.set_title(f"{depth} layers (dashed: random r/d)", fontsize="small")
        ax.set_xlabel("rank r (log scale)")
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1.02)
    for ax in (axes[0], axes[2]):
        ax.set_ylabel("top-r subspace overlap")
    axes[0].legend(fontsize="x-small", loc="lower left")
    _against_size(axes[3], measures, models, task, rank, stats_row, styles)
    fig.suptitle(f"Spectral basis under fine-tuning on {task}")
    return fig


def _curves(
    ax: Any,
    rows: pd.DataFrame,
    families: pd.Series,
    styles: dict[str, tuple[str, str]],
    *,
    dashed: bool = False,
) -> None:
    """One line per model over r, coloured by family; ``dashed``: the baselines, unlabelled."""
    seen: set[str] = set()
    for model, group in rows.groupby("model", sort=True):
        group = group.sort_values("k")
        family = str(families.get(model, "unknown"))
        color, marker = styles[family]
        label = family if family not in seen and not dashed else "_nolegend_"
        seen.add(family)
        ax.plot(
            group["k"].astype(int), group["value"], color=color,
            marker=None if dashed else marker, markersize=3, alpha=0.5 if dashed else 0.85,
            linewidth=0.8 if dashed else 1.0, linestyle="--" if dashed else "-", label=label,
        )  # fmt: skip


def _against_size(
    ax: Any,
    measures: pd.DataFrame,
    models: pd.DataFrame,
    task: str,
    rank: int,
    stats_row: Callable[[str, str], StatsRow | None] | None,
    styles: dict[str, tuple[str, str]],
) -> None:
    rows = select(measures, "spectral_overlap", target=task, layer=_LAYER, estimator="all", k=rank)
    size = models.set_index("model")["pretrain_size"].astype(float).rename("pretrain_size")
    frame = paired(size, per_model(rows, "spectral_overlap"), models)
    if (frame["x"] <= 0).any():
        raise InputError("pretraining-set sizes must be positive for a log axis.")
    scatter_by_family(ax, frame, "x", "y", styles)
    ax.set_xscale("log")
    draw_fit(ax, frame["x"].to_numpy(), frame["y"].to_numpy(), log_x=True)
    quantity = f"spectral_overlap@all@k={rank}@target={task}@layer={_LAYER}"
    row = stats_row("log10(pretrain_size)", quantity) if stats_row else None
    ax.set_title(
        correlation_text(np.log10(frame["x"].to_numpy()), frame["y"].to_numpy(), row),
        fontsize="small",
    )
    ax.set_xlabel("pretraining-set size (images, log scale)")
    ax.set_ylabel(f"overlap at r = {rank} (all layers)")
