"""Miniature NSD and Algonauts 2023 trees in the real file formats, with the planted truth.

``write_mini_nsd`` writes, with :mod:`repscope.io.nsd_layout`'s writers (nibabel NIfTI,
h5py, ``scipy.io.savemat``, CSV), a tiny NSD: a 7×6×5 volume, three subjects in the design
(betas for subjects 1 and 2 only), sessions of unequal length, images shown 1, 2 and 3 times,
per-session voxel offsets and scales, ROI label volumes with their ctabs, and ncsnr. What it
returns is the truth a test compares the loader against: the trial → nsdId list (generated
first, then encoded into NSD's 1-based design arrays) and every int16 array written.

``write_mini_algonauts`` writes the Algonauts 2023 layout for one subject.

The pytest fixtures ``mini_nsd`` and ``mini_algonauts`` (session scope, read-only) and
``mini_nsd_copy`` (a private copy a test may damage) are registered in ``conftest.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repscope.io.nsd_layout import (
    BETA_SCALE,
    NsdLayout,
    write_betas_session,
    write_ctab,
    write_expdesign,
    write_imgbrick,
    write_stim_info,
    write_volume,
)

SHAPE = (7, 6, 5)
N_NSD_IMAGES = 300
N_SHARED = 6
N_COLUMNS = 40  # subjectim columns per subject; 4 are never shown in the trials loaded
#: 12 columns shown 3 times, 12 twice, 12 once: 72 trials, then 8 design-only trials
REPEATS = (3,) * 12 + (2,) * 12 + (1,) * 12
EXTRA_DESIGN_TRIALS = 8
SESSION_TRIALS = {1: (20, 28, 24), 2: (30, 22)}  # unequal, as a file's trial axis says
DISTINCT_NSD_ID = 0  # shared image, subjectim value 1, shown on trial 1 with a huge response
CONSTANT_VOXEL = (3, 3, 2)  # constant over subject 1's session 2 (zero variance)

LABELS = {
    "prf-visualrois": {1: "V1v", 2: "V1d", 3: "V2v", 4: "V2d", 5: "V3v", 6: "V3d", 7: "hV4"},
    "floc-bodies": {1: "EBA", 2: "FBA-1", 3: "FBA-2", 4: "mTL-bodies"},  # mTL-bodies: empty
    "nsdgeneral": {1: "nsdgeneral"},
    "Kastner2015": {1: "V1v", 2: "V1d", 3: "LO1"},  # subject 2 only: makes V1v ambiguous
}


@dataclass
class MiniNsd:
    """What ``write_mini_nsd`` wrote: paths plus the ground truth."""

    root: Path
    subjects: tuple[int, ...]
    trial_nsd_ids: dict[int, np.ndarray]  # subject -> 0-based nsdId per design trial
    session_betas: dict[int, list[np.ndarray]]  # subject -> int16 (X, Y, Z, T) per session
    rois: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # family -> int16 vol
    ncsnr: dict[int, np.ndarray] = field(default_factory=dict)  # float32 (X, Y, Z)
    brain: np.ndarray | None = None  # bool (X, Y, Z)
    shared_nsd_ids: np.ndarray | None = None  # 0-based
    n_design_subjects: int = 3

    @property
    def layout(self) -> NsdLayout:
        return NsdLayout(self.root)

    def loaded_trials(self, subject: int) -> np.ndarray:
        """0-based nsdIds of the trials covered by the subject's session files."""
        return self.trial_nsd_ids[subject][: sum(SESSION_TRIALS[subject])]


