"""The brain figures: alignment per ROI and subject, model vs ROI profiles, scale invariance.

Re-exported by :mod:`repscope.report.figures`; same conventions (tidy tables in, an Agg
:class:`~matplotlib.figure.Figure` out, one-line :class:`~repscope._validation.InputError` when
the tables lack the brain rows a figure needs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from repscope._validation import InputError
from repscope.report._style import (
    K_LABEL,
    OKABE_ITO,
    StatsRow,
    correlation_text,
    draw_fit,
    new_figure,
    scatter_by_family,
)
from repscope.report._tables import (
    as_measures,
    as_models,
    axis_label,
    lid_profiles_by_model,
    model_values,
    models_only,
    paired,
    per_model,
    select,
)

__all__ = [
    "brain_alignment_bars",
    "profile_comparison",
    "scale_invariance_vs_brain",
    "subject_roi_means",
]


def subject_roi_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over models per ROI × subject: individual subjects, or the pooled rows if none."""
    single = rows[rows["subject"] != "all"]
    rows = single if not single.empty else rows
    table = rows.groupby(["roi", "subject"], sort=False)["value"].mean().unstack("subject")
    # subjects "1" … "10" in numeric order
    ordered = sorted(table.columns, key=lambda s: (len(str(s)), str(s)))
    return table[ordered]


def brain_alignment_bars(
    measures: pd.DataFrame,
    *,
    measure: str = "brain_r2",
    model: str | None = None,
    layer: str | None = None,
) -> Figure:
    """Brain alignment per ROI and subject: grouped bars, and the mean ± sd over subjects.

    Parameters
    ----------
    measures : pandas.DataFrame
        Tidy ``measures`` table with brain rows (``brain_r2``…, per ROI and subject).
    measure : str
        Which brain measure to draw.
    model : str, optional
        One model; by default each bar is the mean over all models (named in the title).
    layer : str, optional
        Keep only this layer's rows.

    Returns
    -------
    matplotlib.figure.Figure
        Per ROI one bar per subject (Okabe–Ito colour per subject) and a black diamond with
        error bar: the mean ± sd over subjects (no bar of the pooled ``"all"`` rows when
        individual subjects exist).
    """
    if not measure.startswith("brain_"):
        raise InputError(f"measure={measure!r} is not a brain measure; pass e.g. 'brain_r2'.")
    measures = as_measures(measures)
    rows = select(measures, measure, model=model, layer=layer)
    rows = models_only(rows)
    table = subject_roi_means(rows)
    n_roi, n_subject = table.shape
    width = 0.8 / n_subject
    fig, ax = new_figure(width=max(6.4, 0.25 * n_roi * n_subject + 2), height=4.4)
    centers = np.arange(n_roi)
    for j, subject in enumerate(table.columns):
        offset = (j - (n_subject - 1) / 2) * width
        ax.bar(
            centers + offset,
            table[subject],
            width=width,
            label=f"subject {subject}",
            color=OKABE_ITO[j % len(OKABE_ITO)],
            edgecolor="white",
            linewidth=0.5,
        )
    if n_subject > 1:
        ax.errorbar(
            centers,
            table.mean(axis=1),
            yerr=table.std(axis=1, ddof=1),
            fmt="D",
            color="black",
            capsize=4,
            label="mean ± sd over subjects",
        )
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_xticks(centers, [str(r) for r in table.index])
    ax.set_xlabel("region of interest (ROI)")
    ax.set_ylabel(axis_label(measure))
    n_models = rows["model"].nunique()
    who = model if model is not None else f"mean over {n_models} models"
    ax.set_title(f"{measure} per ROI and subject ({who})")
    ax.legend(fontsize="small", ncols=2, loc="best")
    return fig


def _zscore(profile: pd.Series) -> pd.Series:
    sd = profile.std(ddof=0)
    return (profile - profile.mean()) / sd if sd > 0 else profile * 0.0


