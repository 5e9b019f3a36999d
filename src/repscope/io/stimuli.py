"""Stimulus sets for embedding extraction: image folders, file lists, NSD HDF5, arrays, built-ins.

Every stimulus has a unique string id, and :meth:`Stimuli.load` returns it as an RGB
``PIL.Image.Image``. Sets are picklable so they can be sent to DataLoader worker processes:
files, the NSD HDF5 file included, are opened only by ``load``, in the process that loads.

Examples
--------
>>> import numpy as np
>>> from repscope.io.stimuli import open_stimuli
>>> stim = open_stimuli(np.zeros((3, 8, 8), dtype=np.uint8))
>>> stim.kind, stim.ids, stim.load(2).mode, stim.load(2).size
('array', ('0', '1', '2'), 'RGB', (8, 8))
>>> stim.select(["2", "0"]).ids
('2', '0')
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repscope._validation import InputError
from repscope.io._builtin_images import BUILTIN_SETS, BuiltinStimuli
from repscope.io._stimulus_base import (
    Stimuli,
    StimulusReadError,
    check_ids,
    file_stamp,
    first_line,
    image_from_array,
    sha256_of,
)

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "BUILTIN_SETS",
    "IMAGE_EXTENSIONS",
    "ArrayStimuli",
    "BuiltinStimuli",
    "FileStimuli",
    "FolderStimuli",
    "NsdStimuli",
    "Stimuli",
    "StimulusReadError",
    "open_stimuli",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_ACCEPTED = (
    "pass an image folder, a list of image paths, a .txt file listing them, an NSD .hdf5/.h5 "
    "file, a NumPy array or .npy file, an existing Stimuli, or 'builtin:NAME'"
)


class FileStimuli(Stimuli):
    """Image files read with PIL, one per stimulus.

    Parameters
    ----------
    paths : sequence of path-like, length n_stimuli
        Image files, stored resolved (absolute) so that a pickle works from any directory.
    ids : sequence of str, length n_stimuli
        Unique ids.
    location : str
        The folder or list file the paths came from, reported by :meth:`describe`.
    """

    kind = "files"

    def __init__(self, paths: Sequence[str | os.PathLike[str]], ids: Sequence[str], location: str):
        self.paths = tuple(Path(p).resolve() for p in paths)
        self.ids = check_ids(ids, len(self.paths), "the file list")
        self.location = location

    def load(self, index: int) -> Image:
        from PIL import Image

        path = self.paths[index]
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise StimulusReadError(
                f"cannot read stimulus {self.ids[index]!r} from {path} ({first_line(exc)}); "
                "replace the file, or leave its id out with stimuli.select(...)."
            ) from None

    def fingerprint(self) -> str:
        try:
            stamps = [file_stamp(p) for p in self.paths]
        except OSError as exc:
            raise StimulusReadError(
                f"a stimulus file is gone ({first_line(exc)}); restore it or reopen the set."
            ) from None
        return sha256_of(*self.ids, *stamps)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "location": self.location, "n": len(self)}

    def _subset(self, positions: list[int]) -> FileStimuli:
        paths = [self.paths[i] for i in positions]
        return type(self)(paths, [self.ids[i] for i in positions], self.location)


class FolderStimuli(FileStimuli):
    """Images found recursively in a folder; id = relative posix path without its extension."""

    kind = "folder"

    @classmethod
    def from_folder(cls, folder: Path) -> FolderStimuli:
        """Every file under ``folder`` with an extension in ``IMAGE_EXTENSIONS``, sorted by
        relative posix path (``"cats/001.png"`` gets id ``"cats/001"``)."""
        rel = sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not rel:
            raise InputError(
                f"no images found in {folder}; add files with extensions "
                f"{' '.join(sorted(IMAGE_EXTENSIONS))} (subfolders are searched too)."
            )
        ids = [r[: -len(Path(r).suffix)] for r in rel]
        first: dict[str, str] = {}
        for r, sid in zip(rel, ids, strict=True):
            if sid in first:
                raise InputError(
                    f"{first[sid]!r} and {r!r} in {folder} both give stimulus id {sid!r}; "
                    "rename or remove one of them."
                )
            first[sid] = r
        return cls([folder / r for r in rel], ids, str(folder.resolve()))


def _open_files(
    paths: Sequence[str | os.PathLike[str]], ids: Sequence[str] | None, location: str | None
) -> FileStimuli:
    """A :class:`FileStimuli` over existing files; ids default to the file stems."""
    files = [Path(p) for p in paths]
    if not files:
        where = f" in {location}" if location else ""
        raise InputError(f"the list of image files{where} is empty; list at least one image.")
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise InputError(
            f"{len(missing)} of {len(files)} listed image files do not exist "
            f"(first: {missing[0]}); "
            "fix the paths (relative ones in a .txt list start at the list's folder)."
        )
    if ids is None:
        ids = [p.stem for p in files]
        if len(set(ids)) != len(ids):
            raise InputError("listed image files share a file stem, so ids repeat; pass ids=[...].")
    if location is None:
        location = os.path.commonpath([str(p.resolve().parent) for p in files])
    return FileStimuli(files, ids, location)


def _read_list_file(path: Path) -> list[Path]:
    """Paths listed one per line (blank lines skipped); relative ones start at its folder."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [path.parent / line for line in lines if line]


