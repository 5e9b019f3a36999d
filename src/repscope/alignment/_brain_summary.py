"""Per-ROI summaries of voxelwise alignment scores, and the tidy table with pooled rows.

Used by :func:`repscope.alignment.brain.brain_alignment`; the columns are documented on
:class:`~repscope.alignment.brain.BrainAlignment`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["roi_summary", "summary_table"]

_METRICS = ("r2", "pearson_r", "noise_ceiling", "r2_normalized", "r2_normalized_median")
_COUNTS = ("n_voxels", "n_voxels_reliable", "n_train", "n_test", "n_subjects", "pca")
_COUNTS += ("n_embedding_only", "n_brain_only")


def roi_summary(
    r2: np.ndarray, pearson_r: np.ndarray, noise_ceiling: np.ndarray, min_nc: float
) -> dict[str, Any]:
    """Voxel counts and mean scores of one ROI (the table's per-subject columns).

    Parameters
    ----------
    r2, pearson_r, noise_ceiling : ndarray of shape (n_voxels,)
        Voxelwise test R², Pearson r and NC (fraction); NaN where undefined or unknown.
    min_nc : float
        NC a voxel needs to enter the median of R²/NC.

    Returns
    -------
    dict
        n_voxels, n_voxels_reliable, r2, pearson_r, noise_ceiling, r2_normalized,
        r2_normalized_median, as documented on :class:`~repscope.alignment.brain.BrainAlignment`.
    """
    nc = noise_ceiling
    both = np.isfinite(r2) & np.isfinite(nc)
    mean_nc = _mean(nc[both])
    reliable = both & (nc > min_nc)
    return {
        "n_voxels": int(r2.size),
        "n_voxels_reliable": int(reliable.sum()),
        "r2": _mean(r2),
        "pearson_r": _mean(pearson_r),
        "noise_ceiling": _mean(nc),
        "r2_normalized": _mean(r2[both]) / mean_nc if mean_nc > 0 else float("nan"),
        "r2_normalized_median": (
            float(np.median(r2[reliable] / nc[reliable])) if reliable.any() else float("nan")
        ),
    }


def _mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def summary_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-subject rows (from :func:`roi_summary` plus split info) followed by pooled rows."""
    import pandas as pd

    per_subject = pd.DataFrame(rows)
    for name in _METRICS:
        per_subject[f"{name}_sd"] = np.nan
    table = pd.concat([per_subject, _pooled(per_subject)], ignore_index=True)
    order = ["subject", "roi", "n_voxels", "n_voxels_reliable", "n_train", "n_test"]
    order += [*_METRICS, *(f"{m}_sd" for m in _METRICS), "n_subjects", "test", "pca"]
    order += ["pca_variance", "n_embedding_only", "n_brain_only"]
    return table[order].astype({name: "Int64" for name in _COUNTS})


def _pooled(per_subject: pd.DataFrame) -> pd.DataFrame:
    """One row per ROI: mean and sd over the subjects in which the ROI has voxels."""
    import pandas as pd

    rows = []
    present = per_subject[per_subject["n_voxels"] > 0]
    for roi, group in present.groupby("roi", sort=False):
        pcas = group["pca"].unique()
        row: dict[str, Any] = {
            "subject": "all",
            "roi": roi,
            "n_voxels": int(group["n_voxels"].sum()),
            "n_voxels_reliable": int(group["n_voxels_reliable"].sum()),
            "n_subjects": len(group),
            "test": group["test"].iloc[0],
            "pca": pcas[0] if len(pcas) == 1 else None,
        }
        for name in _METRICS:
            row[name] = group[name].mean(skipna=False)
            row[f"{name}_sd"] = group[name].std(ddof=1, skipna=False)
        rows.append(row)
    return pd.DataFrame(rows)
