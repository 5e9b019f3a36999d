"""Model–brain alignment: ridge encoding of ROI voxels from an embedding (METHOD.md §5).

For each subject the embedding's rows are matched to the subject's images by stimulus id; the
images are split into train and test rows (a seeded random split, or NSD's shared images as
the test set); PCA is fit on the train rows only and applied to the test rows; and ONE
cross-validated ridge fit predicts every voxel of the union of the requested ROIs, with a
penalty chosen per voxel. Each voxel's penalty and coefficients depend on that voxel alone, so
slicing the union fit by ROI gives exactly what a separate fit per ROI would. Scores are
held-out R² and Pearson r per voxel, summarised per ROI and normalised by the noise ceiling of
the test images (NSD's NC = ncsnr² / (ncsnr² + 1/n), n the test images' repeat counts).
"""

from __future__ import annotations

import io
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from repscope import _memory
from repscope._backend import Device, resolve_device
from repscope._brain_input import check_finite_responses, check_subjects, roi_columns
from repscope._progress import progress_bar
from repscope._validation import InputError, check_embedding, check_random_state
from repscope.alignment._brain_summary import roi_summary, summary_table
from repscope.alignment.ridge import DEFAULT_ALPHAS, _resolve_split, ridge_alignment
from repscope.io.arrays import common_rows
from repscope.io.atomic import atomic_write_bytes
from repscope.io.responses import BrainResponses
from repscope.preprocessing import pca_reduce

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MIN_COMMON_IMAGES", "BrainAlignment", "VoxelMap", "brain_alignment"]

MIN_COMMON_IMAGES = 10
# PCA axes whose train variance is below this share of the largest are numerically null (the
# train rows span fewer dimensions); standardizing them would blow rounding noise up to unit
# variance, so they are dropped.
_NULL_AXIS_RATIO = 1e-10
#: Standardized PCA scores weigh every component alike; beyond this share of the train images
#: the ridge fits noise components as readily as signal ones.
_PCA_TRAIN_WARN_RATIO = 0.5
_VOXEL_FIELDS = ("columns", "coordinates", "r2", "pearson_r", "noise_ceiling", "alpha")


@dataclass(frozen=True)
class VoxelMap:
    """Voxelwise held-out scores of one ROI in one subject.

    Attributes
    ----------
    columns : ndarray of int, shape (n_voxels,)
        Columns of the subject's ``BrainResponses.responses``.
    coordinates : ndarray of int, shape (n_voxels, 3)
        Voxel indices (or hemisphere, vertex, 0), from ``BrainResponses.coordinates``.
    r2 : ndarray of shape (n_voxels,)
        Test R² = 1 − SS_res / SS_tot (can be negative); NaN for constant voxels.
    pearson_r : ndarray of shape (n_voxels,)
        Pearson r of predicted and measured test responses; NaN for constant voxels.
    noise_ceiling : ndarray of shape (n_voxels,)
        NC of the test images as a fraction of variance, in [0, 1); NaN where unknown.
    alpha : ndarray of shape (n_voxels,)
        Ridge penalty chosen by cross-validation on the train rows.
    """

    columns: np.ndarray
    coordinates: np.ndarray
    r2: np.ndarray
    pearson_r: np.ndarray
    noise_ceiling: np.ndarray
    alpha: np.ndarray


