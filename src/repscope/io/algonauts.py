"""Load the Algonauts 2023 challenge's training fMRI as :class:`BrainResponses`.

The challenge republished NSD's fsaverage betas (b3, z-scored per vertex per session and
averaged over repeats) for the vertices of nsdgeneral ∪ RSC, one ``.npy`` per hemisphere::

    subjAA/training_split/training_images/train-NNNN_nsd-IIIII.png   # NNNN 1-based row
    subjAA/training_split/training_fmri/{lh,rh}_training_fmri.npy    # float32 (images, vertices)
    subjAA/roi_masks/{lh,rh}.<family>_challenge_space.npy            # label id per vertex
    subjAA/roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy        # challenge vertices
    subjAA/roi_masks/mapping_<family>.npy                            # pickled {id: name}

The ``mapping_<family>.npy`` files are pickles. They are never unpickled freely: a restricted
unpickler rebuilds only NumPy arrays and scalars, dicts, ints and strings (anything else in the
file, e.g. a callable, is refused before it runs), and the content must be a dict of int to str.

References
----------
Gifford, A. T. et al. (2023). The Algonauts Project 2023 Challenge: How the Human Brain Makes
Sense of Natural Scenes. arXiv:2301.03198.
"""

from __future__ import annotations

import numbers
import os
import pickle
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from repscope._validation import InputError
from repscope.io._nsd_files import ROI_FAMILIES
from repscope.io._roi_names import RoiRequest, resolve_rois
from repscope.io._source_common import short
from repscope.io.responses import BrainResponses

__all__ = ["ALL_VERTICES", "algonauts_rois", "load_algonauts"]

#: ``roi_masks`` key when no ROI is requested: every challenge vertex.
ALL_VERTICES = "all-vertices"
_HEMISPHERES = ("lh", "rh")
_TRAIN_IMAGE = re.compile(r"^train-(\d+)_nsd-(\d+)\.png$")
_MAPPING = re.compile(r"^mapping_(.+)\.npy$")


def _subject_dir(root: str | os.PathLike[str], subject: int) -> Path:
    valid = isinstance(subject, numbers.Integral) and not isinstance(subject, bool)
    folder = Path(root) / f"subj{int(subject):02d}" if valid else None
    if folder is None or not folder.is_dir():
        present = sorted(p.name for p in Path(root).glob("subj[0-9][0-9]") if p.is_dir())
        raise InputError(
            f"subject={subject!r}: no folder subjAA for it under {root}; subjects present: "
            f"{', '.join(present) or 'none'}; pass one of those or the Algonauts 2023 root."
        )
    return folder


def _require(path: Path, subject_dir: Path, what: str) -> Path:
    if not path.is_file():
        folder = path.parent.relative_to(subject_dir.parent).as_posix()
        raise InputError(
            f"{path} not found: {what} belongs in the Algonauts 2023 {folder}/ folder; "
            "download it there or pass the root that holds it."
        )
    return path


def _load_npy(path: Path, subject_dir: Path, what: str, mmap: bool = False) -> np.ndarray:
    _require(path, subject_dir, what)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path} is not a readable .npy array ({short(exc)}); re-download it."
        ) from None


#: The only globals a mapping file's pickle may name: what NumPy writes for a 0-d object array.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "dict"),
    ("builtins", "int"),
    ("builtins", "str"),
}


class _MappingUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays of plain values; refuses every other global."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return super().find_class(module, name)


