"""The Natural Scenes Dataset's published file layout, and writers for its file formats.

One place names every NSD path (the loader reads them, the simulator and the test fixtures
write them), so a path can only be wrong everywhere or nowhere. The writers produce files in
NSD's own formats with the libraries NSD's files are read with:

========================================  ====================================================
file                                      format
========================================  ====================================================
``nsd_expdesign.mat``                     MATLAB v5 (``scipy.io.savemat``); ``masterordering``
                                          (1, n_trials), ``subjectim`` (n_subjects, n_images),
                                          ``sharedix`` (1, n_shared); **all 1-based**
``nsd_stim_info_merged.csv``              CSV, first column the row index
``roi/<family>.nii.gz``, ``brainmask``    NIfTI-1 volumes (int16 labels, −1 outside the brain)
``<family>.mgz.ctab``                     text lines ``"<id> <name>"`` from ``0 Unknown``
``betas_sessionNN.nii.gz``                NIfTI-1 int16 (X, Y, Z, trials), % signal change × 300
``betas_sessionNN.hdf5``                  HDF5 dataset ``betas`` int16 of h5py shape
                                          (trials, Z, Y, X), i.e. the NIfTI array transposed
``ncsnr.nii.gz``                          NIfTI-1 float32 (X, Y, Z)
``nsd_stimuli.hdf5``                      HDF5 dataset ``imgBrick`` uint8 (n_images, H, W, 3)
========================================  ====================================================

Writes are atomic (temporary file, then rename), so an interrupted writer never leaves a
file that a reader would take for a finished one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from repscope.io.atomic import atomic_write

__all__ = [
    "DEFAULT_BETAS",
    "DEFAULT_SPACE",
    "NSD_VOXEL_SIZE_MM",
    "NsdLayout",
    "write_betas_session",
    "write_ctab",
    "write_expdesign",
    "write_imgbrick",
    "write_stim_info",
    "write_volume",
]

DEFAULT_BETAS = "betas_fithrf_GLMdenoise_RR"
DEFAULT_SPACE = "func1pt8mm"
NSD_VOXEL_SIZE_MM = 1.8
#: ``int16`` betas hold percent signal change times this factor.
BETA_SCALE = 300.0


@dataclass(frozen=True)
class NsdLayout:
    """Paths of NSD's files under one root, as NSD publishes them.

    Parameters
    ----------
    root : path-like
        The folder holding ``nsddata/``, ``nsddata_betas/`` and ``nsddata_stimuli/``.

    Examples
    --------
    >>> layout = NsdLayout("/data/nsd")
    >>> layout.betas_session(1, 3).as_posix()
    '/data/nsd/nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session03.nii.gz'
    """

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def expdesign(self) -> Path:
        """``nsddata/experiments/nsd/nsd_expdesign.mat``."""
        return self.root / "nsddata" / "experiments" / "nsd" / "nsd_expdesign.mat"

    @property
    def stim_info(self) -> Path:
        """``nsddata/experiments/nsd/nsd_stim_info_merged.csv``."""
        return self.root / "nsddata" / "experiments" / "nsd" / "nsd_stim_info_merged.csv"

    @property
    def stimuli(self) -> Path:
        """``nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5``."""
        return self.root / "nsddata_stimuli" / "stimuli" / "nsd" / "nsd_stimuli.hdf5"

    def subject_dir(self, subject: int, space: str = DEFAULT_SPACE) -> Path:
        """``nsddata/ppdata/subjAA/<space>``."""
        return self.root / "nsddata" / "ppdata" / _subj(subject) / space

    def brainmask(self, subject: int, space: str = DEFAULT_SPACE) -> Path:
        """``nsddata/ppdata/subjAA/<space>/brainmask.nii.gz``."""
        return self.subject_dir(subject, space) / "brainmask.nii.gz"

    def roi_volume(self, subject: int, family: str, space: str = DEFAULT_SPACE) -> Path:
        """``nsddata/ppdata/subjAA/<space>/roi/<family>.nii.gz`` (both hemispheres)."""
        return self.subject_dir(subject, space) / "roi" / f"{family}.nii.gz"

    def roi_dir(self, subject: int, space: str = DEFAULT_SPACE) -> Path:
        """``nsddata/ppdata/subjAA/<space>/roi``."""
        return self.subject_dir(subject, space) / "roi"

    def ctab(self, subject: int, family: str) -> Path:
        """``nsddata/freesurfer/subjAA/label/<family>.mgz.ctab``: the family's label names."""
        return (
            self.root / "nsddata" / "freesurfer" / _subj(subject) / "label" / f"{family}.mgz.ctab"
        )

    def betas_dir(
        self, subject: int, betas: str = DEFAULT_BETAS, space: str = DEFAULT_SPACE
    ) -> Path:
        """``nsddata_betas/ppdata/subjAA/<space>/<betas>``."""
        return self.root / "nsddata_betas" / "ppdata" / _subj(subject) / space / betas

    def betas_session(
        self,
        subject: int,
        session: int,
        betas: str = DEFAULT_BETAS,
        space: str = DEFAULT_SPACE,
        suffix: str = ".nii.gz",
    ) -> Path:
        """``.../<betas>/betas_sessionNN<suffix>``, NN the 1-based session number."""
        return self.betas_dir(subject, betas, space) / f"betas_session{session:02d}{suffix}"

    @property
    def simulation_record(self) -> Path:
        """``simulation.json``: present only in a tree written by repscope's simulator."""
        return self.root / "simulation.json"

    def ncsnr(self, subject: int, betas: str = DEFAULT_BETAS, space: str = DEFAULT_SPACE) -> Path:
        """``.../<betas>/ncsnr.nii.gz``: the noise-ceiling signal-to-noise ratio per voxel."""
        return self.betas_dir(subject, betas, space) / "ncsnr.nii.gz"