def profile_comparison(
    measures: pd.DataFrame,
    *,
    estimator: str | None = "mle",
    layer: str | None = None,
    subject: str | None = None,
) -> Figure:
    """Model LID profiles against ROI response-pattern profiles, z-scored over common K.

    Parameters
    ----------
    measures : pandas.DataFrame
        Tidy ``measures`` with ``lid`` rows of models and ``roi_lid`` rows of model ``"brain"``.
    estimator : str or None
        LID estimator of both kinds of rows.
    layer : str, optional
        Layer of the model rows.
    subject : str, optional
        Subject of the ROI rows; by default each ROI's LID is averaged over subjects at each K.

    Returns
    -------
    matplotlib.figure.Figure
        Thin sky-blue lines for models, one thick dashed line per ROI; each profile is
        z-scored over the K every profile has, which is what
        :func:`repscope.profile_distance` compares.
    """
    measures = as_measures(measures)
    model_rows = select(measures, "lid", estimator=estimator, layer=layer)
    models = lid_profiles_by_model(models_only(model_rows))
    roi_rows = select(measures, "roi_lid", estimator=estimator, subject=subject)
    roi_rows = roi_rows[roi_rows["k"].notna()]
    mean_lid = roi_rows.groupby(["roi", "k"], sort=True)["value"].mean()
    rois = {str(roi): mean_lid[roi].rename(index=int) for roi in mean_lid.index.unique("roi")}
    common = sorted(set.intersection(*(set(p.index) for p in [*models.values(), *rois.values()])))
    if len(common) < 3:
        raise InputError(
            f"model and ROI LID profiles share {len(common)} values of K; z-scored profiles "
            "need >= 3 common K."
        )
    fig, ax = new_figure()
    model_color, roi_colors = OKABE_ITO[1], [c for c in OKABE_ITO if c != OKABE_ITO[1]]
    for model, profile in models.items():
        ax.plot(
            common, _zscore(profile[common]), color=model_color, alpha=0.6, linewidth=1, label=model
        )
    for i, (roi, profile) in enumerate(rois.items()):
        ax.plot(
            common,
            _zscore(profile[common]),
            color=roi_colors[i % len(roi_colors)],
            linestyle="--",
            marker="s",
            linewidth=2.5,
            label=f"ROI {roi}",
        )
    handles = [Line2D([], [], color=model_color, label=f"models ({len(models)})")]
    handles += [line for line in ax.get_lines()[len(models) :]]
    ax.legend(handles=handles, fontsize="small", loc="best")
    ax.set_xscale("log")
    ax.set_xlabel(K_LABEL)
    ax.set_ylabel("LID, z-scored over common K (sd units)")
    n_subjects = roi_rows["subject"].nunique()
    who = f"subject {subject}" if subject is not None else f"ROIs: mean over {n_subjects} subjects"
    ax.set_title(f"Model vs ROI LID profiles ({who})")
    return fig


def scale_invariance_vs_brain(
    measures: pd.DataFrame,
    roi: str = "EBA",
    *,
    models: pd.DataFrame | None = None,
    subject: str = "all",
    slope: str = "lid_slope",
    y: str = "brain_r2",
    estimator: str | None = "mle",
    layer: str | None = None,
    stats_row: StatsRow | None = None,
) -> Figure:
    """Scale invariance (LID slope over ln K) against brain alignment in one ROI.

    Parameters
    ----------
    measures : pandas.DataFrame
        Tidy ``measures`` with ``slope`` rows and ``y`` rows for ``roi``.
    roi, subject : str
        ROI and subject (``"all"``: pooled) of the brain rows.
    models : pandas.DataFrame, optional
        Colours points by family when given.
    slope : str
        ``lid_slope``, ``lid_slope_without_largest`` or ``lid_cv``.
    y : str
        Brain measure on the y axis.
    estimator, layer : str or None
        Filters on the slope rows (layer also on the brain rows).
    stats_row : mapping or pandas.Series, optional
        Statistics row for the title; else computed from the points.

    Returns
    -------
    matplotlib.figure.Figure
    """
    measures = as_measures(measures)
    models = None if models is None else as_models(models)
    x = per_model(select(measures, slope, estimator=estimator, layer=layer), slope)
    values = model_values(measures, models, y, roi=roi, subject=subject, layer=layer)
    frame = paired(x, values, models)
    fig, ax = new_figure()
    scatter_by_family(ax, frame, "x", "y")
    draw_fit(ax, frame["x"].to_numpy(), frame["y"].to_numpy())
    ax.set_xlabel(f"{axis_label(slope)}; flatter = more scale-invariant")
    ax.set_ylabel(f"{axis_label(y)}, {roi}")
    text = correlation_text(frame["x"].to_numpy(), frame["y"].to_numpy(), stats_row)
    ax.set_title(f"Scale invariance vs {y} in {roi} (subject {subject})\n{text}", fontsize="medium")
    return fig
