"""Reading the tidy tables for figures: schema coercion, one value per model, axis labels.

Every figure reads :mod:`repscope.results`' ``measures`` and ``models`` tables through these
helpers, so a missing measure, an ambiguous selection (two rows per model) or an empty result
is one :class:`~repscope._validation.InputError` that names what to pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from repscope._validation import InputError
from repscope.results import MEASURE_COLUMNS, MODEL_COLUMNS, check_table

__all__ = [
    "BRAIN_MODEL",
    "as_measures",
    "as_models",
    "axis_label",
    "check_frame",
    "lid_profiles_by_model",
    "model_values",
    "models_only",
    "paired",
    "per_model",
    "select",
]

#: the ``model`` of ROI response patterns in the measures table (measure ``roi_lid``)
BRAIN_MODEL = "brain"

# axis labels with units, by measure name (and the models table's columns)
_LABELS = {
    "lid": "LID (dimensions)",
    "lid_slope": "LID slope (dimensions per unit ln K)",
    "lid_slope_without_largest": "LID slope without largest K (dimensions per unit ln K)",
    "lid_cv": "LID coefficient of variation (sd / mean)",
    "pca90": "PCs for 90 % variance (count)",
    "pca95": "PCs for 95 % variance (count)",
    "participation_ratio": "participation ratio (dimensions)",
    "effective_rank": "effective rank (dimensions)",
    "spectrum_alpha": "eigenspectrum power-law exponent α",
    "model_alignment": "model–model alignment (held-out R²)",
    "model_alignment_mean": "model–model alignment (mean held-out R²)",
    "brain_r2": "brain alignment (mean held-out R²)",
    "brain_pearson_r": "brain alignment (mean held-out Pearson r)",
    "brain_noise_ceiling": "noise ceiling (fraction of variance)",
    "brain_r2_normalized": "brain alignment (R² / noise ceiling)",
    "brain_profile_distance": "profile distance, model vs ROI (z units)",
    "roi_lid": "ROI LID (dimensions)",
    "accuracy": "generalization accuracy (top-1, fraction)",
    "n_params": "parameters (count, log scale)",
    "pretrain_size": "pretraining images (count, log scale)",
}


def axis_label(name: str) -> str:
    """Axis label with units for a measure or a models-table column (the name itself if unknown)."""
    return _LABELS.get(name, name)


def check_frame(table: Any, name: str) -> None:
    """Raise unless ``table`` is a pandas DataFrame with at least one row."""
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame, got {type(table).__name__}.")
    if table.empty:
        raise InputError(f"the {name} table is empty; pass a table with at least one row.")


def _as_schema(table: Any, columns: dict[str, str], name: str) -> pd.DataFrame:
    check_frame(table, name)
    check_table(table, columns, name)
    try:
        return table.astype(columns)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"the {name} table's columns do not have the dtypes of repscope.results ({exc})."
        ) from None


def as_measures(measures: Any) -> pd.DataFrame:
    """The ``measures`` table with the dtypes of :data:`repscope.results.MEASURE_COLUMNS`."""
    return _as_schema(measures, MEASURE_COLUMNS, "measures")


def as_models(models: Any) -> pd.DataFrame:
    """The ``models`` table with the dtypes of :data:`repscope.results.MODEL_COLUMNS`."""
    table = _as_schema(models, MODEL_COLUMNS, "models")
    duplicated = table["model"][table["model"].duplicated()].unique().tolist()
    if duplicated:
        raise InputError(f"the models table lists {duplicated} twice; keep one row per model.")
    return table


def _equals(column: pd.Series, value: object) -> np.ndarray:
    """Boolean mask ``column == value`` with missing entries False (never pandas' NA)."""
    return column.eq(value).fillna(False).to_numpy(dtype=bool)


def models_only(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` without those of the brain's own response patterns (model ``"brain"``)."""
    return rows[~_equals(rows["model"], BRAIN_MODEL)]


def select(measures: pd.DataFrame, measure: str, **equal: object) -> pd.DataFrame:
    """Rows of ``measure`` whose columns equal ``equal`` (a None value is not filtered on).

    Raises
    ------
    InputError
        When no row matches; the message lists the values the table does have.
    """
    rows = measures[_equals(measures["measure"], measure)]
    if rows.empty:
        present = sorted(measures["measure"].dropna().unique())
        raise InputError(f"the measures table has no {measure!r} rows; it has {present}.")
    for column, value in equal.items():
        if value is None:
            continue
        kept = rows[_equals(rows[column], value)]
        if kept.empty:
            present = sorted(rows[column].dropna().unique().tolist())
            raise InputError(
                f"no {measure!r} rows with {column}={value!r}; the table has {column} in {present}."
            )
        rows = kept
    return rows


def per_model(rows: pd.DataFrame, description: str) -> pd.Series:
    """``value`` indexed by model, one per model, brain rows excluded.

    Raises
    ------
    InputError
        When a model has several rows (the selection was ambiguous) or none remain.
    """
    rows = models_only(rows)
    if rows.empty:
        raise InputError(f"no model rows for {description}; the table has only brain rows.")
    counts = rows["model"].value_counts()
    if (counts > 1).any():
        model = counts.index[0]
        varying = [
            c
            for c in ("layer", "estimator", "k", "subject", "roi", "target")
            if rows.loc[_equals(rows["model"], model), c].nunique(dropna=False) > 1
        ]
        raise InputError(
            f"{description} has {counts.iloc[0]} rows for model {model!r} (they differ in "
            f"{varying}); pass values that pick one row per model."
        )
    return rows.set_index("model")["value"].astype(float).rename(description)


def lid_profiles_by_model(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """LID over K for each model: ``{model: value indexed by K, sorted}`` from LID rows.

    Raises
    ------
    InputError
        When a model has two rows at one K (e.g. two layers or estimators left in ``rows``).
    """
    rows = rows[rows["k"].notna()]
    if rows.empty:
        raise InputError("the LID rows have no K; LID profiles need rows with k set.")
    profiles = {}
    for model, group in rows.groupby("model", sort=True):
        if group["k"].duplicated().any():
            raise InputError(
                f"model {model!r} has several LID rows at one K (layers or estimators "
                f"{sorted(set(group['layer']) | set(group['estimator']))}); pick one."
            )
        series = group.set_index(group["k"].astype(int))["value"].astype(float)
        profiles[str(model)] = series.sort_index()
    return profiles


def model_values(
    measures: pd.DataFrame, models: pd.DataFrame | None, name: str, **filters: Any
) -> pd.Series:
    """One value per model: a models-table column (``accuracy``…) or a measure of ``measures``."""
    if name in ("accuracy", "n_params", "pretrain_size"):
        if models is None:
            raise InputError(f"{name!r} comes from the models table; pass models=.")
        return models.set_index("model")[name].astype(float).rename(name)
    if not name.startswith("brain_"):
        filters = {key: value for key, value in filters.items() if key not in ("roi", "subject")}
    return per_model(select(measures, name, **filters), name)


def paired(x: pd.Series, y: pd.Series, models: pd.DataFrame | None) -> pd.DataFrame:
    """Models with both values finite, with their family (``"unknown"`` where not listed)."""
    frame = pd.concat({"x": x, "y": y}, axis=1, join="inner").astype(float)
    frame = frame[np.isfinite(frame).all(axis=1)]
    families = pd.Series(dtype="string") if models is None else models.set_index("model")["family"]
    frame["family"] = families.reindex(frame.index).fillna("unknown").astype(str)
    if len(frame) < 3:
        raise InputError(
            f"only {len(frame)} models have both {x.name} and {y.name}; a scatter needs >= 3."
        )
    return frame