def _nsd_rows(path: Path) -> int:
    """Number of images in the ``imgBrick`` dataset of an NSD stimulus file, after checks."""
    try:
        import h5py
    except ImportError:
        raise InputError(
            f"reading {path} needs h5py, which is not installed; pip install h5py."
        ) from None
    try:
        with h5py.File(path, "r") as f:
            brick = f.get("imgBrick")
            if not isinstance(brick, h5py.Dataset):
                found = ", ".join(sorted(f.keys())) or "none"
                raise InputError(
                    f"{path} has no dataset 'imgBrick' (found: {found}); "
                    "pass NSD's nsd_stimuli.hdf5."
                )
            shape, dtype = brick.shape, brick.dtype
    except OSError as exc:
        raise InputError(
            f"{path} cannot be opened as HDF5 ({first_line(exc)}); pass NSD's nsd_stimuli.hdf5."
        ) from None
    if len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8:
        raise InputError(
            f"imgBrick in {path} has shape {shape} and dtype {dtype}; expected uint8 of shape "
            "(n_images, H, W, 3) as in NSD's nsd_stimuli.hdf5."
        )
    return shape[0]


def _check_nsd_ids(nsd_ids: Sequence[int], n_rows: int, path: Path) -> np.ndarray:
    arr = np.asarray(nsd_ids)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(
            f"nsd_ids must be a non-empty 1-D sequence of integers, got {arr.dtype} of shape "
            f"{arr.shape}; pass 0-based nsdIds, e.g. nsd_ids=[0, 1, 2]."
        )
    bad = arr[(arr < 0) | (arr >= n_rows)]
    if bad.size:
        raise InputError(
            f"{bad.size} nsd_ids are outside 0..{n_rows - 1} of imgBrick in {path} "
            f"(first: {bad[0]}); pass 0-based nsdIds (1-based NSD indices minus 1)."
        )
    if np.unique(arr).size != arr.size:
        raise InputError("nsd_ids repeat an nsdId; pass each image once.")
    return arr.astype(np.int64)


