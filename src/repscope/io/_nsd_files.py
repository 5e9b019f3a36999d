"""Readers for NSD's individual files: design, label tables and volumes, session betas.

Each reader checks what it reads and turns every problem into a one-line
:class:`~repscope._validation.InputError` that names the file. :mod:`repscope.io.nsd`
combines them into :func:`~repscope.io.nsd.load_nsd`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from repscope._validation import InputError
from repscope.io._source_common import short
from repscope.io.nsd_layout import NsdLayout

__all__ = [
    "ROI_FAMILIES",
    "NsdDesign",
    "SessionFile",
    "family_labels",
    "find_sessions",
    "read_design",
    "read_label_volume",
    "read_session",
    "read_volume",
    "require_file",
]

#: The label families NSD publishes per subject, in the order messages list them.
ROI_FAMILIES = (
    "prf-visualrois",
    "floc-bodies",
    "floc-faces",
    "floc-places",
    "floc-words",
    "streams",
    "nsdgeneral",
    "Kastner2015",
    "HCP_MMP1",
)
_SESSION_NAME = re.compile(r"^betas_session(\d+)\.(nii\.gz|hdf5)$")
_SUFFIX = {"nifti": ".nii.gz", "hdf5": ".hdf5"}
Format = Literal["nifti", "hdf5"]


def require_file(path: Path, layout: NsdLayout, what: str) -> Path:
    """``path`` if it is a file, else an InputError naming it and its NSD folder."""
    if not path.is_file():
        raise InputError(
            f"{path} not found: {what} belongs in NSD's {_folder(path, layout)}/ folder; "
            "download it there or pass the NSD root that holds it."
        )
    return path


def _folder(path: Path, layout: NsdLayout) -> str:
    parent = path.parent
    return (
        parent.relative_to(layout.root) if parent.is_relative_to(layout.root) else parent
    ).as_posix()


def _import(module: str, path: Path) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(
            f"reading {path} needs {module}, which is not installed; pip install {module}."
        ) from None


@dataclass(frozen=True)
class NsdDesign:
    """NSD's experimental design, with the file's 1-based indices checked.

    Attributes
    ----------
    masterordering : ndarray of int64, shape (n_trials,)
        For each trial, the 1-based column of ``subjectim`` shown.
    subjectim : ndarray of int64, shape (n_subjects, n_images)
        1-based nsdIds each subject saw.
    sharedix : ndarray of int64, shape (n_shared,)
        1-based nsdIds of the images every subject saw.
    """

    masterordering: np.ndarray
    subjectim: np.ndarray
    sharedix: np.ndarray

    @property
    def n_subjects(self) -> int:
        """Rows of ``subjectim``."""
        return int(self.subjectim.shape[0])

    def check_subject(self, subject: int) -> int:
        """``subject`` as an int in 1..n_subjects, else an InputError giving the range."""
        valid = isinstance(subject, (int, np.integer)) and not isinstance(subject, bool)
        if not valid or not 1 <= int(subject) <= self.n_subjects:
            raise InputError(
                f"subject={subject!r} is out of range; nsd_expdesign.mat has "
                f"{self.n_subjects} subjects, pass an int from 1 to {self.n_subjects}."
            )
        return int(subject)

    def trial_nsd_ids(self, subject: int) -> np.ndarray:
        """0-based nsdId shown on each trial to ``subject``, shape (n_trials,)."""
        row = self.subjectim[self.check_subject(subject) - 1]
        return row[self.masterordering - 1] - 1

    def shared_nsd_ids(self) -> np.ndarray:
        """0-based nsdIds of the shared images, shape (n_shared,)."""
        return self.sharedix - 1


def read_design(layout: NsdLayout) -> NsdDesign:
    """Read and check ``nsd_expdesign.mat``."""
    from scipy.io import loadmat

    path = require_file(layout.expdesign, layout, "the experiment design nsd_expdesign.mat")
    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises many types for a damaged .mat
        raise InputError(
            f"{path} is not a readable MATLAB file ({short(exc)}); re-download it."
        ) from None
    arrays = {
        key: _index_array(mat, key, path) for key in ("masterordering", "subjectim", "sharedix")
    }
    subjectim = arrays["subjectim"]
    if subjectim.ndim != 2:
        raise InputError(
            f"{path}: subjectim has shape {subjectim.shape}, not (n_subjects, n_images); "
            "re-download it."
        )
    order = arrays["masterordering"].ravel()
    if order.max() > subjectim.shape[1]:
        raise InputError(
            f"{path}: masterordering reaches {order.max()} but subjectim has {subjectim.shape[1]} "
            "columns; the file is inconsistent, re-download it."
        )
    return NsdDesign(order, subjectim, arrays["sharedix"].ravel())


def _index_array(mat: dict[str, Any], key: str, path: Path) -> np.ndarray:
    """A 1-based index array of the design: present, integral and >= 1."""
    if key not in mat:
        raise InputError(f"{path} has no variable {key!r}; pass NSD's nsd_expdesign.mat.")
    values = np.asarray(mat[key])
    if values.size == 0 or not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{path}: {key} is empty or not numeric; pass NSD's nsd_expdesign.mat.")
    as_int = values.astype(np.int64)
    if not np.array_equal(as_int, values) or as_int.min() < 1:
        raise InputError(
            f"{path}: {key} must hold 1-based integer indices (>= 1); pass NSD's nsd_expdesign.mat."
        )
    return as_int


def read_ctab(path: Path) -> dict[int, str]:
    """``{id: name}`` from a FreeSurfer label table (first two fields of each line)."""
    table: dict[int, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 2 or not fields[0].lstrip("-").isdigit() or int(fields[0]) in table:
            raise InputError(
                f"{path} line {number} is not a new '<id> <name>' entry ({line.strip()!r}); "
                "re-download the label table."
            )
        table[int(fields[0])] = fields[1]
    return table


def family_labels(layout: NsdLayout, subject: int, space: str) -> dict[str, dict[int, str]]:
    """Label tables of the ROI families with a volume for ``subject``, in ROI_FAMILIES order."""
    roi_dir = layout.roi_dir(subject, space)
    if not roi_dir.is_dir():
        raise InputError(
            f"{roi_dir} not found: the ROI label volumes belong in NSD's "
            f"{_folder(roi_dir / 'x', layout)}/ folder; download it or pass the NSD root that "
            "holds it."
        )
    labels = {}
    for family in ROI_FAMILIES:
        if layout.roi_volume(subject, family, space).is_file():
            ctab = require_file(layout.ctab(subject, family), layout, f"the {family} label table")
            labels[family] = read_ctab(ctab)
    if not labels:
        raise InputError(
            f"{roi_dir} holds none of NSD's ROI volumes ({', '.join(ROI_FAMILIES)}.nii.gz); "
            "download nsddata/ppdata/subjAA/<space>/roi."
        )
    return labels


def read_volume(path: Path, layout: NsdLayout, what: str) -> np.ndarray:
    """A 3-D NIfTI volume's array, in its stored dtype, shape (X, Y, Z)."""
    nib = _import("nibabel", path)
    require_file(path, layout, what)
    try:
        data = np.asanyarray(nib.load(path).dataobj)
    except Exception as exc:  # nibabel raises ImageFileError, OSError, EOFError, ...
        raise InputError(
            f"{path} is not a readable NIfTI file ({short(exc)}); re-download it."
        ) from None
    if data.ndim != 3:
        raise InputError(
            f"{path} has shape {data.shape}, not a 3-D volume (X, Y, Z); re-download it."
        )
    return data


