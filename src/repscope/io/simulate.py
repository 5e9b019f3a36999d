"""A simulated Natural Scenes Dataset, in NSD's exact layout, for when no fMRI data is at hand.

:func:`simulate_nsd` writes real offline images and simulated single-trial betas into the
folders and formats of NSD (:mod:`repscope.io.nsd_layout`), so :func:`repscope.io.nsd.load_nsd`
and every analysis downstream run on it unchanged. The tree is always labelled simulated: its
root holds the simulation record (``simulation.json``, ``"simulated": true``, written first
and completed last) and ``ground_truth/`` with the planted responses.

Ground truth
------------
- **Images**: the first ``n_images`` of the stimulus set, centre-cropped to squares of
  ``image_size`` pixels (RGB uint8), are rows 0.. of ``nsd_stimuli.hdf5`` (row = nsdId, so
  the loader's ids are ``"nsd-%05d"``; ``source_id`` in the stim-info CSV names the source).
- **Design**: every subject sees every image ``repeats`` times, one trial order for all
  subjects (``masterordering``); a seeded tenth of the images (at most 1000) is the shared
  set (``sharedix``, ``shared1000``, the first ``subjectim`` columns); sessions hold
  ``trials_per_session`` trials, the last one the rest.
- **Early ROI** (``prf-visualrois``, V1v V1d V2v V2d V3v V3d hV4): each voxel reads out the
  low-level statistics of :func:`repscope.io.lowlevel.low_level_features` (4 × 4 grid,
  4 orientations) through a Gaussian pRF (sd 0.06–0.12 of the image width in V1 growing to
  0.16–0.30 in hV4) with a random mix of luminance, RMS contrast and orientation-tuned Gabor
  energy.
- **Higher ROI** (``floc-bodies`` EBA): each voxel is a random N(0, 1)-weighted sum of the
  ``higher_components`` leading principal components (each standardized) of the generating
  model's embedding (default MobileNetV2's pooled penultimate features).
- In both ROIs a ``nonlinear_fraction`` of voxels is rectified, max(0, centred drive) (for
  a Gaussian drive a linear model then explains about 73 % of the signal); the rest are
  linear.
- **Noise-only voxels** (in ``nsdgeneral`` only, as are all voxels): no signal, ncsnr 0.
- **Noise**: per voxel, ncsnr = signal sd / single-trial noise sd, drawn uniformly from
  ``snr_range`` (default 0.2–1.0); three repeats (``repeats``) with independent Gaussian
  noise; random offset and scale per session and voxel, removed by the loader's per-session
  z-scoring. ``ncsnr.nii.gz`` holds the true value, so NSD's formula
  NC = ncsnr² / (ncsnr² + 1/n) gives the true noise ceiling: with n = 3, ncsnr 0.2 → 0.11,
  0.5 → 0.43, 1.0 → 0.75.
- **The ceiling**: no model predicts held-out repeat-averaged responses with R² above NC
  (beyond estimation noise); the generating features approach it on linear voxels as the
  number of images grows.

``ground_truth/features.npz`` holds the generating features (low-level statistics, the
model's embedding and its standardized components, with names); ``ground_truth/subjAA.npz``
holds per voxel its coordinates, ROI, readout weights, nonlinearity flag, ncsnr, true noise
ceiling, and the noiseless responses in the loader's units (see :class:`SimulatedNSD`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from repscope._progress import progress_bar
from repscope._validation import InputError
from repscope.io import _simulate_brain as brain
from repscope.io._simulate_checks import (
    check_features,
    check_last_session,
    check_options,
    check_out_dir,
    first_images,
    prepare_out_dir,
)
from repscope.io._simulate_design import Design, make_design, write_design
from repscope.io._simulate_record import GROUND_TRUTH_DIR, record
from repscope.io.atomic import atomic_write, atomic_write_json
from repscope.io.lowlevel import low_level_feature_names, low_level_features, square_image
from repscope.io.models import LoadedModel
from repscope.io.nsd_layout import NsdLayout, write_betas_session, write_imgbrick
from repscope.io.stimuli import ArrayStimuli, Stimuli, open_stimuli

__all__ = ["DEFAULT_MODEL", "SimulatedNSD", "simulate_nsd"]

DEFAULT_MODEL = "torchvision:mobilenet_v2.IMAGENET1K_V1"


@dataclass(frozen=True)
class SimulatedNSD:
    """Where a simulated NSD was written, and what it holds.

    Attributes
    ----------
    root : Path
        The NSD root; pass it to :func:`repscope.io.nsd.load_nsd`.
    layout : NsdLayout
        Paths of NSD's files under ``root``.
    subjects : tuple of int
        1-based subject numbers written.
    record : Path
        The simulation record (JSON): parameters, ROI definitions, expected noise ceilings.
    features : Path
        ``ground_truth/features.npz``: ``nsd_ids`` (n_images,), ``low_level`` (n_images,
        n_low) with ``low_level_names``, ``model_embedding`` (n_images, d) and
        ``model_components`` (n_images, k, each mean 0, sd 1) with ``model_component_names``.
    ground_truth : dict of int to Path
        Per subject ``ground_truth/subjAA.npz``: ``nsd_ids`` (n_images,), ``coordinates``
        (n_voxels, 3), ``roi`` and ``kind`` (str, n_voxels), ``nonlinear`` (bool), ``ncsnr``,
        ``noise_ceiling`` (fraction, for ``repeats`` trials), ``gain`` (%), ``signal``
        (n_images, n_voxels; mean 0, sd 1, 0 for noise voxels), ``responses`` = signal ×
        ncsnr / sqrt(1 + ncsnr²), the expected repeat-averaged z-scored response the loader
        returns, ``early_weights`` (n_early, n_low) on the centred raw low-level features,
        ``prf_centre``, ``prf_sigma``, ``prf_orientation``, ``higher_weights`` (n_higher, k),
        and ``session_offset`` / ``session_scale`` (n_sessions, n_voxels).
    summary : dict
        The record's content.
    """

    root: Path
    layout: NsdLayout
    subjects: tuple[int, ...]
    record: Path
    features: Path
    ground_truth: Mapping[int, Path]
    summary: dict[str, Any]


def simulate_nsd(
    out_dir: str | os.PathLike[str],
    stimuli: str | os.PathLike[str] | Stimuli = "builtin:digits",
    *,
    n_subjects: int = 2,
    model: str | LoadedModel | npt.ArrayLike = DEFAULT_MODEL,
    n_images: int | None = None,
    repeats: int = 3,
    trials_per_session: int = 750,
    image_size: int = 128,
    early_voxels: int = 140,
    higher_voxels: int = 100,
    noise_voxels: int = 40,
    higher_components: int = 10,
    nonlinear_fraction: float = 0.3,
    snr_range: tuple[float, float] = (0.2, 1.0),
    betas_format: Literal["nii.gz", "hdf5"] = "nii.gz",
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SimulatedNSD:
    """Write a simulated NSD (images, design, ROIs, single-trial betas, ncsnr, ground truth).

    Parameters
    ----------
    out_dir : path-like
        New or empty folder (or, with ``overwrite``, a previous simulation) for the NSD root.
    stimuli : str, path-like or Stimuli
        Real images: anything :func:`repscope.io.stimuli.open_stimuli` accepts, e.g.
        ``"builtin:digits"``, ``"builtin:photos"`` or an image folder.
    n_subjects : int
        Subjects, 1–8 (NSD's count).
    model : str, LoadedModel or array-like of shape (n_images, n_features)
        Generating model of the higher ROI: a model spec or loaded model for
        :func:`repscope.io.extract.extract_embeddings` (penultimate layer, run on the written
        images), or precomputed features, one row per simulated image in stimulus order.
    n_images : int, optional
        Use only the first ``n_images`` stimuli (default all; at least 20).
    repeats : int
        Trials per image (NSD: 3).
    trials_per_session : int
        Trials per betas session file (NSD: 750); the last session holds the rest.
    image_size : int
        Side in pixels of the square images in ``nsd_stimuli.hdf5`` (NSD: 425).
    early_voxels, higher_voxels, noise_voxels : int
        Voxels in the early ROI (split over its 7 labels), in EBA, and with noise only.
    higher_components : int
        Leading principal components of the model's embedding that drive EBA.
    nonlinear_fraction : float
        Share of signal voxels whose readout is rectified, in [0, 1].
    snr_range : (float, float)
        ncsnr (signal sd / noise sd) of signal voxels, drawn uniformly, 0 < low <= high.
    betas_format : {"nii.gz", "hdf5"}
        Session betas as NIfTI (X, Y, Z, trials) or NSD's HDF5 (trials, Z, Y, X).
    seed : int
        Seeds everything: design, voxels, noise.
    overwrite : bool
        Replace a previous simulation in ``out_dir`` (never a folder that is not one).
    progress : bool
        Show progress bars.
    cache_dir : path-like, optional
        Embedding cache of the model's features (default repscope's cache).

    Returns
    -------
    SimulatedNSD

    Raises
    ------
    InputError
        Unknown stimuli or model, too few images, a bad count or range, model features of the
        wrong shape, or an out_dir that is not writable, or holds anything but a simulation.

    Examples
    --------
    >>> import tempfile
    >>> features = np.random.default_rng(0).standard_normal((60, 16))  # a stand-in model
    >>> with tempfile.TemporaryDirectory() as out:
    ...     sim = simulate_nsd(out, "builtin:digits", model=features, n_images=60,
    ...                        n_subjects=1, image_size=32)
    ...     sim.subjects, sim.summary["simulated"], sim.summary["design"]["n_shared"]
    ((1,), True, 6)
    """
    options = check_options(
        n_subjects=n_subjects,
        n_images=n_images,
        repeats=repeats,
        trials_per_session=trials_per_session,
        image_size=image_size,
        voxels=(early_voxels, higher_voxels, noise_voxels),
        higher_components=higher_components,
        nonlinear_fraction=nonlinear_fraction,
        snr_range=snr_range,
        betas_format=betas_format,
        seed=seed,
    )
    stim = first_images(open_stimuli(stimuli), n_images)
    n = len(stim)
    check_last_session(n * repeats, trials_per_session)
    generator = model if isinstance(model, (str, LoadedModel)) else check_features(model, n)
    root = check_out_dir(out_dir, overwrite)
    planned = _plan(stim, generator, options, cache_dir, progress)
    # everything that can fail on the input has run: only now is the folder written
    layout = NsdLayout(prepare_out_dir(root))
    atomic_write_json(layout.simulation_record, {"simulated": True, "complete": False})
    write_imgbrick(layout.stimuli, planned.brick)
    write_design(layout, planned.design, stim.ids)
    features_path = _save_features(root, planned)
    vox = brain.voxel_layout(early_voxels, higher_voxels, noise_voxels)
    paths, noise_ceilings = {}, {}
    with progress_bar(
        n_subjects * planned.design.n_sessions, "simulating betas", unit="session", enabled=progress
    ) as advance:
        for subject, rng in enumerate(planned.subject_rngs, start=1):
            paths[subject], noise_ceilings[subject] = _simulate_subject(
                layout, subject, planned, vox, options, rng, advance
            )
    summary = record(options, stim, model, planned.embedding, planned.design, vox, noise_ceilings)
    atomic_write_json(layout.simulation_record, summary)
    return SimulatedNSD(
        root=root,
        layout=layout,
        subjects=tuple(paths),
        record=layout.simulation_record,
        features=features_path,
        ground_truth=paths,
        summary=summary,
    )


@dataclass(frozen=True)
class _Plan:
    """Everything computed before writing: images, generating features, design, RNGs."""

    brick: np.ndarray
    low: np.ndarray
    embedding: np.ndarray
    components: np.ndarray
    design: Design
    subject_rngs: tuple[np.random.Generator, ...]


def _plan(
    stim: Stimuli,
    model: str | LoadedModel | np.ndarray,
    options: Mapping[str, Any],
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
) -> _Plan:
    """Square the images, compute both generating feature sets, draw the design."""
    brick = _image_brick(stim, options["image_size"], progress)
    low = low_level_features(brick, grid=brain.GRID, n_orientations=brain.N_ORIENTATIONS)
    brain.low_level_scales(low)  # raises on images without low-level variation
    embedding = (
        model if isinstance(model, np.ndarray) else _embed(model, brick, cache_dir, progress)
    )
    components = _components(embedding, options["higher_components"])
    seeds = np.random.SeedSequence(options["seed"]).spawn(1 + options["n_subjects"])
    design_rng, *subject_rngs = (np.random.default_rng(s) for s in seeds)
    design = make_design(
        len(stim),
        options["n_subjects"],
        options["repeats"],
        options["trials_per_session"],
        design_rng,
    )
    return _Plan(brick, low, embedding, components, design, tuple(subject_rngs))


def _image_brick(stim: Stimuli, size: int, progress: bool) -> np.ndarray:
    """The stimuli as NSD shows them: RGB uint8 squares, shape (n, size, size, 3)."""
    brick = np.empty((len(stim), size, size, 3), dtype=np.uint8)
    with progress_bar(len(stim), "images", unit="img", enabled=progress) as advance:
        for i in range(len(stim)):
            brick[i] = np.asarray(square_image(stim.load(i), size))
            advance(1)
    return brick


def _embed(
    model: str | LoadedModel,
    brick: np.ndarray,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
) -> np.ndarray:
    """The model's penultimate features of the written images (what load_nsd's ids name)."""
    from repscope.io.extract import extract_embeddings

    ids = [f"nsd-{i:05d}" for i in range(len(brick))]
    emb = extract_embeddings(
        model, ArrayStimuli(brick, ids), cache_dir=cache_dir, on_error="raise", progress=progress
    )
    return emb.X.astype(np.float64)


def _components(embedding: np.ndarray, k: int) -> np.ndarray:
    """The k leading principal components of the embedding, each standardized, (n, k)."""
    from repscope.preprocessing import pca_reduce

    scores = pca_reduce(embedding, k).scores
    sd = scores.std(0)
    # components with ~0 variance (rank-deficient features) cannot be standardized
    if scores.shape[1] < k or sd.min() <= 1e-10 * sd.max():
        raise InputError(
            f"the model's embedding has fewer than higher_components={k} non-degenerate "
            "principal components; pass a smaller higher_components or richer features."
        )
    return scores / sd


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def _save_features(root: Path, planned: _Plan) -> Path:
    path = root / GROUND_TRUTH_DIR / "features.npz"
    names = low_level_feature_names(grid=brain.GRID, n_orientations=brain.N_ORIENTATIONS)
    k = planned.components.shape[1]
    _save_npz(
        path,
        nsd_ids=np.arange(len(planned.low)),
        low_level=planned.low,
        low_level_names=np.array(names),
        model_embedding=planned.embedding.astype(np.float32),
        model_components=planned.components,
        model_component_names=np.array([f"pc{i + 1:02d}" for i in range(k)]),
    )
    return path


def _simulate_subject(
    layout: NsdLayout,
    subject: int,
    planned: _Plan,
    vox: brain.VoxelLayout,
    options: Mapping[str, Any],
    rng: np.random.Generator,
    advance: Any,
) -> tuple[Path, np.ndarray]:
    """Write one subject's ROIs, sessions and ncsnr; save its ground truth.

    Returns the ground truth's path and the true noise ceiling per voxel.
    """
    brain.write_rois(layout, subject, vox)
    design = planned.design
    pop = brain.simulate_population(
        vox,
        planned.low,
        planned.components,
        nonlinear_fraction=options["nonlinear_fraction"],
        snr_range=options["snr_range"],
        rng=rng,
    )
    images = design.trial_images(subject)
    suffix = "." + options["betas_format"]
    offsets, scales = [], []
    for session in range(1, design.n_sessions + 1):
        betas, offset, scale = brain.session_betas(
            pop, vox, images[design.session_trials(session)], rng
        )
        write_betas_session(layout.betas_session(subject, session, suffix=suffix), betas)
        offsets.append(offset)
        scales.append(scale)
        advance(1)
    brain.write_ncsnr(layout.ncsnr(subject), vox, pop.ncsnr)
    # the true NC of a mean of `repeats` trials: signal var / (signal var + noise var / n)
    nc = pop.ncsnr**2 / (pop.ncsnr**2 + 1.0 / design.repeats)
    path = layout.root / GROUND_TRUTH_DIR / f"subj{subject:02d}.npz"
    _save_npz(
        path,
        nsd_ids=np.arange(pop.signal.shape[0]),
        coordinates=vox.coordinates,
        roi=vox.label,
        kind=vox.kind,
        nonlinear=pop.nonlinear,
        ncsnr=pop.ncsnr,
        noise_ceiling=nc,
        gain=pop.gain,
        signal=pop.signal,
        responses=pop.signal * (pop.ncsnr / np.sqrt(1.0 + pop.ncsnr**2)),
        early_weights=pop.early.weights,
        prf_centre=pop.early.centre,
        prf_sigma=pop.early.sigma,
        prf_orientation=pop.early.orientation,
        higher_weights=pop.higher_weights,
        session_offset=np.stack(offsets),
        session_scale=np.stack(scales),
    )
    return path, nc
