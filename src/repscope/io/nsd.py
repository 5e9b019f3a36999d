"""Load the Natural Scenes Dataset's single-trial betas as repeat-averaged ROI responses.

:func:`load_nsd` reads a subject's ``betas_sessionNN`` files (NIfTI or HDF5) one session at a
time, keeps only the voxels of the requested ROIs, z-scores each voxel within each session over
that session's trials (the int16 betas are percent signal change × 300; z-scores do not depend
on that factor), and averages each image's repeats. Peak memory is about one session's ROI
bounding box plus the result.

Trials map to images through ``nsd_expdesign.mat``, whose indices are all 1-based: trial t of
subject s shows the 0-based nsdId ``subjectim[s-1, masterordering[t]-1] - 1``.

References
----------
Allen, E. J. et al. (2022). A massive 7T fMRI dataset to bridge cognitive neuroscience and
artificial intelligence. Nature Neuroscience 25, 116–126. (Methods: "GLM single-trial betas",
"Noise ceiling".)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np

from repscope._progress import progress_bar
from repscope._validation import InputError
from repscope.io._nsd_files import (
    SessionFile,
    family_labels,
    find_sessions,
    read_design,
    read_label_volume,
    read_session,
    read_volume,
)
from repscope.io._roi_names import RoiRequest, resolve_rois
from repscope.io.nsd_layout import DEFAULT_BETAS, DEFAULT_SPACE, NsdLayout
from repscope.io.responses import BrainResponses

__all__ = ["available_rois", "load_nsd", "nsd_trial_ids", "zscore_session"]

PathLike = str | os.PathLike[str]


def available_rois(
    root: PathLike, subject: int, space: str = DEFAULT_SPACE
) -> dict[str, list[str]]:
    """ROI label names per family present on disk for one subject.

    Parameters
    ----------
    root : path-like
        NSD root (holding ``nsddata/``).
    subject : int
        1-based subject number.
    space : str
        Volume space folder, default ``"func1pt8mm"``.

    Returns
    -------
    dict of str to list of str
        Family (``"prf-visualrois"``, ``"floc-bodies"``, ...) to its label names (ids > 0, in
        id order). Any name, ``"family:name"``, family, or ``V1``/``V2``/``V3`` alias built from
        these can be passed to :func:`load_nsd` as an ROI.
    """
    labels = family_labels(NsdLayout(root), int(subject), space)
    return {family: [t[i] for i in sorted(t) if i > 0] for family, t in labels.items()}


def nsd_trial_ids(root: PathLike, subject: int) -> np.ndarray:
    """0-based nsdId shown on every trial of the design to ``subject``.

    Parameters
    ----------
    root : path-like
        NSD root (holding ``nsddata/experiments/nsd/nsd_expdesign.mat``).
    subject : int
        1-based subject number, within the rows of ``subjectim``.

    Returns
    -------
    ndarray of int64, shape (n_trials,)
        Trial t (0-based, counted across sessions) showed image ``nsd_trial_ids(...)[t]``; NSD's
        design has 30 000 trials, of which a subject's sessions cover the first 750 × n_sessions.
    """
    return read_design(NsdLayout(root)).trial_nsd_ids(subject)


def zscore_session(betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score each voxel over the trials of one session (population sd, ddof=0).

    Z-scores do not change when the betas are divided by 300 to give percent signal change,
    so the integers are z-scored directly: their sums and sums of squares are exact in int64,
    which makes the mean, the variance and the zero-variance test free of rounding error.

    Parameters
    ----------
    betas : ndarray of int16, shape (n_trials, n_voxels)
        Raw NSD betas (percent signal change × 300).

    Returns
    -------
    z : ndarray of float32, shape (n_trials, n_voxels)
        Z-scores (dimensionless); 0 for voxels constant over the session.
    constant : ndarray of bool, shape (n_voxels,)
        Voxels with zero variance in this session.
    """
    n = betas.shape[0]
    total = betas.sum(axis=0, dtype=np.int64)
    squares = np.zeros(betas.shape[1], dtype=np.int64)
    for block in _trial_blocks(n):
        values = betas[block].astype(np.int64)
        squares += np.einsum("tv,tv->v", values, values)
    n2_var = n * squares - total * total  # n² × variance, an exact integer
    constant = n2_var == 0
    mean = total / n
    sd = np.sqrt(np.where(constant, n * n, n2_var)) / n  # 1 where constant: no 0/0
    z = np.empty(betas.shape, dtype=np.float32)
    for block in _trial_blocks(n):  # float64 only a block of trials at a time
        z[block] = (betas[block] - mean) / sd
    z[:, constant] = 0.0
    return z, constant


def _trial_blocks(n_trials: int, size: int = 128) -> list[slice]:
    return [slice(start, start + size) for start in range(0, n_trials, size)]