def read_label_volume(path: Path, layout: NsdLayout, what: str) -> np.ndarray:
    """An ROI label volume as int64 (−1 outside the brain, 0 unlabelled), shape (X, Y, Z)."""
    data = read_volume(path, layout, what)
    labels = np.rint(data).astype(np.int64)
    if not np.array_equal(labels, data):
        raise InputError(f"{path} holds non-integer labels; pass NSD's integer ROI volume.")
    return labels


@dataclass(frozen=True)
class SessionFile:
    """One ``betas_sessionNN`` file, its format and trial count (read from its header)."""

    session: int
    path: Path
    format: Format
    n_trials: int


def find_sessions(
    layout: NsdLayout,
    subject: int,
    betas: str,
    space: str,
    fmt: Literal["auto", "nifti", "hdf5"],
    volume_shape: tuple[int, int, int],
) -> list[SessionFile]:
    """Every session file of the betas folder, numbered 1..N without gaps, headers checked."""
    folder = layout.betas_dir(subject, betas, space)
    if not folder.is_dir():
        raise InputError(
            f"{folder} not found: the {betas} betas belong in NSD's {_folder(folder, layout)}/ "
            "folder; download them or pass the NSD root that holds them."
        )
    found: dict[str, dict[int, Path]] = {"nifti": {}, "hdf5": {}}
    for path in folder.iterdir():
        match = _SESSION_NAME.match(path.name)
        if match:
            found["hdf5" if match.group(2) == "hdf5" else "nifti"][int(match.group(1))] = path
    chosen: dict[int, tuple[Path, Format]] = {}
    for kind in ("nifti", "hdf5"):  # hdf5 second: under "auto" it wins where both exist
        if fmt in ("auto", kind):
            chosen.update({n: (p, kind) for n, p in found[kind].items()})
    suffixes = " or ".join(_SUFFIX[k] for k in _SUFFIX if fmt in ("auto", k))
    if not chosen:
        raise InputError(
            f"{folder} holds no betas_sessionNN{suffixes} files; download NSD's session betas "
            "there (fmt='auto' reads either format)."
        )
    for n in range(1, max(chosen) + 1):
        if n not in chosen:
            missing = folder / f"betas_session{n:02d}{_SUFFIX['nifti' if fmt == 'auto' else fmt]}"
            raise InputError(
                f"{missing} not found (sessions must run 1..{max(chosen)} without gaps; "
                f"{suffixes} accepted); download it or remove the later sessions."
            )
    return [_probe(n, *chosen[n], volume_shape) for n in sorted(chosen)]