def _read_object_npy(path: Path) -> np.ndarray:
    """An object ``.npy`` read through :class:`_MappingUnpickler` instead of ``np.load``."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        readers = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }
        if version not in readers:
            raise ValueError(f".npy format version {version} is not supported")
        _, _, dtype = readers[version](fh)
        if not dtype.hasobject:
            raise ValueError(f"dtype {dtype} is not an object array")
        return _MappingUnpickler(fh).load()


def _load_mapping(path: Path) -> dict[int, str]:
    """``{id: name}`` from a pickled ``mapping_<family>.npy``, checked to be int -> str."""
    try:
        array = np.asarray(_read_object_npy(path))
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(
            f"{path} is not a readable mapping file ({short(exc)}); re-download it."
        ) from None
    content = array.item() if array.shape == () else None
    valid = isinstance(content, dict) and all(
        isinstance(k, numbers.Integral) and isinstance(v, str) for k, v in content.items()
    )
    if not valid:
        raise InputError(
            f"{path} does not hold a dict of int label ids to str names; pass the challenge's "
            "mapping file."
        )
    return {int(k): v for k, v in content.items()}


def algonauts_rois(root: str | os.PathLike[str], subject: int) -> dict[str, list[str]]:
    """ROI label names per family in a subject's ``roi_masks`` folder.

    Parameters
    ----------
    root : path-like
        Algonauts 2023 root holding ``subjAA/``.
    subject : int
        1-based subject number.

    Returns
    -------
    dict of str to list of str
        Family to its label names (ids > 0, in id order).
    """
    labels = _family_labels(_subject_dir(root, subject))
    return {family: [t[i] for i in sorted(t) if i > 0] for family, t in labels.items()}


def _family_labels(subject_dir: Path) -> dict[str, dict[int, str]]:
    folder = subject_dir / "roi_masks"
    found = {
        m.group(1): p for p in sorted(folder.glob("mapping_*.npy")) if (m := _MAPPING.match(p.name))
    }
    if not found:
        raise InputError(
            f"{folder} holds no mapping_<family>.npy files: the ROI names belong in the "
            "Algonauts 2023 subjAA/roi_masks/ folder; download it there."
        )
    order = [f for f in ROI_FAMILIES if f in found] + sorted(set(found) - set(ROI_FAMILIES))
    return {family: _load_mapping(found[family]) for family in order}


def _training_ids(subject_dir: Path) -> np.ndarray:
    """0-based nsdIds of the training rows, from the image names, shape (n_images,)."""
    folder = subject_dir / "training_split" / "training_images"
    if not folder.is_dir():
        raise InputError(
            f"{folder} not found: the training images (their names give the nsdIds) belong in "
            "the Algonauts 2023 training_split/ folder; download it there."
        )
    rows = {}
    for path in folder.iterdir():
        match = _TRAIN_IMAGE.match(path.name)
        if match:
            rows[int(match.group(1))] = int(match.group(2))
    if sorted(rows) != list(range(1, len(rows) + 1)):
        missing = next((n for n in range(1, len(rows) + 2) if n not in rows), 1)
        raise InputError(
            f"{folder} lacks train-{missing:04d}_nsd-IIIII.png (training images must be numbered "
            "1..N without gaps); download the complete training_images folder."
        )
    return np.array([rows[n] for n in range(1, len(rows) + 1)], dtype=np.int64)


def _check_hemispheres(hemispheres: Sequence[str]) -> tuple[str, ...]:
    hemis = (hemispheres,) if isinstance(hemispheres, str) else tuple(hemispheres)
    if not hemis or len(set(hemis)) != len(hemis) or any(h not in _HEMISPHERES for h in hemis):
        raise InputError(
            f"hemispheres={hemispheres!r} must be distinct values of 'lh', 'rh'; "
            "pass ('lh', 'rh') or one of them."
        )
    return hemis


def load_algonauts(
    root: str | os.PathLike[str],
    subject: int,
    rois: str | Iterable[str] | None = None,
    *,
    hemispheres: Sequence[str] = _HEMISPHERES,
) -> BrainResponses:
    """The Algonauts 2023 training responses of one subject, optionally restricted to ROIs.

    Parameters
    ----------
    root : path-like
        Algonauts 2023 root holding ``subjAA/``.
    subject : int
        1-based subject number (1–8).
    rois : str or iterable of str, optional
        ROI requests with the same rules as :func:`repscope.io.nsd.load_nsd` (label name,
        ``"family:name"``, family, ``V1``/``V2``/``V3``), resolved against the
        ``mapping_<family>.npy`` files; None keeps every challenge vertex (ROI
        ``"all-vertices"``).
    hemispheres : sequence of {"lh", "rh"}
        Hemispheres to read, in column order.

    Returns
    -------
    BrainResponses
        Rows in training order (``train-NNNN``), ``stimulus_ids`` ``"nsd-IIIII"``;
        ``responses`` float32 (n_images, n_vertices) as the challenge publishes them
        (z-scored, repeat-averaged); ``coordinates`` (hemisphere 0 = lh / 1 = rh, fsaverage
        vertex index, 0); ``ncsnr`` NaN and ``n_repeats`` 0 (the challenge does not publish
        them); ``shared`` all False (unknown here); ``space`` ``"algonauts"``.

    Raises
    ------
    InputError
        A missing file or folder (named), an unknown or ambiguous ROI, an empty ROI, or arrays
        whose shapes disagree.
    """
    subject_dir = _subject_dir(root, subject)
    hemis = _check_hemispheres(hemispheres)
    ids = _training_ids(subject_dir)
    requests = None if rois is None else resolve_rois(rois, _family_labels(subject_dir))
    blocks, masks, coords = [], [], []
    for hemi in hemis:
        fmri, fsaverage_index, roi_masks = _hemisphere(subject_dir, hemi, ids.size, requests)
        cols = np.flatnonzero(np.logical_or.reduce(list(roi_masks.values())))
        blocks.append(np.asarray(fmri[:, cols], dtype=np.float32))
        masks.append({name: mask[cols] for name, mask in roi_masks.items()})
        side = np.full(cols.size, _HEMISPHERES.index(hemi))
        coords.append(np.column_stack([side, fsaverage_index[cols], np.zeros(cols.size)]))
    roi_masks = {name: np.concatenate([m[name] for m in masks]) for name in masks[0]}
    for name, mask in roi_masks.items():
        if not mask.any():
            raise InputError(
                f"ROI {name!r} has no vertices in hemispheres {', '.join(hemis)} of "
                f"{subject_dir}; pick another ROI or hemisphere (see algonauts_rois)."
            )
    n_voxels = sum(b.shape[1] for b in blocks)
    return BrainResponses(
        subject=int(subject),
        stimulus_ids=np.array([f"nsd-{i:05d}" for i in ids]),
        responses=np.concatenate(blocks, axis=1),
        n_repeats=np.zeros(ids.size, dtype=np.int64),
        coordinates=np.concatenate(coords).astype(np.int64),
        ncsnr=np.full(n_voxels, np.nan),
        roi_masks=roi_masks,
        shared=np.zeros(ids.size, dtype=bool),
        space="algonauts",
        source={
            "dataset": "algonauts2023",
            "root": str(Path(root)),
            "hemispheres": list(hemis),
            "simulated": False,
        },
    )


def _hemisphere(
    subject_dir: Path, hemi: str, n_images: int, requests: list[RoiRequest] | None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One hemisphere's fMRI (n_images, n_vertices), fsaverage index per vertex, ROI masks."""
    path = subject_dir / "training_split" / "training_fmri" / f"{hemi}_training_fmri.npy"
    # memory-mapped: only the ROI columns are copied into the result
    fmri = _load_npy(path, subject_dir, f"the {hemi} training fMRI", mmap=True)
    if fmri.ndim != 2 or fmri.shape[0] != n_images:
        raise InputError(
            f"{path} has shape {fmri.shape}, expected ({n_images}, n_vertices) for the "
            f"{n_images} training images; pass matching fMRI and image folders."
        )
    masks_dir = subject_dir / "roi_masks"
    path = masks_dir / f"{hemi}.all-vertices_fsaverage_space.npy"
    fsaverage_index = np.flatnonzero(_load_npy(path, subject_dir, f"the {hemi} vertex mask"))
    if fsaverage_index.size != fmri.shape[1]:
        raise InputError(
            f"{path} selects {fsaverage_index.size} vertices but the {hemi} fMRI has "
            f"{fmri.shape[1]} columns; pass files of the same subject."
        )
    if requests is None:
        return fmri, fsaverage_index, {ALL_VERTICES: np.ones(fmri.shape[1], dtype=bool)}
    labels = {}
    for family in dict.fromkeys(r.family for r in requests):
        path = masks_dir / f"{hemi}.{family}_challenge_space.npy"
        labels[family] = _load_npy(path, subject_dir, f"the {hemi} {family} ROI mask")
        if labels[family].shape != (fmri.shape[1],):
            raise InputError(
                f"{path} has shape {labels[family].shape}, expected ({fmri.shape[1]},) like the "
                f"{hemi} fMRI columns; pass files of the same subject."
            )
    masks = {
        r.name: labels[r.family] > 0 if r.ids is None else np.isin(labels[r.family], r.ids)
        for r in requests
    }
    return fmri, fsaverage_index, masks