class NsdStimuli(Stimuli):
    """NSD images read one at a time from the ``imgBrick`` dataset of ``nsd_stimuli.hdf5``.

    Parameters
    ----------
    path : path-like
        HDF5 file with dataset ``imgBrick``: uint8 of shape (n_images, H, W, 3), row = nsdId
        (NSD's file has (73000, 425, 425, 3)).
    nsd_ids : sequence of int of shape (n_stimuli,), optional
        0-based nsdIds to use, in order; default all rows. Ids are ``"nsd-IIIII"``, as in the
        Algonauts 2023 image names.
    """

    kind = "nsd"

    def __init__(self, path: str | os.PathLike[str], nsd_ids: Sequence[int] | None = None):
        self.path = Path(path).resolve()
        n_rows = _nsd_rows(self.path)
        nsd_ids = np.arange(n_rows) if nsd_ids is None else nsd_ids
        self.nsd_ids = _check_nsd_ids(nsd_ids, n_rows, self.path)
        self.ids = tuple(f"nsd-{i:05d}" for i in self.nsd_ids)
        self._handle: tuple[int, Any] | None = None  # (pid, h5py.File) of the reading process

    def __getstate__(self) -> dict[str, Any]:
        # an open HDF5 handle cannot cross processes; each process opens its own in load()
        return {**self.__dict__, "_handle": None}

    def _brick(self) -> Any:
        if self._handle is None or self._handle[0] != os.getpid():
            import h5py

            self._handle = (os.getpid(), h5py.File(self.path, "r"))
        return self._handle[1]["imgBrick"]

    def load(self, index: int) -> Image:
        nsd_id = int(self.nsd_ids[index])
        try:
            img = self._brick()[nsd_id]
        except (OSError, KeyError) as exc:
            raise StimulusReadError(
                f"cannot read {self.ids[index]!r} from {self.path} ({first_line(exc)}); "
                "check that the file is complete and unchanged, or download it again."
            ) from None
        return image_from_array(img)

    def fingerprint(self) -> str:
        return sha256_of(file_stamp(self.path), *self.ids)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "location": str(self.path), "n": len(self)}

    def _subset(self, positions: list[int]) -> NsdStimuli:
        return NsdStimuli(self.path, self.nsd_ids[positions])


def _as_uint8_images(x: Any, name: str) -> np.ndarray:
    """uint8 C-contiguous images of shape (N, H, W) or (N, H, W, 3), after checks."""
    arr = np.asarray(x)
    if arr.ndim == 4 and arr.shape[-1] != 3 and arr.shape[1] == 3:
        arr = arr.transpose(0, 2, 3, 1)  # channels-first -> channels-last
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 3)) or 0 in arr.shape:
        raise InputError(
            f"{name} has shape {arr.shape}; pass images of shape (N, H, W), (N, H, W, 3) or "
            "(N, 3, H, W), all sizes >= 1."
        )
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{name} has dtype {arr.dtype}; pass uint8 (0..255) or float in [0, 1].")
    n_bad = int(np.count_nonzero(~((arr >= 0) & (arr <= 1))))  # NaN fails both comparisons
    if n_bad:
        raise InputError(
            f"{name} has {n_bad} float values outside [0, 1] or NaN; scale floats to [0, 1] "
            "or pass uint8 0..255."
        )
    return np.round(arr * 255.0).astype(np.uint8)


class ArrayStimuli(Stimuli):
    """Images held in a NumPy array.

    Parameters
    ----------
    images : ndarray of shape (N, H, W), (N, H, W, 3) or (N, 3, H, W)
        uint8, or float in [0, 1] (scaled to uint8 by ``round(255 * x)``). A trailing axis of
        3 is read as channels-last.
    ids : sequence of str of length N, optional
        Default ``"0"`` .. ``str(N - 1)``.
    location : str, optional
        The ``.npy`` file the array came from.

    Attributes
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, 3)
        uint8, C-contiguous.
    """

    kind = "array"

    def __init__(self, images: Any, ids: Sequence[str] | None = None, location: str | None = None):
        self.images = _as_uint8_images(images, location or "the image array")
        n = len(self.images)
        self.ids = check_ids(range(n) if ids is None else ids, n, "the image array")
        self.location = location

    def load(self, index: int) -> Image:
        return image_from_array(self.images[index])

    def fingerprint(self) -> str:
        content = hashlib.sha256(self.images.data).hexdigest()
        return sha256_of(str(self.images.shape), content, *self.ids)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "location": self.location, "n": len(self)}

    def _subset(self, positions: list[int]) -> ArrayStimuli:
        return ArrayStimuli(self.images[positions], [self.ids[i] for i in positions], self.location)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path} is not a readable .npy array ({first_line(exc)}); "
            "save images with np.save(path, images)."
        ) from None


