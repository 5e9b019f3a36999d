"""fMRI responses of one subject to a stimulus set: the container every brain analysis takes.

The loaders (:mod:`repscope.io.nsd`, the Algonauts reader) return a :class:`BrainResponses`;
model–brain alignment and the brain's dimension profiles read it. Rows are images (one row per
distinct stimulus, repeats already averaged), columns are voxels (or surface vertices) of the
union of the requested ROIs; ``roi_masks`` says which columns belong to which ROI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from repscope._validation import InputError

__all__ = ["BrainResponses", "noise_ceiling"]


def noise_ceiling(ncsnr: npt.ArrayLike, n_repeats: npt.ArrayLike) -> np.ndarray:
    """Noise ceiling per voxel, as a fraction of variance, for repeat-averaged responses.

    NSD's definition (Allen et al. 2022): NC = ncsnr² / (ncsnr² + 1/n) for responses averaged
    over n trials; when images carry different repeat counts, 1/n is the mean of 1/n_i over the
    images, i.e. (A/3 + B/2 + C)/(A + B + C) for A, B, C images with 3, 2, 1 repeats. NSD
    reports it in percent (100 × this value).

    Parameters
    ----------
    ncsnr : array-like of shape (n_voxels,)
        Noise-ceiling signal-to-noise ratio (signal sd / noise sd of single trials), >= 0.
    n_repeats : array-like of int, shape (n_images,)
        Trials averaged for each image in the set the ceiling is wanted for (>= 1).

    Returns
    -------
    ndarray of shape (n_voxels,)
        In [0, 1); NaN where ``ncsnr`` is NaN (unknown).

    Examples
    --------
    >>> noise_ceiling([1.0, 0.0], [3, 3, 3]).round(3)
    array([0.75, 0.  ])
    >>> round(float(noise_ceiling([1.0], [3, 1])[0]), 6)  # 1/n = (1/3 + 1) / 2 = 2/3
    0.6
    """
    snr2 = np.square(np.asarray(ncsnr, dtype=np.float64))
    n = np.asarray(n_repeats, dtype=np.float64)
    if n.ndim != 1 or n.size == 0 or np.any(n < 1):
        raise InputError(
            "n_repeats must be a non-empty 1-D array of counts >= 1; pass the trials averaged "
            "per image."
        )
    inv_n = float(np.mean(1.0 / n))
    return snr2 / (snr2 + inv_n)


@dataclass(frozen=True)
class BrainResponses:
    """Repeat-averaged fMRI responses of one subject: images × voxels.

    Attributes
    ----------
    subject : int
        1-based subject number (NSD: 1–8).
    stimulus_ids : ndarray of str, shape (n_images,)
        ``"nsd-IIIII"`` with IIIII the 0-based nsdId, the ids that ``repscope extract`` gives
        NSD images, so embeddings and responses match by id.
    responses : ndarray of float32, shape (n_images, n_voxels)
        Per-session z-scored responses averaged over each image's repeats (NSD), or the
        dataset's own values (Algonauts).
    n_repeats : ndarray of int, shape (n_images,)
        Trials averaged per image (0 where the dataset does not say).
    coordinates : ndarray of int, shape (n_voxels, 3)
        Voxel indices (i, j, k) in the subject's volume; for surface data
        (hemisphere 0 = lh / 1 = rh, vertex index, 0).
    ncsnr : ndarray of float, shape (n_voxels,)
        NSD's noise-ceiling SNR per voxel; NaN where unknown.
    roi_masks : dict of str to ndarray of bool, shape (n_voxels,)
        Which columns belong to each requested ROI, in request order (ROIs may overlap).
    shared : ndarray of bool, shape (n_images,)
        Image is one of NSD's shared 1000 (seen by every subject).
    space : str
        ``"func1pt8mm"``, ``"func1mm"``, ``"fsaverage"`` or ``"algonauts"``.
    source : dict
        Provenance: root, betas version, sessions read, file format, ``simulated`` flag.
    """

    subject: int
    stimulus_ids: np.ndarray
    responses: np.ndarray
    n_repeats: np.ndarray
    coordinates: np.ndarray
    ncsnr: np.ndarray
    roi_masks: Mapping[str, np.ndarray]
    shared: np.ndarray
    space: str
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        """Rows: distinct images."""
        return int(self.responses.shape[0])

    @property
    def n_voxels(self) -> int:
        """Columns: voxels of the union of the ROIs."""
        return int(self.responses.shape[1])

    @property
    def rois(self) -> tuple[str, ...]:
        """ROI names, in request order."""
        return tuple(self.roi_masks)

    @property
    def nsd_ids(self) -> np.ndarray:
        """0-based nsdIds parsed from ``stimulus_ids``, shape (n_images,)."""
        return np.array([int(s.rsplit("-", 1)[1]) for s in self.stimulus_ids], dtype=np.int64)

    def noise_ceiling(self, rows: npt.ArrayLike | None = None) -> np.ndarray:
        """Noise ceiling per voxel (fraction) for the images ``rows`` (default all), (n_voxels,)."""
        n = self.n_repeats if rows is None else self.n_repeats[np.asarray(rows)]
        if np.any(n < 1):
            return np.full(self.n_voxels, np.nan)
        return noise_ceiling(self.ncsnr, n)

    def roi(self, name: str) -> BrainResponses:
        """The same images restricted to the voxels of ROI ``name``."""
        if name not in self.roi_masks:
            raise InputError(
                f"ROI {name!r} is not in these responses (have: {', '.join(self.rois)}); "
                "load it first, e.g. load_nsd(..., rois=[...])."
            )
        cols = np.flatnonzero(self.roi_masks[name])
        return BrainResponses(
            subject=self.subject,
            stimulus_ids=self.stimulus_ids,
            responses=self.responses[:, cols],
            n_repeats=self.n_repeats,
            coordinates=self.coordinates[cols],
            ncsnr=self.ncsnr[cols],
            roi_masks={name: np.ones(cols.size, dtype=bool)},
            shared=self.shared,
            space=self.space,
            source=self.source,
        )
