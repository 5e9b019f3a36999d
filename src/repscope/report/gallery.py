"""The study's standard figure set with one-sentence readings, skipping what the data lack.

:func:`study_figures` draws every figure of METHOD.md §8 (and the scale-invariance ones of
§4) that the tables support. A figure whose data are missing (no brain rows in a run without
fMRI, a K the images cannot support) is left out with a note saying why, so a report can
list what it does not show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats as sps

from repscope._validation import InputError
from repscope.report._brain_figures import subject_roi_means
from repscope.report._generalization_figures import DIAGNOSTIC_LABELS, generalization_panels
from repscope.report._tables import as_measures, axis_label, models_only, select
from repscope.report._weights_figures import spectral_panels
from repscope.report.figures import (
    brain_alignment_bars,
    correlation_by_k,
    lid_profiles,
    lid_scaling,
    lid_scatter,
    profile_comparison,
    scale_invariance_vs_brain,
)
from repscope.report.html import ReportFigure
from repscope.stats import Quantity

__all__ = ["study_figures"]


def _points(fig: Figure, panel: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The x and y of every scatter point drawn on the figure's axes number ``panel``."""
    axes = fig.axes[panel]
    xy = np.concatenate([c.get_offsets() for c in axes.collections if len(c.get_offsets())])
    return np.asarray(xy[:, 0], dtype=float), np.asarray(xy[:, 1], dtype=float)


def _relation(fig: Figure, x: str, y: str, *, log_x: bool = False) -> str:
    """``Across n models, Pearson r = …: lower x goes with higher y.`` from the drawn points."""
    u, v = _points(fig)
    u = np.log10(u) if log_x else u
    if np.ptp(u) == 0 or np.ptp(v) == 0:
        return f"Across {len(u)} models {x} or {y} is constant, so r is undefined."
    r = sps.pearsonr(u, v).statistic
    if abs(r) < 0.1:
        trend = f"{x} and {y} show no linear relation"
    else:
        trend = f"{'lower' if r < 0 else 'higher'} {x} goes with higher {y}"
    return f"Across {len(u)} models Pearson r = {r:.2f}: {trend}."


def _profiles_reading(fig: Figure, color_by: str) -> str:
    lines = fig.axes[0].get_lines()
    ks = np.concatenate([line.get_xdata() for line in lines]).astype(float)
    return (
        f"LID of {len(lines)} models from K={ks.min():.0f} to K={ks.max():.0f}; lines are "
        f"coloured by {axis_label(color_by).split(' (')[0]} (viridis, log scale)."
    )


def _by_k_reading(table: pd.DataFrame) -> str:
    k = pd.to_numeric(table["k"], errors="coerce")
    local = table[k.notna() & table["pearson_r"].notna()]
    if local.empty:
        return "No correlation over K could be computed (all r are undefined)."
    best = local.loc[local["pearson_r"].abs().idxmax()]
    text = (
        f"The correlation is strongest for {best['measure']} at K={int(best['k'])} "
        f"(r = {best['pearson_r']:.2f})"
    )
    glob = table[k.isna() & table["pearson_r"].notna()]
    if len(glob):
        strongest = glob.loc[glob["pearson_r"].abs().idxmax()]
        text += (
            f"; the strongest global measure, {strongest['measure']}, has "
            f"r = {strongest['pearson_r']:.2f}"
        )
    return text + "."


def _bars_reading(measures: pd.DataFrame) -> str:
    means = subject_roi_means(models_only(select(measures, "brain_r2"))).mean(axis=1)
    return (
        f"Mean held-out R² is highest in {means.idxmax()} ({means.max():.3f}) and lowest in "
        f"{means.idxmin()} ({means.min():.3f}) over {len(means)} ROIs."
    )


def _matches(found: Quantity, wanted: Quantity) -> bool:
    """Same quantity, a field left open (None) on either side matching anything."""
    if (found.name, found.log10) != (wanted.name, wanted.log10):
        return False
    fields = ("estimator", "k", "subject", "roi", "target", "layer")
    return all(
        a is None or b is None or a == b
        for a, b in ((getattr(found, f), getattr(wanted, f)) for f in fields)
    )


def _stats_row(statistics: pd.DataFrame | None, x: str, y: str) -> pd.Series | None:
    """The one row of a :func:`repscope.stats.zoo_statistics` table for the pair (x, y).

    The pair matches in either order (Pearson r is symmetric); None when the table is absent
    or holds no single such row, and the figure computes r from its points instead.
    """
    if statistics is None or statistics.empty or not {"x", "y"} <= set(statistics.columns):
        return None
    wx, wy = Quantity.parse(x), Quantity.parse(y)
    hits = []
    for _, row in statistics.iterrows():
        a, b = Quantity.parse(str(row["x"])), Quantity.parse(str(row["y"]))
        if (_matches(a, wx) and _matches(b, wy)) or (_matches(a, wy) and _matches(b, wx)):
            hits.append(row)
    return hits[0] if len(hits) == 1 else None