def load_nsd(
    root: PathLike,
    subject: int,
    rois: str | Iterable[str] = ("nsdgeneral",),
    *,
    betas: str = DEFAULT_BETAS,
    space: str = DEFAULT_SPACE,
    sessions: Iterable[int] | None = None,
    fmt: Literal["auto", "nifti", "hdf5"] = "auto",
    progress: bool = False,
) -> BrainResponses:
    """Repeat-averaged, per-session z-scored NSD responses of one subject in some ROIs.

    Parameters
    ----------
    root : path-like
        NSD root holding ``nsddata/`` and ``nsddata_betas/`` as NSD publishes them.
    subject : int
        1-based subject number (NSD: 1–8).
    rois : str or iterable of str
        ROI requests: a label name (``"EBA"``, ``"V1v"``), ``"family:name"``, a family name
        (every label of ``"floc-bodies"``), or ``"V1"``/``"V2"``/``"V3"`` (ventral ∪ dorsal).
        Columns are the union of their voxels; see :func:`available_rois`.
    betas : str
        Betas version folder, default ``"betas_fithrf_GLMdenoise_RR"`` (NSD's b3).
    space : str
        Volume space folder, default ``"func1pt8mm"``.
    sessions : iterable of int, optional
        1-based session numbers to read (default all found); images are those shown in them.
    fmt : {"auto", "nifti", "hdf5"}
        Session file format; ``"auto"`` reads ``.hdf5`` where both formats exist.
    progress : bool
        Show a progress bar over sessions.

    Returns
    -------
    BrainResponses
        Rows: every image shown in the sessions read, sorted by nsdId; ``responses`` float32 of
        shape (n_images, n_voxels) in z-score units (each session's trials have mean 0 and
        sd 1 per voxel), averaged over ``n_repeats`` trials; columns in ``np.nonzero`` order of
        the ROI union over (X, Y, Z), ``coordinates`` their voxel indices; ``ncsnr`` from
        ``ncsnr.nii.gz``. ``source["zero_variance_voxels"]`` counts, per session, the voxels
        constant over that session (set to 0); ``source["simulated"]`` is True where the root
        holds the simulator's ``simulation.json``.

    Raises
    ------
    InputError
        A missing file (named with its NSD folder), an unknown or ambiguous ROI, an empty ROI,
        a subject or session out of range, betas that are not int16 (X, Y, Z, trials), volumes
        of different shapes, or more trials than the design holds.

    Examples
    --------
    >>> data = load_nsd("/data/nsd", 1, ["EBA", "V1"])  # doctest: +SKIP
    >>> data.roi("EBA").responses.shape  # doctest: +SKIP
    (10000, 1250)
    """
    layout = NsdLayout(root)
    if fmt not in ("auto", "nifti", "hdf5"):
        raise InputError(f"fmt={fmt!r} is not a session format; pass 'auto', 'nifti' or 'hdf5'.")
    design = read_design(layout)
    subject = design.check_subject(subject)
    trial_ids = design.trial_nsd_ids(subject)
    roi_masks, shape = _roi_masks(layout, subject, space, rois)
    union = np.logical_or.reduce(list(roi_masks.values()))
    files = find_sessions(layout, subject, betas, space, fmt, shape)
    chosen = _choose_sessions(files, sessions, len(trial_ids))
    ncsnr = _ncsnr(layout, subject, betas, space, shape)[union]  # checked before the slow part
    session_ids = {f.session: trial_ids[_trial_range(files, f.session)] for f in chosen}
    coords = np.argwhere(union)  # row-major over (X, Y, Z): the np.nonzero order
    with progress_bar(
        len(chosen), f"NSD subj{subject:02d}", unit="session", enabled=progress
    ) as advance:
        image_ids, means, counts, zero_variance = _average_sessions(
            chosen, session_ids, coords, advance
        )
    return BrainResponses(
        subject=subject,
        stimulus_ids=np.array([f"nsd-{i:05d}" for i in image_ids]),
        responses=means,
        n_repeats=counts,
        coordinates=coords.astype(np.int64),
        ncsnr=ncsnr.astype(np.float64),
        roi_masks={name: mask[union] for name, mask in roi_masks.items()},
        shared=np.isin(image_ids, design.shared_nsd_ids()),
        space=space,
        source={
            "dataset": "nsd",
            "root": str(layout.root),
            "betas": betas,
            "sessions": [f.session for f in chosen],
            "formats": sorted({f.format for f in chosen}),
            "n_trials": int(counts.sum()),
            "zero_variance_voxels": zero_variance,
            "simulated": layout.simulation_record.is_file(),
        },
    )