def _probe(session: int, path: Path, kind: Format, volume_shape: tuple[int, ...]) -> SessionFile:
    """Check a session file's dtype and shape from its header; count its trials."""
    if kind == "nifti":
        img = _open_nifti(path)
        shape, dtype, spatial = img.shape, img.get_data_dtype(), tuple(img.shape[:3])
        expected = "int16 of shape (X, Y, Z, trials)"
    else:
        h5py = _import("h5py", path)
        with _open_hdf5(path, h5py) as f:
            data = f["betas"]
            shape, dtype, spatial = data.shape, data.dtype, tuple(data.shape[:0:-1])
        expected = "int16 of h5py shape (trials, Z, Y, X)"
    if len(shape) != 4 or dtype != np.int16:
        raise InputError(
            f"{path} holds {dtype} betas of shape {shape}, expected {expected}; re-download it."
        )
    if spatial != tuple(volume_shape):
        raise InputError(
            f"{path} has volume shape (X, Y, Z) = {spatial} but the ROI volumes have "
            f"{tuple(volume_shape)}; pass betas and ROIs of the same space."
        )
    return SessionFile(session, path, kind, int(shape[3] if kind == "nifti" else shape[0]))


def _open_nifti(path: Path) -> Any:
    nib = _import("nibabel", path)
    try:
        return nib.load(path)
    except Exception as exc:  # nibabel raises ImageFileError, OSError, EOFError, ...
        raise InputError(
            f"{path} is not a readable NIfTI file ({short(exc)}); re-download it."
        ) from None


def _open_hdf5(path: Path, h5py: Any) -> Any:
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(
            f"{path} is not a readable HDF5 file ({short(exc)}); re-download it."
        ) from None
    if not isinstance(f.get("betas"), h5py.Dataset):
        found = ", ".join(sorted(f.keys())) or "none"
        f.close()
        raise InputError(
            f"{path} has no dataset 'betas' (found: {found}); pass NSD's session betas."
        )
    return f


def read_session(session: SessionFile, coords: np.ndarray) -> np.ndarray:
    """The int16 betas of the voxels ``coords`` (n_voxels, 3), shape (n_trials, n_voxels).

    Only the bounding box of ``coords`` is read from disk; both formats give the columns in the
    order of ``coords``.
    """
    lo = coords.min(axis=0)
    hi = coords.max(axis=0) + 1
    x, y, z = (coords - lo).T
    if session.format == "nifti":
        proxy = _open_nifti(session.path).dataobj
        box = np.asarray(proxy[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2], :])
        values = box[x, y, z, :].T
    else:
        h5py = _import("h5py", session.path)
        with _open_hdf5(session.path, h5py) as f:
            box = f["betas"][:, lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]]
        values = box[:, z, y, x]
    if values.dtype != np.int16:  # a NIfTI scale factor would make nibabel return floats
        raise InputError(
            f"{session.path} has scaled betas ({values.dtype}); pass NSD's unscaled int16 betas."
        )
    return values