def _design(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0-based ``(columns per trial, nsdIds per subject column, shared nsdIds)``."""
    shared = np.concatenate([[DISTINCT_NSD_ID], rng.choice(np.arange(1, 50), N_SHARED - 1, False)])
    others = rng.permutation(np.setdiff1d(np.arange(N_NSD_IMAGES), shared))
    per_subject = N_COLUMNS - N_SHARED
    subjectim = np.stack(
        [
            np.concatenate([shared, others[s * per_subject : (s + 1) * per_subject]])
            for s in range(3)
        ]
    )
    shown = np.repeat(np.arange(len(REPEATS)), REPEATS)  # starts 0, 0, 0, 1, ...
    # column 0 (the distinct image) on trial 1, the rest shuffled, then design-only trials
    design_only = np.repeat(np.arange(len(REPEATS), N_COLUMNS), 2)[:EXTRA_DESIGN_TRIALS]
    columns = np.concatenate([[0], rng.permutation(shown[1:]), design_only])
    return columns, subjectim, shared


def _brain_and_rois(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Brain mask and label volumes (−1 outside the brain, 0 unlabelled)."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij"))
    brain = (grid**2).sum(axis=0) <= 1.6
    vols = {family: np.where(brain, 0, -1).astype(np.int16) for family in LABELS}
    inside = np.argwhere(brain)
    picks = rng.permutation(len(inside))
    for label, chunk in zip(range(1, 8), np.array_split(picks[:28], 7), strict=True):
        vols["prf-visualrois"][tuple(inside[chunk].T)] = label  # 4 voxels per label
    for label, chunk in zip((1, 2, 3), np.array_split(picks[6:30], 3), strict=True):
        vols["floc-bodies"][tuple(inside[chunk].T)] = label  # overlaps prf-visualrois
    vols["nsdgeneral"][tuple(inside[picks[: len(picks) * 2 // 3]].T)] = 1
    vols["nsdgeneral"][CONSTANT_VOXEL] = 1
    for label, chunk in zip((1, 2, 3), np.array_split(picks[:12], 3), strict=True):
        vols["Kastner2015"][tuple(inside[chunk].T)] = label
    return brain, vols


def _session_betas(
    rng: np.random.Generator, brain: np.ndarray, signal: np.ndarray, nsd_ids: np.ndarray
) -> np.ndarray:
    """int16 (X, Y, Z, T): per-session offset and scale per voxel, signal plus noise."""
    offset = rng.normal(0.0, 2.0, SHAPE)[..., None]
    scale = rng.uniform(0.5, 3.0, SHAPE)[..., None]
    trials = signal[..., nsd_ids] + 0.3 * rng.standard_normal((*SHAPE, nsd_ids.size))
    psc = np.where(brain[..., None], offset + scale * trials, 0.0)
    return np.rint(psc * BETA_SCALE).astype(np.int16)


def write_mini_nsd(
    root: str | Path, *, seed: int = 0, formats: tuple[str, ...] = (".nii.gz", ".hdf5")
) -> MiniNsd:
    """Write the miniature NSD under ``root`` (each session in every format of ``formats``)."""
    rng = np.random.default_rng(seed)
    layout = NsdLayout(root)
    columns, subjectim, shared = _design(rng)
    write_expdesign(layout.expdesign, columns + 1, subjectim + 1, shared + 1)
    _write_stimuli(layout, subjectim, shared, rng)
    brain, vols = _brain_and_rois(rng)
    signal = rng.standard_normal((*SHAPE, N_NSD_IMAGES))
    signal[..., DISTINCT_NSD_ID] = 5.0
    truth = MiniNsd(Path(root), tuple(SESSION_TRIALS), {}, {}, brain=brain, shared_nsd_ids=shared)
    for subject, lengths in SESSION_TRIALS.items():
        trial_ids = subjectim[subject - 1, columns]
        truth.trial_nsd_ids[subject] = trial_ids
        families = [f for f in LABELS if f != "Kastner2015" or subject == 2]
        for family in families:
            write_volume(layout.roi_volume(subject, family), vols[family])
            write_ctab(layout.ctab(subject, family), LABELS[family])
        truth.rois[subject] = {f: vols[f] for f in families}
        write_volume(layout.brainmask(subject), brain.astype(np.int16))
        truth.ncsnr[subject] = rng.uniform(0.0, 1.5, SHAPE).astype(np.float32)
        write_volume(layout.ncsnr(subject), truth.ncsnr[subject])
        bounds = np.cumsum((0, *lengths))
        truth.session_betas[subject] = []
        for session, (start, stop) in enumerate(itertools.pairwise(bounds), 1):
            data = _session_betas(rng, brain, signal, trial_ids[start:stop])
            if subject == 1 and session == 2:
                data[CONSTANT_VOXEL] = 123
            truth.session_betas[subject].append(data)
            for suffix in formats:
                write_betas_session(layout.betas_session(subject, session, suffix=suffix), data)
    return truth


def _write_stimuli(
    layout: NsdLayout, subjectim: np.ndarray, shared: np.ndarray, rng: np.random.Generator
) -> None:
    """``nsd_stim_info_merged.csv`` (nsdId, shared1000, subjectS) and a tiny ``imgBrick``."""
    table = pd.DataFrame({"nsdId": np.arange(N_NSD_IMAGES)})
    table["shared1000"] = np.isin(table["nsdId"], shared)
    for s in range(subjectim.shape[0]):
        table[f"subject{s + 1}"] = np.isin(table["nsdId"], subjectim[s]).astype(int)
    write_stim_info(layout.stim_info, table)
    write_imgbrick(layout.stimuli, rng.integers(0, 256, (N_NSD_IMAGES, 4, 4, 3)))


@dataclass
class MiniAlgonauts:
    """What ``write_mini_algonauts`` wrote for subject 1."""

    root: Path
    nsd_ids: np.ndarray  # 0-based, in training row order
    fmri: dict[str, np.ndarray]  # hemi -> float32 (n_images, n_vertices)
    fsaverage_index: dict[str, np.ndarray]  # hemi -> fsaverage vertex per challenge vertex
    labels: dict[str, dict[str, np.ndarray]]  # hemi -> family -> label id per vertex
    mappings: dict[str, dict[int, str]]


ALGONAUTS_FAMILIES = {
    "prf-visualrois": LABELS["prf-visualrois"],
    "floc-bodies": LABELS["floc-bodies"],
}
FSAVERAGE_VERTICES = 60


def write_mini_algonauts(root: str | Path, *, seed: int = 0, n_images: int = 15) -> MiniAlgonauts:
    """Write an Algonauts 2023 tree for subject 1 (PNG names, fMRI, ROI masks, mappings)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    subject_dir = Path(root) / "subj01"
    images = subject_dir / "training_split" / "training_images"
    fmri_dir = subject_dir / "training_split" / "training_fmri"
    masks = subject_dir / "roi_masks"
    for folder in (images, fmri_dir, masks):
        folder.mkdir(parents=True, exist_ok=True)
    nsd_ids = rng.choice(N_NSD_IMAGES, n_images, replace=False)  # unsorted on purpose
    for row, nsd_id in enumerate(nsd_ids, 1):
        Image.new("RGB", (2, 2), (row, 0, 0)).save(images / f"train-{row:04d}_nsd-{nsd_id:05d}.png")
    truth = MiniAlgonauts(Path(root), nsd_ids, {}, {}, {}, dict(ALGONAUTS_FAMILIES))
    for family, names in ALGONAUTS_FAMILIES.items():
        np.save(masks / f"mapping_{family}.npy", {0: "Unknown", **names})
    for hemi, n_vertices in (("lh", 20), ("rh", 24)):
        index = np.sort(rng.choice(FSAVERAGE_VERTICES, n_vertices, replace=False))
        np.save(
            masks / f"{hemi}.all-vertices_fsaverage_space.npy",
            np.isin(np.arange(FSAVERAGE_VERTICES), index).astype(np.float32),
        )
        truth.fsaverage_index[hemi] = index
        truth.fmri[hemi] = rng.standard_normal((n_images, n_vertices)).astype(np.float32)
        np.save(fmri_dir / f"{hemi}_training_fmri.npy", truth.fmri[hemi])
        truth.labels[hemi] = {}
        for family, names in ALGONAUTS_FAMILIES.items():
            ids = rng.integers(0, len(names) + 1, n_vertices)
            if family == "floc-bodies":
                ids[ids == 4] = 0  # mTL-bodies: named but empty, as in NSD
            truth.labels[hemi][family] = ids.astype(np.float32)
            np.save(masks / f"{hemi}.{family}_challenge_space.npy", truth.labels[hemi][family])
    return truth


@pytest.fixture(scope="session")
def mini_nsd(tmp_path_factory: pytest.TempPathFactory) -> MiniNsd:
    """A miniature NSD tree (seed 0), shared by every test: do not modify it."""
    return write_mini_nsd(tmp_path_factory.mktemp("mini_nsd"))


@pytest.fixture
def mini_nsd_copy(mini_nsd: MiniNsd, tmp_path: Path) -> MiniNsd:
    """A private copy of ``mini_nsd`` that a test may damage."""
    shutil.copytree(mini_nsd.root, tmp_path / "nsd")
    return dataclasses.replace(mini_nsd, root=tmp_path / "nsd")


@pytest.fixture(scope="session")
def mini_algonauts(tmp_path_factory: pytest.TempPathFactory) -> MiniAlgonauts:
    """A miniature Algonauts 2023 tree (seed 0), shared: do not modify it."""
    return write_mini_algonauts(tmp_path_factory.mktemp("mini_algonauts"))