def _average_sessions(
    chosen: list[SessionFile],
    session_ids: dict[int, np.ndarray],
    coords: np.ndarray,
    advance: Callable[[int], None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, int]]:
    """Read, z-score and accumulate one session at a time.

    Returns the sorted nsdIds shown, their mean z-scores (n_images, n_voxels) float32, their
    trial counts, and the number of zero-variance voxels per session.
    """
    image_ids = np.unique(np.concatenate(list(session_ids.values())))
    sums = np.zeros((image_ids.size, coords.shape[0]), dtype=np.float32)
    counts = np.zeros(image_ids.size, dtype=np.int64)
    zero_variance = {}
    for session in chosen:
        z, constant = zscore_session(read_session(session, coords))
        rows = np.searchsorted(image_ids, session_ids[session.session])
        _accumulate(sums, counts, rows, z)
        zero_variance[session.session] = int(constant.sum())
        advance(1)
    sums /= counts[:, None]  # every image has >= 1 trial: it was found in these sessions
    return image_ids, sums, counts, zero_variance


def _ncsnr(
    layout: NsdLayout, subject: int, betas: str, space: str, shape: tuple[int, int, int]
) -> np.ndarray:
    """The (X, Y, Z) ncsnr volume, checked against the ROI volumes' shape."""
    path = layout.ncsnr(subject, betas, space)
    ncsnr = read_volume(path, layout, f"the {betas} ncsnr volume")
    if ncsnr.shape != shape:
        raise InputError(
            f"{path} has shape {ncsnr.shape} but the ROI volumes have {shape}; "
            "pass an ncsnr volume of the same space."
        )
    return ncsnr


def _roi_masks(
    layout: NsdLayout, subject: int, space: str, rois: str | Iterable[str]
) -> tuple[dict[str, np.ndarray], tuple[int, int, int]]:
    """Boolean (X, Y, Z) mask per requested ROI, and the volume shape they share."""
    requests = resolve_rois(rois, family_labels(layout, subject, space))
    volumes = {}
    for family in dict.fromkeys(r.family for r in requests):
        path = layout.roi_volume(subject, family, space)
        volumes[family] = read_label_volume(path, layout, f"the {family} ROI volume")
    shapes = {v.shape for v in volumes.values()}
    if len(shapes) > 1:
        detail = ", ".join(f"{family} {v.shape}" for family, v in volumes.items())
        raise InputError(
            f"ROI volumes of subj{subject:02d} differ in shape ({detail}); pass ROIs of one space."
        )
    masks = {r.name: _mask(r, volumes[r.family]) for r in requests}
    for name, mask in masks.items():
        if not mask.any():
            raise InputError(
                f"ROI {name!r} has no voxels in subj{subject:02d}'s volumes under "
                f"{layout.roi_dir(subject, space)}; "
                "pick another ROI (see available_rois)."
            )
    return masks, shapes.pop()


def _mask(request: RoiRequest, volume: np.ndarray) -> np.ndarray:
    if request.ids is None:
        return volume > 0
    return np.isin(volume, request.ids)


def _choose_sessions(
    files: list[SessionFile], sessions: Iterable[int] | None, n_design_trials: int
) -> list[SessionFile]:
    """The session files to read, after checking every file's trials fit the design."""
    total = sum(f.n_trials for f in files)
    if total > n_design_trials:
        raise InputError(
            f"{len(files)} session files hold {total} trials but nsd_expdesign.mat's "
            f"masterordering has {n_design_trials}; remove the extra betas_session files."
        )
    if sessions is None:
        return files
    wanted = [int(s) for s in sessions]
    bad = [s for s in wanted if not 1 <= s <= len(files)]
    if bad or not wanted or len(set(wanted)) != len(wanted):
        raise InputError(
            f"sessions={wanted} must be distinct session numbers from 1 to {len(files)} "
            "(the betas_session files found); pass a subset of those."
        )
    return [files[s - 1] for s in sorted(wanted)]


def _trial_range(files: list[SessionFile], session: int) -> slice:
    """Design trials of a session: its trial count, after every earlier session's."""
    start = sum(f.n_trials for f in files[: session - 1])
    return slice(start, start + files[session - 1].n_trials)


def _accumulate(sums: np.ndarray, counts: np.ndarray, rows: np.ndarray, z: np.ndarray) -> None:
    """``sums[rows[t]] += z[t]`` for every trial t, repeats within the session included."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    first = np.searchsorted(sorted_rows, sorted_rows, side="left")
    occurrence = np.arange(rows.size) - first  # 0 for an image's first trial here, 1, 2, ...
    for k in range(int(occurrence.max()) + 1 if rows.size else 0):
        trials = order[occurrence == k]  # at most one trial per image: fancy += is safe
        sums[rows[trials]] += z[trials]
        counts[rows[trials]] += 1
