"""The simulation record: the JSON file that labels a simulated NSD tree and states its truth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from repscope.io._simulate_brain import (
    EARLY_FAMILY,
    EARLY_LABELS,
    GENERAL_FAMILY,
    GRID,
    HIGHER_FAMILY,
    HIGHER_LABELS,
    N_ORIENTATIONS,
    ORIENTATION_KAPPA,
    PRF_CENTRE_RANGE,
    PRF_SIGMA,
    VoxelLayout,
)
from repscope.io._simulate_design import Design
from repscope.io._stimulus_base import Stimuli
from repscope.io.models import LoadedModel
from repscope.io.nsd_layout import DEFAULT_BETAS, DEFAULT_SPACE

__all__ = ["GROUND_TRUTH_DIR", "record", "roi_definitions"]

GROUND_TRUTH_DIR = "ground_truth"


def record(
    options: Mapping[str, Any],
    stim: Stimuli,
    model: Any,
    embedding: np.ndarray,
    design: Design,
    vox: VoxelLayout,
    noise_ceilings: Mapping[int, np.ndarray],
) -> dict[str, Any]:
    """The simulation record: labelled simulated, parameters, ROI definitions, expected NC."""
    from repscope import __version__
    from repscope.io.atomic import sha256_bytes

    if isinstance(model, (str, LoadedModel)):
        spec = model if isinstance(model, str) else model.spec.raw
        model_info = {"spec": spec, "layer": "penultimate"}
    else:
        model_info = {"spec": "precomputed features", "sha256": sha256_bytes(embedding.tobytes())}
    model_info["embedding_dim"] = int(embedding.shape[1])
    labels = [str(x) for x in dict.fromkeys(vox.label.tolist())]
    expected = {
        f"subj{s:02d}": {name: round(float(nc[vox.label == name].mean()), 6) for name in labels}
        for s, nc in noise_ceilings.items()
    }
    return {
        "simulated": True,
        "complete": True,
        "note": "SIMULATED fMRI in the Natural Scenes Dataset's layout; not brain data.",
        "generator": "repscope.io.simulate.simulate_nsd",
        "repscope_version": __version__,
        "seed": options["seed"],
        "stimuli": {**stim.describe(), "first_ids": list(stim.ids[:3])},
        "image_size": options["image_size"],
        "design": {
            "n_subjects": int(design.subjectim.shape[0]),
            "n_images": int(design.subjectim.shape[1]),
            "n_shared": design.n_shared,
            "repeats": design.repeats,
            "trials_per_session": design.trials_per_session,
            "n_sessions": design.n_sessions,
            "betas": DEFAULT_BETAS,
            "space": DEFAULT_SPACE,
            "betas_format": options["betas_format"],
        },
        "model": model_info,
        "rois": roi_definitions(vox, options),
        "snr_range": list(options["snr_range"]),
        "nonlinear_fraction": options["nonlinear_fraction"],
        "expected_noise_ceiling": expected,
        "ceiling": "held-out R² of any model <= the noise ceiling NC (up to estimation noise)",
        "ground_truth": {
            "features": f"{GROUND_TRUTH_DIR}/features.npz",
            **{f"subj{s:02d}": f"{GROUND_TRUTH_DIR}/subj{s:02d}.npz" for s in noise_ceilings},
        },
    }


def roi_definitions(vox: VoxelLayout, options: Mapping[str, Any]) -> dict[str, Any]:
    """What drives each ROI family, with voxel counts per label (for the simulation record)."""
    names, n_per = np.unique(vox.label, return_counts=True)
    counts = {str(k): int(v) for k, v in zip(names, n_per, strict=True)}
    nonlinear = (
        f"a random {options['nonlinear_fraction']:.0%} of voxels rectified, max(0, centred drive)"
    )
    return {
        EARLY_FAMILY: {
            "labels": {str(i): name for i, name in enumerate(EARLY_LABELS, start=1)},
            "n_voxels": {name: counts.get(name, 0) for name in EARLY_LABELS},
            "driven_by": (
                f"low-level image statistics (repscope.io.lowlevel.low_level_features, grid "
                f"{GRID}x{GRID}, {N_ORIENTATIONS} orientations): Gaussian pRF over the grid, "
                "Dirichlet(1,1,1) mix of luminance, RMS contrast and Gabor energy tuned "
                f"exp({ORIENTATION_KAPPA:g} cos 2(theta - theta_pref))"
            ),
            "prf_sigma_range": {area: list(r) for area, r in PRF_SIGMA.items()},
            "prf_centre_range": list(PRF_CENTRE_RANGE),
            "nonlinearity": nonlinear,
        },
        HIGHER_FAMILY: {
            "labels": {str(i): name for i, name in enumerate(HIGHER_LABELS, start=1)},
            "n_voxels": {name: counts.get(name, 0) for name in HIGHER_LABELS},
            "driven_by": (
                f"the {options['higher_components']} leading principal components of the "
                "generating model's embedding, each standardized, N(0, 1) weights"
            ),
            "nonlinearity": nonlinear,
        },
        GENERAL_FAMILY: {
            "labels": {"1": GENERAL_FAMILY},
            "n_voxels": {GENERAL_FAMILY: int(vox.label.size)},
            "contains": "every simulated voxel; noise-only voxels are in no other ROI",
        },
        "noise": {"n_voxels": counts.get("noise", 0), "ncsnr": 0.0, "driven_by": "nothing"},
    }