def _subj(subject: int) -> str:
    return f"subj{int(subject):02d}"


def nsd_affine(voxel_size_mm: float = NSD_VOXEL_SIZE_MM) -> np.ndarray:
    """Voxel-to-world affine of an isotropic volume, shape (4, 4), millimetres."""
    return np.diag([voxel_size_mm, voxel_size_mm, voxel_size_mm, 1.0])


def write_volume(
    path: str | os.PathLike[str], data: npt.ArrayLike, affine: np.ndarray | None = None
) -> None:
    """Write a NIfTI-1 volume (``.nii`` or ``.nii.gz``) keeping ``data``'s dtype.

    Parameters
    ----------
    path : path-like
    data : array-like of shape (X, Y, Z) or (X, Y, Z, T)
    affine : ndarray of shape (4, 4), optional
        Default: 1.8 mm isotropic voxels, as NSD's ``func1pt8mm`` space.
    """
    import nibabel as nib

    arr = np.asarray(data)
    img = nib.Nifti1Image(arr, nsd_affine() if affine is None else affine)
    img.header.set_data_dtype(arr.dtype)
    with atomic_write(path) as f:
        f.write(img.to_bytes() if not str(path).endswith(".gz") else _gzip(img.to_bytes()))


def _gzip(raw: bytes) -> bytes:
    import gzip

    return gzip.compress(raw, compresslevel=1, mtime=0)


def write_betas_session(path: str | os.PathLike[str], betas: npt.ArrayLike) -> None:
    """Write one session of int16 betas, as NIfTI (``.nii.gz``) or NSD's HDF5 (``.hdf5``).

    Parameters
    ----------
    path : path-like
        ``betas_sessionNN.nii.gz`` or ``betas_sessionNN.hdf5``.
    betas : array-like of int16, shape (X, Y, Z, n_trials)
        Percent signal change × 300, in the NIfTI axis order; the HDF5 file stores the
        transpose, h5py shape (n_trials, Z, Y, X), as NSD's files do.
    """
    arr = np.asarray(betas)
    if arr.dtype != np.int16 or arr.ndim != 4:
        raise ValueError(
            f"betas must be int16 of shape (X, Y, Z, trials), got {arr.dtype} {arr.shape}"
        )
    if str(path).endswith((".hdf5", ".h5")):
        _write_hdf5(path, {"betas": np.ascontiguousarray(arr.transpose(3, 2, 1, 0))})
    else:
        write_volume(path, arr)


def _write_hdf5(path: str | os.PathLike[str], datasets: Mapping[str, np.ndarray]) -> None:
    import h5py

    with atomic_write(path) as f:
        with h5py.File(f, "w") as h5:
            for name, data in datasets.items():
                h5.create_dataset(name, data=data, track_times=False)


def write_imgbrick(path: str | os.PathLike[str], images: npt.ArrayLike) -> None:
    """Write ``nsd_stimuli.hdf5``: dataset ``imgBrick`` uint8 of shape (n_images, H, W, 3)."""
    _write_hdf5(path, {"imgBrick": np.asarray(images, dtype=np.uint8)})


def write_expdesign(
    path: str | os.PathLike[str],
    masterordering: npt.ArrayLike,
    subjectim: npt.ArrayLike,
    sharedix: npt.ArrayLike,
) -> None:
    """Write ``nsd_expdesign.mat`` (MATLAB v5) with NSD's 1-based index arrays.

    Parameters
    ----------
    masterordering : array-like of int, shape (n_trials,)
        For each trial, the 1-based column of ``subjectim`` shown (NSD: 30 000 trials).
    subjectim : array-like of int, shape (n_subjects, n_images_per_subject)
        1-based nsdIds per subject; the first ``len(sharedix)`` columns are the shared images.
    sharedix : array-like of int, shape (n_shared,)
        1-based nsdIds of the images every subject saw.
    """
    from scipy.io import savemat

    content = {
        "masterordering": np.asarray(masterordering, dtype=np.float64).reshape(1, -1),
        "subjectim": np.asarray(subjectim, dtype=np.float64),
        "sharedix": np.asarray(sharedix, dtype=np.float64).reshape(1, -1),
    }
    with atomic_write(path) as f:
        savemat(f, content)


def write_stim_info(path: str | os.PathLike[str], table: Any) -> None:
    """Write ``nsd_stim_info_merged.csv`` from a pandas DataFrame (index = first column)."""
    with atomic_write(path) as f:
        f.write(table.to_csv().encode())


def write_ctab(path: str | os.PathLike[str], labels: Mapping[int, str]) -> None:
    """Write a label table ``<family>.mgz.ctab``: lines ``"<id> <name>"``, ``0 Unknown`` first."""
    names = {0: "Unknown", **{int(k): str(v) for k, v in labels.items()}}
    text = "".join(f"{k} {names[k]}\n" for k in sorted(names))
    with atomic_write(path) as f:
        f.write(text.encode())