def _available_k(measures: pd.DataFrame, k: int, estimator: str | None, notes: list[str]) -> int:
    """``k`` if LID was measured there, else the largest measured K below it (noted)."""
    try:
        ks = sorted(int(v) for v in select(measures, "lid", estimator=estimator)["k"].dropna())
    except InputError:
        return k
    if not ks or k in ks:
        return k
    below = [v for v in ks if v < k]
    chosen = below[-1] if below else ks[0]
    notes.append(f"LID was not measured at K={k}; K={chosen} is used instead.")
    return chosen


def study_figures(
    measures: pd.DataFrame,
    models: pd.DataFrame,
    *,
    statistics: pd.DataFrame | None = None,
    correlation_by_k: pd.DataFrame | None = None,
    k_model: int = 50,
    k_brain: int = 1000,
    roi: str = "EBA",
    estimator: str = "mle",
    spectral_rank: int = 16,
) -> tuple[list[ReportFigure], list[str]]:
    """Every standard figure the tables support, with readings; notes for those left out.

    Parameters
    ----------
    measures, models : pandas.DataFrame
        The run's tidy tables (:mod:`repscope.results`).
    statistics : pandas.DataFrame, optional
        :func:`repscope.stats.zoo_statistics`' table: a scatter whose pair it holds shows that
        row's r and bootstrap CI; otherwise r and a Fisher-z CI from the points.
    correlation_by_k : pandas.DataFrame, optional
        :func:`repscope.stats.correlation_by_k`' table (several concatenated: one figure per
        ``y``).
    k_model, k_brain : int
        K of the LID against model–model alignment and accuracy, and against brain alignment
        (the paper's 50 and 1000); the largest measured K below is used when absent.
    roi : str
        The headline ROI of the brain scatter plots.
    estimator : str
        LID estimator of every figure.
    spectral_rank : int
        The rank r of the weight-space stability against pretraining-set size.

    Returns
    -------
    figures : list of (str, Figure, str)
        Title, figure and one-sentence reading, for :func:`repscope.report.write_report`.
    notes : list of str
        One line per figure left out (and per K substituted), saying why.
    """
    measures = as_measures(measures)
    notes: list[str] = []
    k_m = _available_k(measures, k_model, estimator, notes)
    k_b = _available_k(measures, k_brain, estimator, notes)
    lid_m, lid_b = f"LID at K={k_m}", f"LID at K={k_b}"
    q_m, q_b = f"lid@{estimator}@k={k_m}", f"lid@{estimator}@k={k_b}"
    brain_q = f"brain_r2@subject=all@roi={roi}"

    def row(x: str, y: str) -> pd.Series | None:
        return _stats_row(statistics, x, y)

    plan: list[tuple[str, Callable[[], Figure], Callable[[Figure], str]]] = [
        (
            "LID profiles by model size",
            lambda: lid_profiles(measures, models, "n_params", estimator=estimator),
            lambda f: _profiles_reading(f, "n_params"),
        ),
        (
            "LID profiles by pretraining data",
            lambda: lid_profiles(measures, models, "pretrain_size", estimator=estimator),
            lambda f: _profiles_reading(f, "pretrain_size"),
        ),
        (
            "LID vs model–model alignment",
            lambda: lid_scatter(
                measures,
                models,
                "model_alignment_mean",
                k_m,
                estimator=estimator,
                stats_row=row(q_m, "model_alignment_mean"),
            ),
            lambda f: _relation(f, lid_m, "model–model alignment"),
        ),
        (
            f"LID vs brain alignment in {roi}",
            lambda: lid_scatter(
                measures,
                models,
                "brain_r2",
                k_b,
                roi=roi,
                estimator=estimator,
                stats_row=row(q_b, brain_q),
            ),
            lambda f: _relation(f, lid_b, f"brain alignment in {roi}"),
        ),
        (
            "LID vs generalization",
            lambda: lid_scatter(
                measures,
                models,
                "accuracy",
                k_m,
                estimator=estimator,
                stats_row=row(q_m, "accuracy"),
            ),
            lambda f: _relation(f, lid_m, "accuracy"),
        ),
        (
            "LID vs parameter count",
            lambda: lid_scaling(
                measures,
                models,
                "n_params",
                k_m,
                estimator=estimator,
                stats_row=row("log10(n_params)", q_m),
            ),
            lambda f: _relation(f, "log parameter count", lid_m, log_x=True),
        ),
        (
            "LID vs pretraining data size",
            lambda: lid_scaling(
                measures,
                models,
                "pretrain_size",
                k_m,
                estimator=estimator,
                stats_row=row("log10(pretrain_size)", q_m),
            ),
            lambda f: _relation(f, "log pretraining-set size", lid_m, log_x=True),
        ),
        (
            "Brain alignment per ROI and subject",
            lambda: brain_alignment_bars(measures),
            lambda f: _bars_reading(measures),
        ),
        (
            "Model vs ROI LID profiles",
            lambda: profile_comparison(measures, estimator=estimator),
            lambda f: (
                "Profiles are z-scored over the K all share, so only their shape over K "
                "is compared; dashed lines are ROIs."
            ),
        ),
        (
            f"Scale invariance vs brain alignment in {roi}",
            lambda: scale_invariance_vs_brain(measures, roi, models=models, estimator=estimator),
            lambda f: _relation(f, "LID slope over ln K", f"brain alignment in {roi}"),
        ),
    ]
    plan[5:5] = _correlation_plan(correlation_by_k)
    plan += _generalization_plan(measures, models, row)
    plan += _weights_plan(measures, models, row, spectral_rank)
    figures = []
    for title, build, read in plan:
        try:
            fig = build()
        except InputError as exc:
            notes.append(f"{title}: not drawn ({exc})")
            continue
        figures.append((title, fig, read(fig)))
    return figures, notes


