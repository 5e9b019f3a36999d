"""Checks and ROI column selection for :class:`~repscope.io.responses.BrainResponses` inputs.

Shared by model–brain alignment (:mod:`repscope.alignment.brain`) and the brain's dimension
profiles (:mod:`repscope.dimension.brain`), so both accept the same ``brain`` and ``rois``
arguments and fail with the same one-line messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from repscope._validation import InputError
from repscope.io.responses import BrainResponses

__all__ = ["check_finite_responses", "check_subjects", "roi_columns"]


def check_subjects(
    brain: BrainResponses | Sequence[BrainResponses],
) -> tuple[BrainResponses, ...]:
    """One subject or a sequence of subjects, as a tuple with distinct subject numbers."""
    try:
        subjects = (brain,) if isinstance(brain, BrainResponses) else tuple(brain)
    except TypeError:
        raise InputError(
            f"brain is a {type(brain).__name__}; pass a BrainResponses or a list of them."
        ) from None
    if not subjects:
        raise InputError("brain is an empty sequence; pass one BrainResponses per subject.")
    for b in subjects:
        if not isinstance(b, BrainResponses):
            raise InputError(
                f"brain holds a {type(b).__name__}, not BrainResponses; pass what "
                "repscope.io.nsd.load_nsd returns."
            )
    numbers = [b.subject for b in subjects]
    if len(set(numbers)) != len(numbers):
        raise InputError(
            f"brain repeats a subject (subjects {numbers}); pass each subject's responses once."
        )
    return subjects


def roi_columns(
    brain: BrainResponses, rois: str | Sequence[str] | None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Columns of the union of the ROIs, and each ROI's positions within that union.

    Parameters
    ----------
    brain : BrainResponses
    rois : str, sequence of str or None
        ROI names; None takes every ROI of ``brain``, in its order.

    Returns
    -------
    columns : ndarray of int, shape (n_union,)
        Ascending columns of ``brain.responses`` that lie in at least one ROI.
    positions : dict of str to ndarray of int
        For each ROI, in request order, the indices into ``columns`` of its voxels
        (``columns[positions[roi]]`` are the ROI's columns; empty for an ROI without voxels).

    Raises
    ------
    InputError
        An ROI the subject lacks, an empty request, or ROIs with no voxels at all.
    """
    names = brain.rois if rois is None else ((rois,) if isinstance(rois, str) else tuple(rois))
    if not names:
        raise InputError(
            f"subject {brain.subject} has no ROIs to analyse; pass rois=[...] or load ROIs."
        )
    for name in names:
        if name not in brain.roi_masks:
            raise InputError(
                f"ROI {name!r} is not in subject {brain.subject}'s responses (have: "
                f"{', '.join(brain.rois) or 'none'}); load it first or drop it from rois."
            )
    masks = {name: np.asarray(brain.roi_masks[name], dtype=bool) for name in names}
    union = np.logical_or.reduce(list(masks.values()))
    if not union.any():
        raise InputError(
            f"ROIs {list(names)} have no voxels in subject {brain.subject}; pass other rois."
        )
    columns = np.flatnonzero(union)
    positions = {name: np.flatnonzero(mask[columns]) for name, mask in masks.items()}
    return columns, positions


def check_finite_responses(responses: np.ndarray, subject: int) -> None:
    """Raise when a block of responses (images × voxels) holds NaN or infinite values."""
    bad = ~np.isfinite(responses).all(axis=0)
    if bad.any():
        raise InputError(
            f"subject {subject}'s responses hold NaN or infinite values in {int(bad.sum())} of "
            f"{bad.size} voxels; drop or impute those voxels before the analysis."
        )
