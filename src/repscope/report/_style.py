"""Shared figure style: the colour-blind-safe palette, new Agg figures, scatter and fit helpers.

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas attached, never
through ``pyplot``, so no figure is registered in global state and nothing needs closing.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats as sps

from repscope._validation import InputError

__all__ = [
    "CONTINUOUS_CMAP",
    "K_LABEL",
    "MISSING_COLOR",
    "OKABE_ITO",
    "STATS_ROW_KEYS",
    "StatsRow",
    "correlation_text",
    "draw_fit",
    "family_styles",
    "log_range",
    "new_figure",
    "png_bytes",
    "scatter_by_family",
]

#: Okabe & Ito (2008) colour-blind-safe palette, ordered for categories on white (yellow last:
#: it has the least contrast against a white background)
OKABE_ITO: tuple[str, ...] = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
    "#F0E442",  # yellow
)
#: perceptually uniform colour map for continuous values (model size, data size)
CONTINUOUS_CMAP = "viridis"
#: x-axis label of every plot over K
K_LABEL = "neighbourhood size K (points, log scale)"
#: grey for a model whose continuous colour value is unknown
MISSING_COLOR = "#999999"
#: marker shapes, cycled after the eight colours so a ninth family still differs
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: a statistics-table row (repscope.stats) as a mapping or a pandas row
StatsRow = Mapping[str, Any] | pd.Series
#: keys a statistics row must hold to be written on a figure
STATS_ROW_KEYS = ("pearson_r", "pearson_ci_low", "pearson_ci_high", "pearson_p", "n_models")


def new_figure(width: float = 6.4, height: float = 4.4) -> tuple[Figure, Axes]:
    """A constrained-layout figure (inches) on an Agg canvas, with one axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def png_bytes(fig: Figure, *, dpi: int) -> bytes:
    """The figure rendered as PNG at ``dpi`` dots per inch."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def family_styles(families: list[str]) -> dict[str, tuple[str, str]]:
    """``{family: (colour, marker)}``: Okabe–Ito colours in sorted family order, then markers."""
    n = len(OKABE_ITO)
    return {
        family: (OKABE_ITO[i % n], _MARKERS[(i // n) % len(_MARKERS)])
        for i, family in enumerate(sorted(families))
    }


def scatter_by_family(
    ax: Axes,
    frame: pd.DataFrame,
    x: str,
    y: str,
    styles: dict[str, tuple[str, str]] | None = None,
) -> None:
    """One scatter per family (column ``family`` of ``frame``), coloured and labelled.

    ``styles`` (:func:`family_styles` of a larger set) keeps colours equal across panels.
    """
    present = set(frame["family"])
    if styles is None:
        styles = family_styles(sorted(present))
    styles = {family: style for family, style in styles.items() if family in present}
    for family, (color, marker) in styles.items():
        part = frame[frame["family"] == family]
        ax.scatter(
            part[x], part[y], color=color, marker=marker, s=36, edgecolor="white",
            linewidth=0.5, label=str(family), zorder=3,
        )  # fmt: skip
    ax.legend(title="family", fontsize="small", title_fontsize="small", loc="best")


def draw_fit(ax: Axes, x: np.ndarray, y: np.ndarray, *, log_x: bool = False) -> float:
    """Draw the least-squares line of ``y`` on ``x`` (on log10 x if ``log_x``); return the slope."""
    u = np.log10(x) if log_x else np.asarray(x, dtype=float)
    slope, intercept = np.polyfit(u, y, 1)
    grid = np.linspace(u.min(), u.max(), 50)
    ax.plot(
        10**grid if log_x else grid, intercept + slope * grid, color="black",
        linestyle="--", linewidth=1, label="_fit", zorder=2,
    )  # fmt: skip
    return float(slope)


def _stats_row_values(row: StatsRow) -> dict[str, float]:
    missing = [key for key in STATS_ROW_KEYS if key not in row]
    if missing:
        raise InputError(
            f"stats_row lacks {missing}; pass a row of the statistics table "
            f"(columns {', '.join(STATS_ROW_KEYS)})."
        )
    return {key: np.nan if pd.isna(row[key]) else float(row[key]) for key in STATS_ROW_KEYS}


def _p(p: float) -> str:
    # "p = 0" would claim certainty; below the shown digits say so
    if np.isnan(p):
        return "p undefined"
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 0.0001"


def correlation_text(x: np.ndarray, y: np.ndarray, stats_row: StatsRow | None) -> str:
    """``Pearson r = … (95 % CI …), p = …, n = …``: from ``stats_row`` (bootstrap CI) if given.

    Without a row, r, its p-value and a Fisher-z 95 % CI are computed from the plotted points.
    """
    if stats_row is not None:
        v = _stats_row_values(stats_row)
        low, high = v["pearson_ci_low"], v["pearson_ci_high"]
        # the bootstrap CI is NaN when every resample gives |r| = 1
        ci = "95 % CI undefined" if np.isnan(low + high) else f"95 % CI {low:.2f} to {high:.2f}"
        n = "?" if np.isnan(v["n_models"]) else int(v["n_models"])
        return f"Pearson r = {v['pearson_r']:.2f} ({ci}), {_p(v['pearson_p'])}, n = {n}"
    n = len(x)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return f"Pearson r undefined (constant values), n = {n}"
    result = sps.pearsonr(x, y)
    text = f"Pearson r = {result.statistic:.2f}"
    if n > 3 and abs(result.statistic) < 1:
        ci = result.confidence_interval(0.95)
        text += f" (Fisher-z 95 % CI {ci.low:.2f} to {ci.high:.2f})"
    return f"{text}, {_p(result.pvalue)}, n = {n}"


def log_range(values: np.ndarray) -> tuple[float, float]:
    """Positive ``(vmin, vmax)`` for a log colour scale; one value widens to half a decade."""
    vmin, vmax = float(values.min()), float(values.max())
    if math.isclose(vmin, vmax):
        return vmin / math.sqrt(10), vmax * math.sqrt(10)
    return vmin, vmax