def _refuse(arg: str, value: object, source: str) -> None:
    """Reject ``ids=``/``nsd_ids=`` where they have no meaning."""
    if value is None:
        return
    fix = {
        "ids": "ids= names the images of a file list or array; pick a subset with .select(ids)",
        "nsd_ids": "nsd_ids= applies only to an NSD .hdf5/.h5 file",
    }[arg]
    raise InputError(f"{arg}= does not apply to {source}; {fix}.")


def _open_path(path: Path, ids: Sequence[str] | None, nsd_ids: Sequence[int] | None) -> Stimuli:
    if not path.exists():
        raise InputError(f"stimulus source {path} does not exist; {_ACCEPTED}.")
    suffix = path.suffix.lower()
    if suffix not in (".hdf5", ".h5"):
        _refuse("nsd_ids", nsd_ids, str(path))
    if path.is_dir():
        _refuse("ids", ids, f"image folder {path}")
        return FolderStimuli.from_folder(path)
    if suffix in (".hdf5", ".h5"):
        _refuse("ids", ids, f"NSD file {path}")
        return NsdStimuli(path, nsd_ids)
    if suffix == ".npy":
        return ArrayStimuli(_load_npy(path), ids, str(path.resolve()))
    if suffix == ".txt":
        return _open_files(_read_list_file(path), ids, str(path.resolve()))
    raise InputError(f"cannot open stimuli from {path} (extension {suffix!r}); {_ACCEPTED}.")


def open_stimuli(
    source: Any, *, ids: Sequence[str] | None = None, nsd_ids: Sequence[int] | None = None
) -> Stimuli:
    """Open a stimulus set from a folder, file list, NSD HDF5 file, array or built-in name.

    Parameters
    ----------
    source : path-like, sequence of path-like, ndarray, str or Stimuli
        - folder: every image inside, recursively (kind ``"folder"``);
        - list/tuple of image paths, or a ``.txt`` file with one path per line, relative to
          its folder (kind ``"files"``, ids = file stems);
        - ``.hdf5``/``.h5``: NSD ``nsd_stimuli.hdf5`` (kind ``"nsd"``);
        - ndarray of shape (N, H, W), (N, H, W, 3) or (N, 3, H, W), or a ``.npy`` file
          (kind ``"array"``);
        - ``"builtin:NAME"``, NAME in :data:`BUILTIN_SETS` (kind ``"builtin"``);
        - a :class:`Stimuli`, returned unchanged.
    ids : sequence of str, optional
        Ids for a file list or array, one per image; default file stems / ``"0"``, ``"1"``, ...
    nsd_ids : sequence of int, optional
        0-based nsdIds to read from an NSD file; default all.

    Returns
    -------
    Stimuli

    Raises
    ------
    InputError
        Unsupported source, missing files, bad shapes or values, unknown ids or built-in name.
    """
    if isinstance(source, Stimuli):
        _refuse("ids", ids, "an existing Stimuli")
        _refuse("nsd_ids", nsd_ids, "an existing Stimuli")
        return source
    if isinstance(source, (str, os.PathLike)) and not str(source).startswith("builtin:"):
        return _open_path(Path(source), ids, nsd_ids)
    _refuse("nsd_ids", nsd_ids, f"a {type(source).__name__} source")
    if isinstance(source, str):
        _refuse("ids", ids, source)
        return BuiltinStimuli(source.removeprefix("builtin:"))
    if isinstance(source, np.ndarray):
        return ArrayStimuli(source, ids)
    if isinstance(source, (list, tuple)):
        return _open_files(source, ids, None)
    raise InputError(f"cannot open stimuli from a {type(source).__name__}; {_ACCEPTED}.")
