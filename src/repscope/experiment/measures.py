"""Analyses of one study stage, returned as rows of the tidy ``measures`` table.

Each function takes arrays (never paths) and returns a pandas DataFrame with the columns of
:data:`repscope.results.MEASURE_COLUMNS`, so the run only concatenates what they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from repscope.results import MEASURE_COLUMNS

__all__ = [
    "alignment_rows",
    "brain_rows",
    "dimension_rows",
    "measure_frame",
    "roi_lid_rows",
]

_BRAIN_MEASURES = {
    "r2": "brain_r2",
    "pearson_r": "brain_pearson_r",
    "noise_ceiling": "brain_noise_ceiling",
    "r2_normalized": "brain_r2_normalized",
}


def measure_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows (dicts with any subset of the schema's columns) as a typed ``measures`` table."""
    defaults = {"estimator": "", "subject": "", "roi": "", "target": "", "layer": "penultimate"}
    filled = [{**defaults, **row} for row in rows]
    frame = pd.DataFrame(filled, columns=list(MEASURE_COLUMNS))
    for column in ("ci_low", "ci_high", "value"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame.astype(MEASURE_COLUMNS)


def dimension_rows(
    model: str,
    layer: str,
    X: np.ndarray,
    *,
    ks: Sequence[int],
    estimators: Sequence[str],
    pca: int | None,
    aggregate: str,
    global_measures: bool,
    device: str,
) -> pd.DataFrame:
    """LID at every K per estimator, the profile's scale-invariance metrics, global measures.

    Parameters
    ----------
    model, layer : str
    X : ndarray of shape (n_stimuli, n_features)
    ks : sequence of int
        Neighbourhood sizes; those >= the number of distinct points are dropped.
    estimators : sequence of str
    pca : int or None
    aggregate : str
    global_measures : bool
        Also PCA90/95, participation ratio, effective rank, power-law exponent.
    device : str

    Returns
    -------
    pandas.DataFrame
        ``measures`` rows.
    """
    from repscope.dimension.estimate import local_dimension
    from repscope.dimension.scales import dimensional_stability

    rows: list[dict[str, Any]] = []
    usable = [k for k in ks if k < len(X) - 1]
    for estimator in estimators:
        res = local_dimension(
            X, k=usable, estimator=estimator, aggregate=aggregate, pca=pca, device=device
        )
        base = {"model": model, "layer": layer, "estimator": estimator, "n": res.n_points}
        rows += [{**base, "measure": "lid", "k": k, "value": v} for k, v in res.profile.items()]
        if len(res.profile) >= 3:
            stab = dimensional_stability(list(res.profile), list(res.profile.values()))
            rows += [
                {**base, "measure": "lid_slope", "value": stab.slope},
                {
                    **base,
                    "measure": "lid_slope_without_largest",
                    "value": stab.slope_without_largest,
                },
                {**base, "measure": "lid_cv", "value": stab.cv},
            ]
    if global_measures:
        rows += _global_rows(model, layer, X)
    return measure_frame(rows)


def _global_rows(model: str, layer: str, X: np.ndarray) -> list[dict[str, Any]]:
    from repscope.dimension.spectral import spectrum

    spec = spectrum(X)
    base = {"model": model, "layer": layer, "n": len(X)}
    values = {
        "pca90": spec.pca90,
        "pca95": spec.pca95,
        "participation_ratio": spec.participation_ratio,
        "effective_rank": spec.effective_rank,
        "spectrum_alpha": spec.alpha,
    }
    return [{**base, "measure": name, "value": float(v)} for name, v in values.items()]


def alignment_rows(
    model: str,
    layer: str,
    scores: dict[str, tuple[float, float]],
    method: str,
    n: int,
) -> pd.DataFrame:
    """Model–model alignment rows: one per target, plus their mean.

    Parameters
    ----------
    model, layer : str
    scores : dict of str to (float, float)
        Per target model: (score predicting the target from ``model``, score in the other
        direction, NaN when only one direction is measured).
    method : str
    n : int
        Stimuli the scores are computed on.

    Returns
    -------
    pandas.DataFrame
        ``model_alignment`` rows (value = the mean of the directions measured) and one
        ``model_alignment_mean`` row averaging them over targets.
    """
    base = {"model": model, "layer": layer, "estimator": method, "n": n}
    rows = []
    for target, pair in scores.items():
        rows.append(
            {**base, "measure": "model_alignment", "target": target, "value": np.nanmean(pair)}
        )
    if rows:
        mean = float(np.mean([r["value"] for r in rows]))
        rows.append({**base, "measure": "model_alignment_mean", "value": mean})
    return measure_frame(rows)


def brain_rows(model: str, layer: str, table: pd.DataFrame) -> pd.DataFrame:
    """``brain_*`` rows from a :class:`~repscope.alignment.brain.BrainAlignment` table.

    Pooled rows (subject ``"all"``) carry mean ± sd over subjects as ``ci_low``/``ci_high``.
    """
    rows = []
    for rec in table.to_dict("records"):
        pooled = rec["subject"] == "all"
        for column, measure in _BRAIN_MEASURES.items():
            value = rec[column]
            sd = rec.get(f"{column}_sd", np.nan) if pooled else np.nan
            sd = np.nan if sd is None or pd.isna(sd) else float(sd)
            rows.append(
                {
                    "model": model,
                    "layer": layer,
                    "measure": measure,
                    "estimator": "ridge",
                    "subject": str(rec["subject"]),
                    "roi": str(rec["roi"]),
                    "value": np.nan if pd.isna(value) else float(value),
                    "ci_low": float(value) - sd if pooled else np.nan,
                    "ci_high": float(value) + sd if pooled else np.nan,
                    "n": int(rec["n_voxels"]),
                }
            )
    return measure_frame(rows)


def roi_lid_rows(profiles: pd.DataFrame) -> pd.DataFrame:
    """``roi_lid`` rows (model ``"brain"``) from a ``roi_dimension_profiles`` table."""
    rows = [
        {
            "model": "brain",
            "layer": "",
            "measure": "roi_lid",
            "estimator": rec["estimator"],
            "k": int(rec["k"]),
            "subject": str(rec["subject"]),
            "roi": str(rec["roi"]),
            "value": float(rec["lid"]),
        }
        for rec in profiles.to_dict("records")
    ]
    return measure_frame(rows)