@dataclass(frozen=True, eq=False)
class BrainAlignment:
    """Model–brain alignment per subject and ROI.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy, one row per (subject, roi), then one pooled row per ROI with ``subject == "all"``.
        ``subject`` is a string (``"1"`` … ``"8"``, ``"all"``). Columns:

        - ``n_voxels``: voxels in the ROI (pooled: summed over subjects);
          ``n_voxels_reliable``: those with NC > ``min_noise_ceiling``.
        - ``n_train``, ``n_test``: images in each split (pooled: <NA>).
        - ``r2``, ``pearson_r``: mean over the ROI's voxels of the test R² and Pearson r
          (constant voxels left out).
        - ``noise_ceiling``: mean NC over voxels whose NC is known (NaN when none is).
        - ``r2_normalized``: mean R² / mean NC over voxels where both are defined — the share
          of explainable variance the model explains, ROI-wide; NaN where NC is unknown or 0.
        - ``r2_normalized_median``: median over voxels with NC > ``min_noise_ceiling`` of
          R²/NC, robust to a few voxels with tiny ceilings; NaN when no voxel passes.
        - ``*_sd``, ``n_subjects``: see pooled rows below (NaN and 1 on per-subject rows).
        - ``test``; ``pca``: components used (<NA> when skipped; pooled: the subjects'
          common value, else <NA>); ``pca_variance``: share of train variance kept;
          ``n_embedding_only`` and ``n_brain_only``: ids found on one side only (these three
          are missing on pooled rows).

        **Pooled rows** (``subject == "all"``): for each ROI, over the subjects in which the ROI
        has voxels, the unweighted mean of each per-subject value above (every subject counts
        once, whatever its voxel count), its sample standard deviation across subjects in
        ``<name>_sd`` (ddof=1; NaN for one subject) and the subject count in ``n_subjects``. A
        mean is NaN when any subject's value is. Voxels are not pooled across subjects.
    voxels : dict of (int, str) to VoxelMap
        Voxelwise maps keyed by (subject, roi).
    settings : dict
        The options of the run (JSON-ready).
    """

    table: pd.DataFrame
    voxels: Mapping[tuple[int, str], VoxelMap]
    settings: dict[str, Any]

    def save(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``brain_alignment.csv`` (the table) and ``voxel_maps.npz`` atomically.

        The npz holds one array per map field, named ``"<subject>/<roi>/<field>"`` with field
        in columns, coordinates, r2, pearson_r, noise_ceiling, alpha. Each file appears under
        its name only once complete.

        Returns
        -------
        table_path, voxels_path : Path
        """
        directory = Path(directory)
        table_path = directory / "brain_alignment.csv"
        voxels_path = directory / "voxel_maps.npz"
        atomic_write_bytes(table_path, self.table.to_csv(index=False).encode("utf-8"))
        arrays = {
            f"{subject}/{roi}/{name}": getattr(vmap, name)
            for (subject, roi), vmap in self.voxels.items()
            for name in _VOXEL_FIELDS
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(voxels_path, buffer.getvalue())
        return table_path, voxels_path

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: ``{"settings": ..., "table": [row, ...]}``, missing as None."""
        table = self.table.astype(object).where(self.table.notna(), None)
        rows = [
            {
                key: value.item() if isinstance(value, np.generic) else value
                for key, value in row.items()
            }
            for row in table.to_dict("records")
        ]
        return {"settings": dict(self.settings), "table": rows}


@dataclass(frozen=True)
class _Options:
    pca: int | None
    test: str
    test_size: float
    alphas: npt.ArrayLike
    cv: int
    random_state: int | np.random.Generator | None
    device: Device
    min_noise_ceiling: float

    def settings(self) -> dict[str, Any]:
        seed = self.random_state
        return {
            "pca": self.pca,
            "test": self.test,
            "test_size": self.test_size if self.test == "random" else None,
            "alphas": np.atleast_1d(np.asarray(self.alphas, dtype=float)).tolist(),
            "cv": self.cv,
            "random_state": int(seed) if isinstance(seed, numbers.Integral) else None,
            "min_noise_ceiling": self.min_noise_ceiling,
        }


def brain_alignment(
    X: npt.ArrayLike,
    ids: npt.ArrayLike,
    brain: BrainResponses | Sequence[BrainResponses],
    *,
    rois: str | Sequence[str] | None = None,
    pca: int | None = 300,
    test: Literal["random", "shared"] = "random",
    test_size: float = 0.2,
    alphas: npt.ArrayLike = DEFAULT_ALPHAS,
    cv: int = 5,
    min_noise_ceiling: float = 0.05,
    random_state: int | np.random.Generator | None = 0,
    device: Device = "auto",
    progress: bool = False,
) -> BrainAlignment:
    """Held-out ridge prediction of ROI voxels from an embedding, per subject and ROI.

    Parameters
    ----------
    X : array-like of shape (n_stimuli, n_features)
        Embedding, one row per stimulus.
    ids : array-like of shape (n_stimuli,)
        Unique stimulus id of each row of ``X`` (``"nsd-%05d"`` for NSD images, as
        ``repscope extract`` writes them).
    brain : BrainResponses or sequence of BrainResponses
        One subject, or several (distinct subject numbers).
    rois : str, sequence of str or None
        ROIs to score; None scores every ROI each subject carries.
    pca : int or None
        Principal components fit on each subject's train rows (capped at the train rows' rank);
        None uses ``X`` as it is.
    test : {"random", "shared"}
        ``"random"``: a seeded ``test_size`` share of the common images is the test set (the
        split of :func:`~repscope.alignment.ridge.ridge_alignment`). ``"shared"``: the images
        flagged ``shared`` (NSD's shared 1000) are the test set, the others train.
    test_size : float
        Test share for ``test="random"``; ignored for ``"shared"``.
    alphas : array-like of shape (n_alphas,)
        Ridge penalty grid; one penalty per voxel is chosen by ``cv``-fold CV on train rows.
    cv : int
        Folds of the seeded ``KFold(shuffle=True)`` over the train rows.
    min_noise_ceiling : float
        NC (fraction) a voxel needs to enter ``r2_normalized_median``, in [0, 1).
    random_state : int, Generator or None
        Seeds the random split and the folds. An int gives every subject the same seed.
    device : {"auto", "cpu", "cuda"}
        Where the ridge products run.
    progress : bool
        Show a progress bar over subjects.

    Returns
    -------
    BrainAlignment

    Raises
    ------
    InputError
        NaN in ``X`` or the responses, ids that do not fit ``X``, no (or fewer than
        ``MIN_COMMON_IMAGES``) images in common with a subject, an ROI a subject lacks, or
        ``test="shared"`` with fewer than 2 shared or 2 non-shared common images.

    Examples
    --------
    >>> from repscope.io.responses import BrainResponses
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 30))
    >>> ids = np.array([f"nsd-{i:05d}" for i in range(200)])
    >>> Y = X[:, :5] @ rng.standard_normal((5, 40)) + rng.standard_normal((200, 40))
    >>> brain = BrainResponses(
    ...     subject=1, stimulus_ids=ids, responses=Y.astype(np.float32),
    ...     n_repeats=np.full(200, 3), coordinates=np.zeros((40, 3), dtype=int),
    ...     ncsnr=np.full(40, 2.0), roi_masks={"V1": np.arange(40) < 20,
    ...     "EBA": np.arange(40) >= 20}, shared=np.zeros(200, dtype=bool), space="func1pt8mm")
    >>> res = brain_alignment(X, ids, brain, pca=None, device="cpu")
    >>> print(res.table[["subject", "roi", "n_voxels", "n_test"]].to_string(index=False))
    subject roi  n_voxels  n_test
          1  V1        20      40
          1 EBA        20      40
        all  V1        20    <NA>
        all EBA        20    <NA>
    """
    subjects = check_subjects(brain)
    opts = _check_options(pca, test, test_size, alphas, cv, random_state, device, min_noise_ceiling)
    _preflight(X, subjects, rois, opts)
    X = check_embedding(X, name="X")
    ids = _check_ids(ids, X.shape[0])
    rows: list[dict[str, Any]] = []
    voxels: dict[tuple[int, str], VoxelMap] = {}
    with progress_bar(len(subjects), "brain alignment", unit="subj", enabled=progress) as advance:
        for b in subjects:
            subject_rows, subject_maps = _fit_subject(X, ids, b, rois, opts)
            rows += subject_rows
            voxels.update(subject_maps)
            advance(1)
    return BrainAlignment(table=summary_table(rows), voxels=voxels, settings=opts.settings())


def _check_options(
    pca: Any,
    test: Any,
    test_size: float,
    alphas: npt.ArrayLike,
    cv: int,
    random_state: Any,
    device: Device,
    min_noise_ceiling: float,
) -> _Options:
    if test not in ("random", "shared"):
        raise InputError(f"test={test!r} is not known; pass 'random' or 'shared'.")
    if not 0.0 <= min_noise_ceiling < 1.0:
        raise InputError(
            f"min_noise_ceiling={min_noise_ceiling!r} must be in [0, 1); pass e.g. 0.05."
        )
    return _Options(pca, test, test_size, alphas, cv, random_state, device, min_noise_ceiling)


def _preflight(X: Any, subjects: Sequence[BrainResponses], rois: Any, opts: _Options) -> None:
    """Refuse, before the float64 copy, a run whose largest subject does not fit in memory.

    Subjects are fitted one after another, so the peak is the largest subject's. Options
    the validation would reject are left to it.
    """
    from repscope.alignment._ridge_cv import target_batch_size

    shape = _memory.array_shape(X)
    pca, cv = opts.pca, opts.cv
    if shape is None or not isinstance(cv, numbers.Integral) or isinstance(cv, bool) or cv < 2:
        return
    if pca is not None and (isinstance(pca, bool) or not isinstance(pca, numbers.Integral)):
        return
    if opts.test == "random" and not (
        isinstance(opts.test_size, numbers.Real) and 0 < opts.test_size < 1
    ):
        return
    n_stim, d, dtype = shape
    dev = resolve_device(opts.device)
    n_alphas = int(np.size(opts.alphas))
    need, device_need, worst = 0.0, 0.0, ""
    for b in subjects:
        n_voxels = len(roi_columns(b, rois)[0])
        n = min(b.n_images, n_stim)
        if n < 2:
            continue
        n_test = int(np.sum(b.shared)) if opts.test == "shared" else None
        n_test = min(n - 1, int(np.ceil(opts.test_size * n)) if n_test is None else n_test)
        q = d if pca is None else max(1, min(int(pca), n - n_test, d))
        sizes = {"cv": int(cv), "n_alphas": n_alphas, "n_test": n_test}
        batch = target_batch_size(n - n_test, min(q, n - n_test), int(cv), n_alphas, dev)
        estimate = _memory.brain_alignment_bytes(
            n,
            d,
            n_voxels,
            pca=pca,
            n_stimuli=n_stim,
            x_itemsize=8 if dtype == np.float64 else 4,
            y_itemsize=np.dtype(b.responses.dtype).itemsize,
            batch_targets=batch,
            **sizes,
        )
        if estimate > need:
            need = estimate
            worst = f"subject {b.subject}, {n} images × {n_voxels} voxels"
            device_need = _memory.ridge_device_bytes(n, q, n_voxels, batch_targets=batch, **sizes)
    if not worst:
        return
    what = f"brain alignment: {worst} from {_memory.describe((n_stim, d), dtype)}"
    fix = "pass fewer ROIs (rois=[...]) or a smaller pca."
    _memory.check_memory(what, need, "cpu", fix)
    if dev.type != "cpu":
        _memory.check_memory(what, device_need, dev, fix)


def _check_ids(ids: npt.ArrayLike, n_rows: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) != n_rows:
        raise InputError(
            f"ids has shape {ids.shape} but X has {n_rows} rows; pass one id per row of X."
        )
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != n_rows:
        raise InputError(
            f"ids repeat {int((counts > 1).sum())} values (e.g. {unique[counts > 1][0].item()!r});"
            " give every row of X its own id."
        )
    return ids


def _match(ids: np.ndarray, brain: BrainResponses) -> tuple[np.ndarray, np.ndarray]:
    """Brain rows and embedding rows of the common images, in the brain's order."""
    brain_rows, emb_rows = common_rows(np.asarray(brain.stimulus_ids), ids)
    if brain_rows.size == 0:
        raise InputError(
            f"the embedding's ids (e.g. {ids[0].item()!r}) and subject {brain.subject}'s "
            f"images (e.g. {brain.stimulus_ids[0].item()!r}) have none in common; name the "
            "embedding's rows as the responses do."
        )
    if brain_rows.size < MIN_COMMON_IMAGES:
        raise InputError(
            f"subject {brain.subject} shares only {brain_rows.size} images with the embedding; "
            f"at least {MIN_COMMON_IMAGES} are needed, embed more of the subject's images."
        )
    return brain_rows, emb_rows


def _split(
    shared: np.ndarray, opts: _Options, rng: np.random.Generator, subject: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows among the common images (indices into them)."""
    if opts.test == "random":
        return _resolve_split(len(shared), opts.test_size, None, rng)
    train, test = np.flatnonzero(~shared), np.flatnonzero(shared)
    if train.size < 2 or test.size < 2:
        raise InputError(
            f"subject {subject} has {test.size} shared and {train.size} other images in common "
            "with the embedding; test='shared' needs at least 2 of each, pass test='random'."
        )
    return train, test


def _project(
    X: np.ndarray, train: np.ndarray, test: np.ndarray, pca: int | None
) -> tuple[np.ndarray, int | None, float]:
    """``X`` on the principal axes of its train rows: (scores, components kept, variance kept)."""
    if pca is None:
        return X, None, float("nan")
    fit = pca_reduce(X[train], pca)
    variance = fit.scores.var(axis=0)
    if not variance.max() > 0:
        raise InputError("X is constant over the train images; pass an embedding that varies.")
    keep = variance > _NULL_AXIS_RATIO * variance.max()
    components = fit.components[keep]
    Z = np.empty((len(X), components.shape[0]))
    Z[train] = fit.scores[:, keep]
    Z[test] = (X[test] - fit.mean) @ components.T
    _warn_wide(components.shape[0], train.size)
    return Z, int(keep.sum()), fit.explained_variance_ratio


def _warn_wide(n_components: int, n_train: int) -> None:
    if n_components > _PCA_TRAIN_WARN_RATIO * n_train:
        warnings.warn(
            f"PCA keeps {n_components} components from {n_train} train images; standardized, "
            "each weighs like the first and held-out R² suffers; pass pca <= "
            f"{max(1, n_train // 10)} for this few images.",
            UserWarning,
            stacklevel=4,
        )


def _fit_subject(
    X: np.ndarray,
    ids: np.ndarray,
    brain: BrainResponses,
    rois: str | Sequence[str] | None,
    opts: _Options,
) -> tuple[list[dict[str, Any]], dict[tuple[int, str], VoxelMap]]:
    columns, positions = roi_columns(brain, rois)
    brain_rows, emb_rows = _match(ids, brain)
    Y = brain.responses[np.ix_(brain_rows, columns)]
    check_finite_responses(Y, brain.subject)
    rng = check_random_state(opts.random_state)
    train, test = _split(np.asarray(brain.shared, dtype=bool)[brain_rows], opts, rng, brain.subject)
    Z, n_pca, pca_variance = _project(X[emb_rows], train, test, opts.pca)
    # an int seeds the folds as ridge_alignment's own split would; a Generator keeps drawing
    seed = opts.random_state if isinstance(opts.random_state, numbers.Integral) else rng
    scores = ridge_alignment(
        Z,
        Y,
        split=(train, test),
        alphas=opts.alphas,
        cv=opts.cv,
        random_state=seed,
        device=opts.device,
    )
    nc = brain.noise_ceiling(brain_rows[test])[columns]
    common = {
        "subject": str(brain.subject),
        "n_train": int(train.size),
        "n_test": int(test.size),
        "n_subjects": 1,
        "test": opts.test,
        "pca": n_pca,
        "pca_variance": pca_variance,
        "n_embedding_only": int(len(ids) - emb_rows.size),
        "n_brain_only": int(brain.n_images - brain_rows.size),
    }
    rows, maps = [], {}
    for roi, pos in positions.items():
        vmap = VoxelMap(
            columns=columns[pos],
            coordinates=np.asarray(brain.coordinates)[columns[pos]],
            r2=scores.r2[pos],
            pearson_r=scores.pearson_r[pos],
            noise_ceiling=nc[pos],
            alpha=scores.alpha[pos],
        )
        maps[(brain.subject, roi)] = vmap
        summary = roi_summary(vmap.r2, vmap.pearson_r, vmap.noise_ceiling, opts.min_noise_ceiling)
        rows.append({"roi": roi, **common, **summary})
    return rows, maps
