"""The brain as a representation: multi-scale LID profiles of ROI response patterns (METHOD.md §4).

An ROI's responses (images × voxels) are an embedding like any other. Its local-dimension
profile comes from :func:`~repscope.dimension.estimate.local_dimension` (one exact kNN search
per ROI serves every K), its scale invariance from
:func:`~repscope.dimension.scales.dimensional_stability`, and a model's profile is compared
with each ROI's by :func:`~repscope.dimension.scales.profile_distance` (L2 distance of the
z-scored profiles over their common K).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from repscope._backend import Device
from repscope._brain_input import check_finite_responses, check_subjects, roi_columns
from repscope._validation import InputError
from repscope.dimension.estimate import LocalDimensionResult, local_dimension
from repscope.dimension.scales import dimensional_stability, profile_distance
from repscope.io.responses import BrainResponses

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["profile_distances", "roi_dimension_profiles"]

_PROFILE_COLUMNS = ("subject", "roi", "estimator", "k", "lid")


def roi_dimension_profiles(
    brain: BrainResponses | Sequence[BrainResponses],
    rois: str | Sequence[str] | None = None,
    *,
    k: int | Sequence[int] | None = None,
    estimator: str = "mle",
    pca: int | None = 300,
    device: Device = "auto",
) -> pd.DataFrame:
    """Local intrinsic dimension profile of each ROI's response patterns, per subject.

    Each ROI's responses (images as points, voxels as coordinates) go through
    :func:`~repscope.dimension.estimate.local_dimension` exactly as a model's embedding does:
    exact duplicates dropped, PCA to ``pca`` components, one kNN search at the largest K,
    the mean pointwise estimate at every K.

    Parameters
    ----------
    brain : BrainResponses or sequence of BrainResponses
        One subject, or several (distinct subject numbers).
    rois : str, sequence of str or None
        ROIs to profile; None profiles every ROI each subject carries. An ROI without voxels
        in a subject is skipped with a warning.
    k : int or sequence of int, optional
        Neighbourhood sizes. Default: 5, 10, 20, 50, 100, 200, 500, 1000, capped at the
        number of distinct images − 1.
    estimator : str
        Pointwise estimator (``"mle"``: Levina–Bickel, the paper's); see
        :data:`repscope.ESTIMATORS`.
    pca : int or None
        Principal components kept before the search; None skips PCA.
    device : {"auto", "cpu", "cuda"}
        Where the kNN GEMMs run.

    Returns
    -------
    pandas.DataFrame
        Tidy, one row per (subject, roi, k), subjects and ROIs in input order, k ascending.
        Columns: ``subject`` (str), ``roi``, ``estimator``, ``k``, ``lid`` (mean pointwise
        LID, dimensionless); per (subject, roi), repeated on its rows: ``slope`` and
        ``slope_without_largest`` (OLS slope of lid against ln k, with all scales and without
        the largest; NaN with fewer than 2 or 3 scales), ``cv`` (std/mean of the profile; NaN
        with one scale), ``n_images`` (distinct images analysed), ``duplicates_dropped``,
        ``n_voxels``, ``pca`` (components used, <NA> when skipped).

    Raises
    ------
    InputError
        An ROI a subject lacks, NaN in its responses, or a K the images cannot support.

    Examples
    --------
    >>> from repscope.io.responses import BrainResponses
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.uniform(size=(1000, 2)) @ rng.standard_normal((2, 50))
    >>> brain = BrainResponses(
    ...     subject=1, stimulus_ids=np.array([f"nsd-{i:05d}" for i in range(1000)]),
    ...     responses=Y.astype(np.float32), n_repeats=np.full(1000, 3),
    ...     coordinates=np.zeros((50, 3), dtype=int), ncsnr=np.ones(50),
    ...     roi_masks={"V1": np.ones(50, dtype=bool)}, shared=np.zeros(1000, dtype=bool),
    ...     space="func1pt8mm")
    >>> profiles = roi_dimension_profiles(brain, k=[10, 20], device="cpu")
    >>> # a 2-D plane: the MLE's expectation is 2 (K − 1) / (K − 2), 2.25 at K=10
    >>> print(profiles[["subject", "roi", "k", "lid"]].round(1).to_string(index=False))
    subject roi  k  lid
          1  V1 10  2.2
          1  V1 20  2.0
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for b in check_subjects(brain):
        columns, positions = roi_columns(b, rois)
        for roi, pos in positions.items():
            if pos.size == 0:
                warnings.warn(
                    f"ROI {roi!r} has no voxels in subject {b.subject}; its profile is skipped.",
                    UserWarning,
                    stacklevel=2,
                )
                continue
            responses = b.responses[:, columns[pos]]
            check_finite_responses(responses, b.subject)
            result = local_dimension(responses, k, estimator=estimator, pca=pca, device=device)
            rows += _profile_rows(result, subject=str(b.subject), roi=roi)
    return pd.DataFrame(rows).astype({"pca": "Int64"})


def _profile_rows(result: LocalDimensionResult, **keys: Any) -> list[dict[str, Any]]:
    """One row per K of ``result``, with its stability metrics and provenance."""
    values = [result.profile[kk] for kk in result.k]
    nan = float("nan")
    slope, without_largest, cv = nan, nan, nan
    if len(values) >= 2:
        stability = dimensional_stability(result.k, values)
        slope, without_largest, cv = stability.slope, stability.slope_without_largest, stability.cv
    common = {
        **keys,
        "estimator": result.estimator,
        "slope": slope,
        "slope_without_largest": without_largest,
        "cv": cv,
        "n_images": result.n_points,
        "duplicates_dropped": result.duplicates_dropped,
        "n_voxels": result.n_features,
        "pca": result.pca,
    }
    return [{**common, "k": kk, "lid": value} for kk, value in zip(result.k, values, strict=True)]


def profile_distances(
    model_profile: LocalDimensionResult | Mapping[int, float],
    brain_profiles: pd.DataFrame,
) -> pd.DataFrame:
    """Distance between a model's LID profile and each ROI's, per subject.

    The distance is :func:`~repscope.dimension.scales.profile_distance`: both profiles
    restricted to their common K, z-scored over those K, then the L2 distance (0 for profiles
    of the same shape, at most 2 sqrt(m) for m common K). Lower means the model's scale
    pattern resembles the ROI's.

    Parameters
    ----------
    model_profile : LocalDimensionResult or mapping of int to float
        The model's profile (``local_dimension(...)`` or its ``.profile``, ``{K: lid}``).
    brain_profiles : pandas.DataFrame
        The table of :func:`roi_dimension_profiles` (columns subject, roi, estimator, k, lid).

    Returns
    -------
    pandas.DataFrame
        One row per (subject, roi), in table order: ``subject``, ``roi``, ``n_common_k``,
        ``distance`` (dimensionless).

    Raises
    ------
    InputError
        Missing columns, a model estimator other than the table's, or fewer than 2 common K.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"subject": "1", "roi": "EBA", "estimator": "mle",
    ...                       "k": [5, 10, 20], "lid": [4.0, 6.0, 8.0]})
    >>> profile_distances({5: 10.0, 10: 20.0, 20: 35.0}, table).round(3)
      subject  roi  n_common_k  distance
    0       1  EBA           3     0.199
    """
    import pandas as pd

    missing = [c for c in _PROFILE_COLUMNS if c not in brain_profiles.columns]
    if missing:
        raise InputError(
            f"brain_profiles lacks columns {missing}; pass the table roi_dimension_profiles "
            "returns."
        )
    profile = model_profile
    if isinstance(model_profile, LocalDimensionResult):
        _check_estimator(model_profile.estimator, brain_profiles)
        profile = model_profile.profile
    ks = np.array(list(profile), dtype=np.int64)
    values = np.array([profile[kk] for kk in profile], dtype=np.float64)
    rows = []
    for (subject, roi), group in brain_profiles.groupby(["subject", "roi"], sort=False):
        k_brain = group["k"].to_numpy(dtype=np.int64)
        rows.append(
            {
                "subject": subject,
                "roi": roi,
                "n_common_k": int(np.intersect1d(ks, k_brain).size),
                "distance": profile_distance(ks, values, k_brain, group["lid"].to_numpy()),
            }
        )
    return pd.DataFrame(rows)


def _check_estimator(estimator: str, brain_profiles: pd.DataFrame) -> None:
    others = sorted(set(brain_profiles["estimator"]) - {estimator})
    if others:
        raise InputError(
            f"the model profile uses estimator {estimator!r} but brain_profiles uses {others}; "
            "compute both with the same estimator."
        )
