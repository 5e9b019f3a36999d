"""The study's figures (METHOD.md §4, §8), each drawn from the tidy tables of repscope.results.

Every function takes the ``measures`` / ``models`` tables (or a statistics table from
:mod:`repscope.stats`) and returns a :class:`matplotlib.figure.Figure` on an Agg canvas;
nothing touches ``pyplot``. Categories are coloured with the Okabe–Ito palette
(:data:`OKABE_ITO`), continuous values with viridis. Data a figure needs but the tables lack
(no brain rows, an unknown measure, two rows per model) raise one-line
:class:`~repscope._validation.InputError`, so a report can skip that figure with a note.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib import colors, rc_context
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from repscope._validation import InputError
from repscope.io.atomic import atomic_write_bytes
from repscope.report._brain_figures import (
    brain_alignment_bars,
    profile_comparison,
    scale_invariance_vs_brain,
)
from repscope.report._style import (
    CONTINUOUS_CMAP,
    K_LABEL,
    MISSING_COLOR,
    OKABE_ITO,
    StatsRow,
    correlation_text,
    draw_fit,
    log_range,
    new_figure,
    png_bytes,
    scatter_by_family,
)
from repscope.report._tables import (
    as_measures,
    as_models,
    axis_label,
    check_frame,
    lid_profiles_by_model,
    model_values,
    models_only,
    paired,
    per_model,
    select,
)

__all__ = [
    "OKABE_ITO",
    "PNG_DPI",
    "brain_alignment_bars",
    "correlation_by_k",
    "lid_profiles",
    "lid_scaling",
    "lid_scatter",
    "profile_comparison",
    "save_figure",
    "scale_invariance_vs_brain",
]

#: resolution of the PNG that :func:`save_figure` writes, in dots per inch
PNG_DPI = 200
_CORRELATION_COLUMNS = ("k", "measure", "pearson_r", "pearson_ci_low", "pearson_ci_high")


def _size_column(name: str) -> str:
    if name not in ("n_params", "pretrain_size"):
        raise InputError(f"{name!r} is not a size column; pass 'n_params' or 'pretrain_size'.")
    return name


def lid_profiles(
    measures: pd.DataFrame,
    models: pd.DataFrame,
    color_by: Literal["n_params", "pretrain_size"] = "n_params",
    *,
    estimator: str | None = "mle",
    layer: str | None = None,
) -> Figure:
    """LID over K, one line per model, coloured by model or data size (log viridis).

    Parameters
    ----------
    measures, models : pandas.DataFrame
        Tidy tables (:mod:`repscope.results`); ``lid`` rows with ``k`` set are drawn.
    color_by : {"n_params", "pretrain_size"}
        Models-table column that colours the lines; unknown values are grey.
    estimator, layer : str or None
        Keep only these LID rows (None: no filter); one profile per model must remain.

    Returns
    -------
    matplotlib.figure.Figure
    """
    column = _size_column(color_by)
    measures, models = as_measures(measures), as_models(models)
    rows = select(measures, "lid", estimator=estimator, layer=layer)
    profiles = lid_profiles_by_model(models_only(rows))
    size = models.set_index("model")[column].reindex(list(profiles)).astype(float)
    known = size[np.isfinite(size) & (size > 0)]
    fig, ax = new_figure()
    mappable = None
    if len(known):
        norm = colors.LogNorm(*log_range(known.to_numpy()))
        mappable = ScalarMappable(norm=norm, cmap=CONTINUOUS_CMAP)
    for model, profile in profiles.items():
        color = mappable.to_rgba(known[model]) if model in known.index else MISSING_COLOR
        ax.plot(
            profile.index,
            profile.to_numpy(),
            color=color,
            marker="o",
            markersize=3,
            linewidth=1.2,
            label=model,
        )
    if mappable is not None:
        fig.colorbar(mappable, ax=ax, label=axis_label(column))
    if len(known) < len(profiles):
        grey = Line2D([], [], color=MISSING_COLOR, label=f"{column} unknown")
        ax.legend(handles=[grey], fontsize="small", loc="best")
    ax.set_xscale("log")
    ax.set_xlabel(K_LABEL)
    ax.set_ylabel(f"LID{f', {estimator}' if estimator else ''} (dimensions)")
    ax.set_title(f"LID profiles of {len(profiles)} models")
    return fig


def lid_scatter(
    measures: pd.DataFrame,
    models: pd.DataFrame,
    y: str = "model_alignment_mean",
    k: int = 50,
    *,
    roi: str | None = None,
    subject: str = "all",
    estimator: str | None = "mle",
    layer: str | None = None,
    stats_row: StatsRow | None = None,
) -> Figure:
    """LID at one K against alignment or accuracy, one point per model, with r and its CI.

    Parameters
    ----------
    measures, models : pandas.DataFrame
        Tidy tables (:mod:`repscope.results`).
    y : str
        A measure of ``measures`` (``model_alignment_mean``, ``brain_r2``…) or ``"accuracy"``
        from the models table.
    k : int
        Neighbourhood size of the LID rows on the x axis.
    roi, subject : str
        For brain measures (``brain_*``): the ROI and subject (``"all"``: pooled).
    estimator, layer : str or None
        Filters on the LID (and ``y``) rows; None does not filter.
    stats_row : mapping or pandas.Series, optional
        The statistics-table row for this pair; its Pearson r, bootstrap CI, p and n go in the
        title. Without it, r, p and a Fisher-z CI are computed from the plotted points.

    Returns
    -------
    matplotlib.figure.Figure
        Points coloured by family, the least-squares line dashed.
    """
    measures, models = as_measures(measures), as_models(models)
    lid = per_model(select(measures, "lid", k=k, estimator=estimator, layer=layer), "lid")
    values = model_values(measures, models, y, roi=roi, subject=subject, layer=layer)
    frame = paired(lid, values, models)
    fig, ax = new_figure()
    scatter_by_family(ax, frame, "x", "y")
    draw_fit(ax, frame["x"].to_numpy(), frame["y"].to_numpy())
    where = f", {roi}" if roi and y.startswith("brain_") else ""
    ax.set_xlabel(f"LID at K={k} (dimensions)")
    ax.set_ylabel(axis_label(y) + where)
    text = correlation_text(frame["x"].to_numpy(), frame["y"].to_numpy(), stats_row)
    ax.set_title(f"{y}{where} vs LID at K={k}\n{text}", fontsize="medium")
    return fig


def correlation_by_k(
    table: pd.DataFrame, *, title: str | None = None, y_name: str = "the target measure"
) -> Figure:
    """Pearson r across models against K, with its CI band, and global measures as lines.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``k`` (Int64; <NA> for global measures), ``measure``, ``pearson_r``,
        ``pearson_ci_low``, ``pearson_ci_high``: one correlation table of :mod:`repscope.stats`
        against one target measure. Rows with K form one curve per ``measure``; each global row
        is a dashed horizontal line.
    title : str, optional
        Figure title (default names ``y_name``).
    y_name : str
        What the dimension measures are correlated with, for the title and axis label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_frame(table, "correlation-by-K")
    missing = [c for c in _CORRELATION_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"the correlation-by-K table lacks columns {missing}.")
    if table.duplicated(["measure", "k"]).any():
        raise InputError(
            "the correlation-by-K table has two rows for one measure and K; pass the table "
            "for one target measure."
        )
    k = pd.to_numeric(table["k"], errors="coerce")
    local, glob = table[k.notna()], table[k.isna()]
    if local.empty:
        raise InputError("the correlation-by-K table has no rows with K; it needs local ones.")
    fig, ax = new_figure()
    ax.axhline(0, color="0.75", linewidth=0.8, zorder=0)
    series = sorted(local["measure"].unique()) + sorted(glob["measure"].unique())
    palette = dict(zip(series, np.resize(OKABE_ITO, len(series)), strict=True))
    for measure, part in local.groupby("measure", sort=True):
        part = part.assign(k=pd.to_numeric(part["k"])).sort_values("k")
        color = palette[measure]
        ax.fill_between(
            part["k"],
            part["pearson_ci_low"],
            part["pearson_ci_high"],
            color=color,
            alpha=0.2,
            linewidth=0,
        )
        ax.plot(part["k"], part["pearson_r"], color=color, marker="o", label=str(measure))
    for row in glob.sort_values("measure").itertuples():
        ax.axhline(
            row.pearson_r,
            color=palette[row.measure],
            linestyle="--",
            linewidth=1.2,
            label=f"{row.measure} (global)",
        )
    ax.set_xscale("log")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel(K_LABEL)
    ax.set_ylabel(f"Pearson r with {y_name} (across models)")
    ax.set_title(title or f"Correlation with {y_name} over K (band: 95 % CI)")
    ax.legend(fontsize="small", loc="best")
    return fig