def _correlation_plan(
    table: Any,
) -> list[tuple[str, Callable[[], Figure], Callable[[Figure], str]]]:
    """One correlation-by-K figure per target measure (``y`` column), or one for the table."""
    if table is None:
        return []
    if not isinstance(table, pd.DataFrame) or "y" not in table.columns:
        return [
            ("Correlation with K", lambda: correlation_by_k(table), lambda f: _by_k_reading(table))
        ]
    return [
        (
            f"Correlation with {y} over K",
            lambda part=part, y=y: correlation_by_k(part, y_name=str(y)),
            lambda f, part=part: _by_k_reading(part),
        )
        for y, part in table.groupby("y", sort=False)
    ]


def _generalization_plan(
    measures: pd.DataFrame, models: pd.DataFrame, row: Callable[[str, str], pd.Series | None]
) -> list[tuple[str, Callable[[], Figure], Callable[[Figure], str]]]:
    """One diagnostics-vs-gap figure per kind of head in the ``gen_gap_accuracy`` rows."""
    gaps = measures[measures["measure"] == "gen_gap_accuracy"]
    return [
        (
            f"Generalization diagnostics vs gap ({head} head)",
            lambda head=head: generalization_panels(measures, models, head=head, stats_row=row),
            _diagnostics_reading,
        )
        for head in sorted(gaps["estimator"].dropna().unique())
    ]


def _weights_plan(
    measures: pd.DataFrame,
    models: pd.DataFrame,
    row: Callable[[str, str], pd.Series | None],
    rank: int,
) -> list[tuple[str, Callable[[], Figure], Callable[[Figure], str]]]:
    """One stability figure per fine-tuning task in the ``spectral_overlap`` rows."""
    overlap = measures[measures["measure"] == "spectral_overlap"]
    return [
        (
            f"Spectral basis under fine-tuning on {task}",
            lambda task=task: spectral_panels(
                measures, models, task=task, rank=rank, stats_row=row
            ),
            lambda fig, task=task: _weights_reading(fig, measures, task, rank),
        )
        for task in sorted(overlap["target"].dropna().unique())
    ]


def _weights_reading(fig: Figure, measures: pd.DataFrame, task: str, rank: int) -> str:
    """How far the overlap at ``rank`` sits above its random baseline, and its relation to size."""
    at = {
        name: select(measures, name, target=task, estimator="all", k=rank)["value"].mean()
        for name in ("spectral_overlap", "spectral_baseline")
    }
    size = _relation_text(fig, 3, "log pretraining-set size", "overlap")
    return (
        f"At r = {rank} the top-r subspaces keep a mean overlap of "
        f"{at['spectral_overlap']:.2f} after fine-tuning on {task}, against "
        f"{at['spectral_baseline']:.2f} for random subspaces. {size}"
    )


def _relation_text(fig: Figure, panel: int, x: str, y: str) -> str:
    u, v = _points(fig, panel)
    u = np.log10(u)
    if len(u) < 3 or np.ptp(u) == 0 or np.ptp(v) == 0:
        return f"Across {len(u)} models {x} or {y} is constant, so r is undefined."
    return f"Across {len(u)} models, {x} vs {y}: Pearson r = {sps.pearsonr(u, v).statistic:.2f}."


def _diagnostics_reading(fig: Figure) -> str:
    """Pearson r of each panel's points, in the order the panels are drawn."""
    parts = []
    for panel, label in enumerate(DIAGNOSTIC_LABELS.values()):
        x, y = _points(fig, panel)
        r = sps.pearsonr(x, y).statistic if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
        parts.append(f"{label.split(' (')[0]} r = {r:.2f}")
    return (
        "Pearson r with the train − test accuracy gap across models: "
        + "; ".join(parts)
        + ". The bound predicts a positive r for W1 and for Lipschitz bound × W1."
    )
