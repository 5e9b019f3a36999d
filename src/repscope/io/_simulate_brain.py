"""Simulated voxels: where they sit, what drives them, and their single-trial betas.

One subject's population (the ground truth :mod:`repscope.io.simulate` documents):

- **early** voxels (``prf-visualrois`` V1v … hV4) are pRF-like readouts of the low-level
  features of :func:`repscope.io.lowlevel.low_level_features`: a Gaussian over grid cells
  (centre uniform in the central 70 % of the image, size growing from V1 to hV4), a mix of
  luminance, contrast and oriented energy (Dirichlet(1, 1, 1) weights), and orientation
  tuning exp(κ cos 2(θ − θ_pref)), κ = 2, over the energy channels;
- **higher** voxels (``floc-bodies`` EBA) read out the leading principal components of the
  generating model's embedding, each standardized, with N(0, 1) weights;
- a fraction of voxels of both kinds is rectified, max(0, drive), after centring the drive;
- **noise** voxels carry no signal.

Each voxel's noiseless signal is standardized over the images (mean 0, sd 1). A trial's
response in percent signal change is ``offset + scale × gain × (ncsnr × signal + ε) /
sqrt(1 + ncsnr²)``, ε ~ N(0, 1) independent per trial and voxel, ``offset`` ~ N(0, 1) % and
``scale`` ~ U(0.75, 1.25) per session and voxel, ``gain`` ~ U(1, 3) % per voxel: so ncsnr is
exactly the signal sd over the noise sd, and |betas| stays below int16's range by > 20 sd.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope._validation import InputError
from repscope.io.nsd_layout import BETA_SCALE, NsdLayout, write_ctab, write_volume

__all__ = [
    "EARLY_FAMILY",
    "EARLY_LABELS",
    "GENERAL_FAMILY",
    "GRID",
    "HIGHER_FAMILY",
    "HIGHER_LABELS",
    "N_ORIENTATIONS",
    "PRF_SIGMA",
    "Population",
    "VoxelLayout",
    "early_readouts",
    "low_level_scales",
    "session_betas",
    "simulate_population",
    "voxel_layout",
    "write_ncsnr",
    "write_rois",
]

EARLY_FAMILY = "prf-visualrois"
EARLY_LABELS = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4")
HIGHER_FAMILY = "floc-bodies"
#: floc-bodies' labels as NSD names them; only EBA holds simulated voxels.
HIGHER_LABELS = ("EBA", "FBA-1", "FBA-2", "mTL-bodies")
GENERAL_FAMILY = "nsdgeneral"
#: Low-level feature grid (cells per side) and Gabor orientations the early ROI reads out.
GRID, N_ORIENTATIONS = 4, 4
#: pRF size (Gaussian sd, fraction of the image width) drawn uniformly per area.
PRF_SIGMA = {"V1": (0.06, 0.12), "V2": (0.09, 0.16), "V3": (0.12, 0.22), "hV4": (0.16, 0.30)}
PRF_CENTRE_RANGE = (0.15, 0.85)
ORIENTATION_KAPPA = 2.0
GAIN_PSC = (1.0, 3.0)
OFFSET_SD_PSC = 1.0
SESSION_SCALE = (0.75, 1.25)


@dataclass(frozen=True)
class VoxelLayout:
    """Where the simulated voxels sit in the subject's volume.

    Attributes
    ----------
    shape : tuple of int
        Volume shape (X, Y, Z); a one-voxel non-brain border surrounds the voxels.
    coordinates : ndarray of int, shape (n_voxels, 3)
    label : ndarray of str, shape (n_voxels,)
        ROI label (``"V1v"`` … ``"hV4"``, ``"EBA"``) or ``"noise"``.
    kind : ndarray of str, shape (n_voxels,)
        ``"early"``, ``"higher"`` or ``"noise"``.
    """

    shape: tuple[int, int, int]
    coordinates: np.ndarray
    label: np.ndarray
    kind: np.ndarray


def voxel_layout(early: int, higher: int, noise: int) -> VoxelLayout:
    """Early voxels split over the seven prf-visualrois labels, then EBA, then noise voxels,
    filling a box in C order."""
    per_label = np.full(len(EARLY_LABELS), early // len(EARLY_LABELS))
    per_label[: early % len(EARLY_LABELS)] += 1
    label = np.concatenate(
        [np.repeat(EARLY_LABELS, per_label), np.repeat("EBA", higher), np.repeat("noise", noise)]
    )
    kind = np.repeat(["early", "higher", "noise"], [early, higher, noise])
    n = label.size
    side = math.ceil(n ** (1 / 3))
    box = (side, side, math.ceil(n / side**2))
    coordinates = np.stack(np.unravel_index(np.arange(n), box), axis=1) + 1
    return VoxelLayout(tuple(int(b) + 2 for b in box), coordinates, label, kind)


def write_rois(layout: NsdLayout, subject: int, vox: VoxelLayout) -> None:
    """brainmask, ``roi/{prf-visualrois,floc-bodies,nsdgeneral}.nii.gz`` and their ctabs.

    ROI volumes hold −1 outside the brain, 0 for brain voxels outside the family, and the
    label id; every simulated voxel, noise voxels included, is in nsdgeneral.
    """
    brain = np.zeros(vox.shape, dtype=np.int16)
    i, j, k = vox.coordinates.T
    brain[i, j, k] = 1
    write_volume(layout.brainmask(subject), brain)
    families = {
        EARLY_FAMILY: EARLY_LABELS,
        HIGHER_FAMILY: HIGHER_LABELS,
        GENERAL_FAMILY: (GENERAL_FAMILY,),
    }
    for family, names in families.items():
        ids = {name: n for n, name in enumerate(names, start=1)}
        if family == GENERAL_FAMILY:
            values = np.ones(vox.label.size, dtype=np.int16)
        else:
            values = np.array([ids.get(str(name), 0) for name in vox.label], dtype=np.int16)
        volume = np.where(brain > 0, 0, -1).astype(np.int16)
        volume[i, j, k] = values
        write_volume(layout.roi_volume(subject, family), volume)
        write_ctab(layout.ctab(subject, family), {n: name for name, n in ids.items()})


@dataclass(frozen=True)
class EarlyReadouts:
    """pRF-like readouts of the low-level features, one row per early voxel.

    Attributes
    ----------
    weights : ndarray of shape (n_early, n_low_features)
        drive = (F − F.mean(0)) @ weights.T, F the raw low-level features.
    centre : ndarray of shape (n_early, 2)
        pRF centre (x, y) as fractions of the image width, y downwards.
    sigma : ndarray of shape (n_early,)
        pRF sd, fraction of the image width.
    orientation : ndarray of shape (n_early,)
        Preferred orientation in degrees (0 = vertical bars).
    mix : ndarray of shape (n_early, 3)
        Weights of luminance, contrast and energy (sum 1).
    """

    weights: np.ndarray
    centre: np.ndarray
    sigma: np.ndarray
    orientation: np.ndarray
    mix: np.ndarray


def early_readouts(low: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> EarlyReadouts:
    """Draw one pRF readout per early voxel; ``labels`` are their prf-visualrois names.

    ``low`` holds the low-level features (n_images, GRID² × (2 + N_ORIENTATIONS)).
    """
    grid, n_orientations = GRID, N_ORIENTATIONS
    n = labels.size
    area = np.array([str(name).rstrip("vd") for name in labels])
    bounds = np.array([PRF_SIGMA[a] for a in area]).reshape(n, 2)
    sigma = rng.uniform(bounds[:, 0], bounds[:, 1])
    centre = rng.uniform(*PRF_CENTRE_RANGE, size=(n, 2))
    orientation = rng.uniform(0.0, 180.0, size=n)
    mix = rng.dirichlet(np.ones(3), size=n)
    cells = np.stack(np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij"), -1) + 0.5
    cell_yx = cells.reshape(-1, 2) / grid
    dist2 = ((cell_yx[None, :, ::-1] - centre[:, None, :]) ** 2).sum(-1)
    spatial = np.exp(-dist2 / (2 * sigma[:, None] ** 2))
    spatial /= spatial.sum(1, keepdims=True)
    thetas = np.arange(n_orientations) * (180.0 / n_orientations)
    tuning = np.exp(
        ORIENTATION_KAPPA * np.cos(np.deg2rad(2 * (thetas[None] - orientation[:, None])))
    )
    tuning /= tuning.sum(1, keepdims=True)
    energy = (tuning[:, :, None] * spatial[:, None, :]).reshape(n, -1)
    blocks = [mix[:, :1] * spatial, mix[:, 1:2] * spatial, mix[:, 2:] * energy]
    weights = np.concatenate(blocks, axis=1) / low_level_scales(low)[None]
    return EarlyReadouts(weights, centre, sigma, orientation, mix)


def low_level_scales(low: np.ndarray) -> np.ndarray:
    """Per column, the sd of its feature type (luminance, contrast, all energy) over the
    images and cells, so the three types enter on one scale; shape (n_low_features,).

    Raises
    ------
    InputError
        A feature type does not vary (blank or identical images).
    """
    cells = GRID * GRID
    edges = [0, cells, 2 * cells, low.shape[1]]
    centred = low - low.mean(0)
    scales = np.empty(low.shape[1])
    for start, stop in itertools.pairwise(edges):
        scales[start:stop] = centred[:, start:stop].std()
    if np.any(scales == 0):
        raise InputError(
            "the images show no variation in luminance, contrast or oriented energy; "
            "pass a stimulus set of distinct, non-blank images."
        )
    return scales


@dataclass(frozen=True)
class Population:
    """One subject's simulated voxels.

    Attributes
    ----------
    signal : ndarray of float64, shape (n_images, n_voxels)
        Noiseless response over the images, mean 0 and sd 1 per voxel (0 for noise voxels).
    ncsnr : ndarray of shape (n_voxels,)
        Signal sd / single-trial noise sd (0 for noise voxels).
    gain : ndarray of shape (n_voxels,)
        Response sd of a single trial in percent signal change (before session scales).
    nonlinear : ndarray of bool, shape (n_voxels,)
        Rectified readout.
    early : EarlyReadouts
    higher_weights : ndarray of shape (n_higher, n_components)
        drive = Z @ higher_weights.T, Z the standardized principal components.
    """

    signal: np.ndarray
    ncsnr: np.ndarray
    gain: np.ndarray
    nonlinear: np.ndarray
    early: EarlyReadouts
    higher_weights: np.ndarray


def simulate_population(
    vox: VoxelLayout,
    low: np.ndarray,
    components: np.ndarray,
    *,
    nonlinear_fraction: float,
    snr_range: tuple[float, float],
    rng: np.random.Generator,
) -> Population:
    """Draw readouts, nonlinearity, SNR and gain for every voxel of ``vox``."""
    is_early, is_higher = vox.kind == "early", vox.kind == "higher"
    early = early_readouts(low, vox.label[is_early], rng)
    higher_weights = rng.standard_normal((int(is_higher.sum()), components.shape[1]))
    drive = np.zeros((low.shape[0], vox.label.size))
    drive[:, is_early] = (low - low.mean(0)) @ early.weights.T
    drive[:, is_higher] = components @ higher_weights.T
    nonlinear = (vox.kind != "noise") & (rng.random(vox.label.size) < nonlinear_fraction)
    drive -= drive.mean(0)
    drive[:, nonlinear] = np.maximum(drive[:, nonlinear], 0.0)
    signal = drive - drive.mean(0)
    sd = signal.std(0)
    signal[:, sd > 0] /= sd[sd > 0]
    ncsnr = np.where(vox.kind == "noise", 0.0, rng.uniform(*snr_range, size=vox.label.size))
    gain = rng.uniform(*GAIN_PSC, size=vox.label.size)
    return Population(signal, ncsnr, gain, nonlinear, early, higher_weights)


def session_betas(
    pop: Population, vox: VoxelLayout, images: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One session's int16 betas volume and its per-voxel offset and scale.

    Parameters
    ----------
    images : ndarray of int, shape (n_trials,)
        0-based nsdId shown on each trial of the session.

    Returns
    -------
    betas : ndarray of int16, shape (X, Y, Z, n_trials)
        Percent signal change × 300; 0 outside the brain.
    offset, scale : ndarray of shape (n_voxels,)
    """
    n_vox = vox.label.size
    offset = rng.normal(0.0, OFFSET_SD_PSC, size=n_vox)
    scale = rng.uniform(*SESSION_SCALE, size=n_vox)
    noise = rng.standard_normal((images.size, n_vox))
    unit = (pop.ncsnr * pop.signal[images] + noise) / np.sqrt(1.0 + pop.ncsnr**2)
    psc = offset + scale * pop.gain * unit
    betas = np.zeros((*vox.shape, images.size), dtype=np.int16)
    i, j, k = vox.coordinates.T
    betas[i, j, k, :] = np.rint(psc * BETA_SCALE).T.astype(np.int16)
    return betas, offset, scale


def write_ncsnr(path: Any, vox: VoxelLayout, ncsnr: np.ndarray) -> None:
    """``ncsnr.nii.gz``: float32 (X, Y, Z), the true ncsnr in the brain, 0 outside."""
    volume = np.zeros(vox.shape, dtype=np.float32)
    i, j, k = vox.coordinates.T
    volume[i, j, k] = ncsnr
    write_volume(path, volume)