def lid_scaling(
    measures: pd.DataFrame,
    models: pd.DataFrame,
    x: Literal["n_params", "pretrain_size"] = "n_params",
    k: int = 50,
    *,
    estimator: str | None = "mle",
    layer: str | None = None,
    stats_row: StatsRow | None = None,
) -> Figure:
    """LID at K against log parameter count or log pretraining-set size, with a fit line.

    Parameters
    ----------
    measures, models : pandas.DataFrame
        Tidy tables (:mod:`repscope.results`); models without a positive size are left out.
    x : {"n_params", "pretrain_size"}
        Models-table column on the (log) x axis.
    k : int
        Neighbourhood size of the LID rows.
    estimator, layer : str or None
        Filters on the LID rows.
    stats_row : mapping or pandas.Series, optional
        Statistics row (LID vs log10 size) for the title; else computed from the points.

    Returns
    -------
    matplotlib.figure.Figure
        The title gives the fitted slope, LID change per tenfold size.
    """
    column = _size_column(x)
    measures, models = as_measures(measures), as_models(models)
    lid = per_model(select(measures, "lid", k=k, estimator=estimator, layer=layer), "lid")
    size = model_values(measures, models, column)
    frame = paired(size[size > 0], lid, models)
    fig, ax = new_figure()
    scatter_by_family(ax, frame, "x", "y")
    slope = draw_fit(ax, frame["x"].to_numpy(), frame["y"].to_numpy(), log_x=True)
    ax.set_xscale("log")
    ax.set_xlabel(axis_label(column))
    ax.set_ylabel(f"LID at K={k} (dimensions)")
    text = correlation_text(np.log10(frame["x"].to_numpy()), frame["y"].to_numpy(), stats_row)
    ax.set_title(
        f"LID at K={k} vs log10 {column}: {slope:+.2f} dimensions per tenfold\n{text}",
        fontsize="medium",
    )
    return fig


def save_figure(fig: Figure, stem: str | Path, *, dpi: int = PNG_DPI) -> tuple[Path, Path]:
    """Write ``fig`` as ``stem.png`` (at ``dpi``) and ``stem.svg``, each atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    stem : str or path-like
        Output path without suffix; its folder is created if missing.
    dpi : int
        PNG resolution in dots per inch (default :data:`PNG_DPI`).

    Returns
    -------
    (png_path, svg_path) : tuple of pathlib.Path
    """
    if not isinstance(fig, Figure):
        raise InputError(f"fig must be a matplotlib Figure, got {type(fig).__name__}.")
    png, svg = Path(f"{stem}.png"), Path(f"{stem}.svg")
    atomic_write_bytes(png, png_bytes(fig, dpi=dpi))
    buffer = io.BytesIO()
    # no date, and element ids salted by a constant instead of a random uuid (rc_context
    # restores the setting): the same figure drawn again gives the same bytes
    with rc_context({"svg.hashsalt": "repscope"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    atomic_write_bytes(svg, buffer.getvalue())
    return png, svg
