"""Input checks of :func:`repscope.io.simulate.simulate_nsd`, and its output folder's guard."""

from __future__ import annotations

import json
import numbers
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from repscope._validation import InputError, check_embedding
from repscope.io._stimulus_base import Stimuli
from repscope.io.nsd_layout import NsdLayout

__all__ = [
    "MIN_IMAGES",
    "MIN_LAST_SESSION",
    "check_last_session",
    "check_options",
    "prepare_out_dir",
]

#: Fewest images simulated: the shared tenth needs a few, and EBA reads out up to ~10 PCs.
MIN_IMAGES = 20
#: Fewest trials in a partial last session: the loader z-scores each session over its trials.
MIN_LAST_SESSION = 10
_MAX_SUBJECTS = 8
#: Top-level entries a simulation writes; overwrite removes exactly these.
_WRITTEN = ("nsddata", "nsddata_betas", "nsddata_stimuli", "ground_truth")
_FORMATS = ("nii.gz", "hdf5")


def _int(name: str, value: Any, low: int, high: int | None = None) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        allowed = f"in {low}..{high}" if high is not None else f">= {low}"
        raise InputError(f"{name}={value!r} is not an integer {allowed}; pass one that is.")
    return int(value)


def check_options(
    *,
    n_subjects: Any,
    n_images: Any,
    repeats: Any,
    trials_per_session: Any,
    image_size: Any,
    voxels: tuple[Any, Any, Any],
    higher_components: Any,
    nonlinear_fraction: Any,
    snr_range: Any,
    betas_format: Any,
    seed: Any,
) -> dict[str, Any]:
    """Validated options (plain JSON-able values) or a one-line InputError."""
    early, higher, noise = voxels
    options = {
        "n_subjects": _int("n_subjects", n_subjects, 1, _MAX_SUBJECTS),
        "n_images": None if n_images is None else _int("n_images", n_images, MIN_IMAGES),
        "repeats": _int("repeats", repeats, 1),
        "trials_per_session": _int("trials_per_session", trials_per_session, MIN_LAST_SESSION),
        "image_size": _int("image_size", image_size, 16),
        "early_voxels": _int("early_voxels", early, 7),
        "higher_voxels": _int("higher_voxels", higher, 1),
        "noise_voxels": _int("noise_voxels", noise, 0),
        "higher_components": _int("higher_components", higher_components, 1),
        "seed": _int("seed", seed, 0),
    }
    if not isinstance(nonlinear_fraction, numbers.Real) or not 0 <= nonlinear_fraction <= 1:
        raise InputError(
            f"nonlinear_fraction={nonlinear_fraction!r} must be a number in [0, 1]; "
            "pass e.g. nonlinear_fraction=0.3."
        )
    options["nonlinear_fraction"] = float(nonlinear_fraction)
    options["snr_range"] = _check_snr_range(snr_range)
    if betas_format not in _FORMATS:
        raise InputError(f"betas_format={betas_format!r} is not known; pass 'nii.gz' or 'hdf5'.")
    options["betas_format"] = betas_format
    return options


def _check_snr_range(snr_range: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in snr_range)
    except (TypeError, ValueError):
        low, high = float("nan"), float("nan")
    if not 0 < low <= high < float("inf"):
        raise InputError(
            f"snr_range={snr_range!r} must be two numbers 0 < low <= high; "
            "pass e.g. snr_range=(0.2, 1.0)."
        )
    return low, high


def check_last_session(n_trials: int, trials_per_session: int) -> None:
    """Refuse a partial last session too short to z-score."""
    rest = n_trials % trials_per_session
    if 0 < rest < MIN_LAST_SESSION:
        raise InputError(
            f"{n_trials} trials in sessions of {trials_per_session} leave {rest} in the last "
            f"session, fewer than the {MIN_LAST_SESSION} needed to z-score it; change "
            "trials_per_session or n_images."
        )


def _is_simulation(root: Path) -> bool:
    record = NsdLayout(root).simulation_record
    try:
        return json.loads(record.read_text()).get("simulated") is True
    except (OSError, ValueError, AttributeError):
        return False


def check_out_dir(out_dir: Any, overwrite: bool) -> Path:
    """The output root, after checking it may be written; nothing is changed yet.

    A non-empty folder that is not a simulation is refused whatever ``overwrite`` says; a
    previous simulation only with ``overwrite``.
    """
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise InputError(f"out_dir {root} is a file; pass a new or empty folder.")
    if root.is_dir() and any(root.iterdir()):
        if not _is_simulation(root):
            raise InputError(
                f"out_dir {root} is not empty and holds no simulation record; "
                "pass a new or empty folder (existing data is never overwritten)."
            )
        if not overwrite:
            raise InputError(
                f"out_dir {root} holds a previous simulation; pass overwrite=True "
                "(--overwrite) to replace it, or a new folder."
            )
    existing = next(p for p in (root.absolute(), *root.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"out_dir {root} is not writable; pass a folder you can write to.")
    return root


def prepare_out_dir(root: Path) -> Path:
    """Create ``root`` and remove a previous simulation's folders (no stale session survives)."""
    for name in _WRITTEN:
        shutil.rmtree(root / name, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    return root


def first_images(stim: Stimuli, n_images: int | None) -> Stimuli:
    """The first ``n_images`` stimuli (all by default), at least MIN_IMAGES of them."""
    available = len(stim)
    if n_images is not None and n_images > available:
        raise InputError(
            f"n_images={n_images} exceeds the {available} images of the stimulus set; "
            f"pass n_images <= {available} or a larger set."
        )
    n = available if n_images is None else n_images
    if n < MIN_IMAGES:
        raise InputError(
            f"the stimulus set has {n} images, fewer than the {MIN_IMAGES} a simulation "
            "needs; pass a larger set (e.g. 'builtin:digits')."
        )
    return stim.select(stim.ids[:n]) if n < available else stim


def check_features(model: Any, n: int) -> np.ndarray:
    """Precomputed model features as a float array with one row per simulated image."""
    features = check_embedding(model, name="model features")
    if features.shape[0] != n:
        raise InputError(
            f"model features have {features.shape[0]} rows but {n} images are simulated; "
            f"pass one row per image, in stimulus order (features[:{n}])."
        )
    return features
