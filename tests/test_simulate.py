"""The simulated NSD: NSD's files and formats, read back by the real loader, truth recovered.

The main fixture simulates 400 digits for two subjects with a *category* model as the
generating model of EBA: features = a random code of the digit's class plus image-specific
Gaussian variation that no pixel statistic carries. So the low-level statistics that drive the
early ROI and the features that drive EBA differ, as MobileNet's do, without a network in
every test. (The default simulation, 1797 digits with MobileNetV2, scored by brain_alignment's
defaults in subject 1: EBA R²/NC 0.78 from MobileNet vs 0.43 from low-level features; early
ROI 0.89 from low-level features vs 0.49 from MobileNet.)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.io import loadmat

from repscope._validation import InputError
from repscope.alignment.brain import brain_alignment
from repscope.io.lowlevel import low_level_feature_names, low_level_features, square_image
from repscope.io.nsd import load_nsd, nsd_trial_ids
from repscope.io.simulate import DEFAULT_MODEL, simulate_nsd
from repscope.io.stimuli import NsdStimuli, open_stimuli

N_IMAGES = 400
EARLY_LABELS = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4")


def category_features(n: int, seed: int = 123) -> np.ndarray:
    """A 'high-level' model of the first n digits: class code + image-specific variation."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    labels = load_digits().target[:n]
    return np.eye(10)[labels] @ rng.standard_normal((10, 64)) + 0.5 * rng.standard_normal((n, 64))


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_nsd(
        tmp_path_factory.mktemp("nsd"),
        "builtin:digits",
        model=category_features(N_IMAGES),
        n_images=N_IMAGES,
    )


@pytest.fixture(scope="module")
def loaded(sim):
    return {s: load_nsd(sim.root, s, ["prf-visualrois", "EBA", "V1", "nsdgeneral"]) for s in (1, 2)}


def truth_columns(sim, subject: int, responses) -> dict[str, np.ndarray]:
    """The subject's ground truth, reordered to the loader's columns (matched on coordinates)."""
    gt = dict(np.load(sim.ground_truth[subject]))
    where = {tuple(c): i for i, c in enumerate(gt["coordinates"])}
    cols = np.array([where[tuple(c)] for c in responses.coordinates])
    per_voxel = ("roi", "kind", "nonlinear", "ncsnr", "noise_ceiling", "coordinates")
    out = {key: gt[key][cols] for key in per_voxel}
    out["responses"] = gt["responses"][:, cols]
    return out


# --- the tree: every file in NSD's place and format -------------------------------------------


def test_design_files_hold_nsd_arrays(sim):
    layout, n = sim.layout, N_IMAGES
    mat = loadmat(layout.expdesign)
    assert mat["masterordering"].shape == (1, 3 * n)
    assert mat["subjectim"].shape == (2, n) and mat["sharedix"].shape == (1, 40)
    assert mat["masterordering"].min() == 1 and mat["masterordering"].max() == n  # 1-based
    for row in mat["subjectim"]:
        assert sorted(row) == list(range(1, n + 1))  # every subject sees every image
    assert np.array_equal(mat["subjectim"][0, :40], mat["subjectim"][1, :40])
    assert np.array_equal(np.sort(mat["subjectim"][0, :40]), mat["sharedix"][0])

    info = pd.read_csv(layout.stim_info, index_col=0)
    assert list(info["nsdId"]) == list(range(n))
    assert list(info["source_id"]) == [f"digits-{i:04d}" for i in range(n)]
    assert set(np.flatnonzero(info["shared1000"])) == set(mat["sharedix"][0] - 1)
    for subject in (1, 2):
        trials = nsd_trial_ids(sim.root, subject)
        assert (info[f"subject{subject}"] == 1).all()
        for rep in range(3):
            shown = trials[info[f"subject{subject}_rep{rep}"].to_numpy() - 1]
            assert np.array_equal(shown, np.arange(n))  # 1-based trial of that repeat


def test_stimuli_file_holds_the_square_images(sim):
    stim = open_stimuli("builtin:digits")
    with h5py.File(sim.layout.stimuli, "r") as f:
        brick = f["imgBrick"]
        assert brick.shape == (N_IMAGES, 128, 128, 3) and brick.dtype == np.uint8
        for i in (0, 57, N_IMAGES - 1):
            assert np.array_equal(brick[i], np.asarray(square_image(stim.load(i), 128)))
    # the early ROI's features are what anyone computes from the written images
    again = low_level_features(NsdStimuli(sim.layout.stimuli))
    assert np.array_equal(again, np.load(sim.features)["low_level"])


def test_roi_volumes_and_label_tables(sim):
    layout = sim.layout
    brain = np.asarray(nib.load(layout.brainmask(1)).dataobj)
    assert set(np.unique(brain)) == {0, 1}
    expected = {
        "prf-visualrois": {-1, 0, *range(1, 8)},
        "floc-bodies": {-1, 0, 1},
        "nsdgeneral": {-1, 1},
    }
    for family, values in expected.items():
        volume = np.asarray(nib.load(layout.roi_volume(1, family)).dataobj)
        assert volume.dtype == np.int16 and volume.shape == brain.shape
        assert set(np.unique(volume)) == values
        assert np.array_equal(volume >= 0, brain == 1)  # -1 exactly outside the brain
    ctab = layout.ctab(1, "prf-visualrois").read_text().splitlines()
    assert ctab == ["0 Unknown", *(f"{i} {name}" for i, name in enumerate(EARLY_LABELS, 1))]
    assert layout.ctab(2, "floc-bodies").read_text().splitlines()[1:] == [
        "1 EBA",
        "2 FBA-1",
        "3 FBA-2",
        "4 mTL-bodies",
    ]


def test_betas_sessions_are_int16_of_nsd_length(sim):
    folder = sim.layout.betas_dir(2)
    sessions = sorted(p.name for p in folder.glob("betas_session*"))
    assert sessions == ["betas_session01.nii.gz", "betas_session02.nii.gz"]
    brain = np.asarray(nib.load(sim.layout.brainmask(2)).dataobj) == 1
    lengths = []
    for name in sessions:
        img = nib.load(folder / name)
        assert img.get_data_dtype() == np.int16
        betas = np.asarray(img.dataobj)
        assert not betas[~brain].any()  # 0 outside the brain
        lengths.append(betas.shape[3])
    assert lengths == [750, 3 * N_IMAGES - 750]
    ncsnr = nib.load(sim.layout.ncsnr(2))
    assert ncsnr.get_data_dtype() == np.float32 and ncsnr.shape == brain.shape


def test_record_labels_the_tree_simulated(sim, loaded):
    record = json.loads(sim.record.read_text())
    assert record == sim.summary
    assert record["simulated"] is True and record["complete"] is True
    assert record["seed"] == 0 and record["model"]["spec"] == "precomputed features"
    assert record["design"]["n_shared"] == 40 and record["design"]["n_sessions"] == 2
    assert loaded[1].source["simulated"] is True
    gt = np.load(sim.ground_truth[1])
    for label, nc in record["expected_noise_ceiling"]["subj01"].items():
        assert nc == pytest.approx(gt["noise_ceiling"][gt["roi"] == label].mean(), abs=1e-6)


# --- read back by the real loader -----------------------------------------------------------


@pytest.mark.parametrize("subject", [1, 2])
def test_loader_recovers_the_design(sim, loaded, subject):
    data = loaded[subject]
    assert list(data.stimulus_ids) == [f"nsd-{i:05d}" for i in range(N_IMAGES)]
    assert (data.n_repeats == 3).all()
    sharedix = loadmat(sim.layout.expdesign)["sharedix"][0] - 1
    assert np.array_equal(np.flatnonzero(data.shared), np.sort(sharedix))
    truth = truth_columns(sim, subject, data)
    counts = {name: int((truth["roi"] == name).sum()) for name in (*EARLY_LABELS, "EBA", "noise")}
    assert counts == {**dict.fromkeys(EARLY_LABELS, 20), "EBA": 100, "noise": 40}
    assert data.n_voxels == 280
    assert np.array_equal(data.roi_masks["EBA"], truth["roi"] == "EBA")
    assert np.array_equal(data.roi_masks["V1"], np.isin(truth["roi"], ["V1v", "V1d"]))


@pytest.mark.parametrize("subject", [1, 2])
def test_loader_recovers_planted_responses_up_to_noise(sim, loaded, subject):
    data = loaded[subject]
    truth = truth_columns(sim, subject, data)
    residual = data.responses - truth["responses"]
    # repeat-averaged z-scored noise: variance (1 / (1 + ncsnr²)) / 3 per voxel
    ratio = residual.var(0) / (1.0 / (1.0 + truth["ncsnr"] ** 2) / 3)
    assert 0.95 < np.median(ratio) < 1.05
    assert ratio.min() > 0.65 and ratio.max() < 1.35  # 400 images: ±5 sd of a variance
    signal = truth["kind"] != "noise"
    r = [
        np.corrcoef(data.responses[:, j], truth["responses"][:, j])[0, 1]
        for j in np.flatnonzero(signal)
    ]
    assert np.mean(np.array(r) - np.sqrt(truth["noise_ceiling"][signal])) == pytest.approx(
        0, abs=0.02
    )


def test_loader_noise_ceiling_is_the_true_one(sim, loaded):
    for subject, data in loaded.items():
        truth = truth_columns(sim, subject, data)
        assert np.allclose(data.noise_ceiling(), truth["noise_ceiling"], rtol=0, atol=1e-6)
        assert np.allclose(data.ncsnr, truth["ncsnr"], rtol=1e-6, atol=0)
        assert (truth["noise_ceiling"][truth["kind"] == "noise"] == 0).all()


# --- alignment recovers the truth -----------------------------------------------------------


@pytest.fixture(scope="module")
def alignment(sim, loaded):
    features = np.load(sim.features)
    ids = loaded[1].stimulus_ids
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # alpha at the grid edge for noise voxels
        return {
            name: brain_alignment(features[key], ids, loaded[1], device="cpu")
            for name, key in (("model", "model_embedding"), ("low", "low_level"))
        }


def _row(result, roi: str) -> pd.Series:
    table = result.table
    return table[(table["subject"] == "1") & (table["roi"] == roi)].iloc[0]


def test_generating_features_win_in_their_roi(alignment):
    model, low = alignment["model"], alignment["low"]
    # R²/NC measured at seeds 0-11: EBA 0.72-0.80 (model) vs 0.35-0.44 (low level);
    # early ROI 0.59-0.66 (low level) vs 0.17-0.23 (model)
    assert _row(model, "EBA")["r2_normalized"] > _row(low, "EBA")["r2_normalized"] + 0.2
    early_low = _row(low, "prf-visualrois")["r2_normalized"]
    assert early_low > _row(model, "prf-visualrois")["r2_normalized"] + 0.2
    assert _row(model, "EBA")["r2_normalized"] > 0.6
    assert early_low > 0.5


def test_r2_stays_below_the_noise_ceiling(alignment):
    for result in alignment.values():
        for roi in ("prf-visualrois", "EBA", "V1", "nsdgeneral"):
            row = _row(result, roi)
            assert row["r2"] <= row["noise_ceiling"] + 0.02


def test_noise_voxels_are_not_predicted(sim, loaded, alignment):
    truth = truth_columns(sim, 1, loaded[1])
    for result in alignment.values():
        vmap = result.voxels[(1, "nsdgeneral")]
        r2 = vmap.r2[truth["kind"][vmap.columns] == "noise"]
        assert r2.size == 40 and abs(np.nanmean(r2)) < 0.05 and np.nanmax(r2) < 0.1


# --- determinism, the model path, overwriting -------------------------------------------------


def _small(out: Path, stimuli="builtin:digits", **kwargs):
    """A 40-image, one-subject simulation with HDF5 betas, 3 sessions of 50, 50, 20 trials."""
    options = dict(
        n_images=40,
        n_subjects=1,
        model=category_features(40),
        image_size=32,
        early_voxels=14,
        higher_voxels=6,
        noise_voxels=4,
        higher_components=4,
        trials_per_session=50,
        betas_format="hdf5",
    )
    return simulate_nsd(out, stimuli, **{**options, **kwargs})


def _content(path: Path) -> object:
    """A file's decoded content (MAT headers and HDF5 object times differ between runs)."""
    name = path.name
    if name.endswith(".nii.gz"):
        img = nib.load(path)
        return ("nifti", np.asarray(img.dataobj).tobytes(), img.affine.tobytes())
    if name.endswith(".hdf5"):
        with h5py.File(path, "r") as f:
            return {key: f[key][()].tobytes() for key in f}
    if name.endswith(".mat"):
        return {k: v.tobytes() for k, v in loadmat(path).items() if not k.startswith("__")}
    if name.endswith(".npz"):
        with np.load(path) as f:
            return {key: f[key].tobytes() for key in f.files}
    return path.read_bytes()


def _tree(root: Path) -> dict[str, object]:
    return {str(p.relative_to(root)): _content(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_content(tmp_path):
    a, b = _tree(_small(tmp_path / "a").root), _tree(_small(tmp_path / "b").root)
    assert len(a) == 17 and a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name
    c = _tree(_small(tmp_path / "c", seed=1).root)
    betas = "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.hdf5"
    assert c[betas] != a[betas]


def test_hdf5_betas_are_transposed_and_read_back(tmp_path):
    sim = _small(tmp_path)
    path = sim.layout.betas_session(1, 1, suffix=".hdf5")
    with h5py.File(path, "r") as f:
        shape = f["betas"].shape
    assert shape[0] == 50 and shape[1:] == nib.load(sim.layout.brainmask(1)).shape[::-1]
    data = load_nsd(sim.root, 1, "nsdgeneral")
    assert data.source["formats"] == ["hdf5"] and (data.n_repeats == 3).all()


def test_model_embeds_the_written_images(tmp_path, monkeypatch):
    from repscope.io.extract import extract_embeddings
    from repscope.io.models import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_model(DEFAULT_MODEL)
    sim = simulate_nsd(
        tmp_path / "nsd",
        n_images=20,
        n_subjects=1,
        image_size=64,
        model=model,
        cache_dir=tmp_path / "cache",
    )
    assert sim.summary["model"] == {
        "spec": DEFAULT_MODEL,
        "layer": "penultimate",
        "embedding_dim": 1280,
    }
    again = extract_embeddings(
        model, NsdStimuli(sim.layout.stimuli), cache=False, progress=False, device="cpu"
    )
    stored = np.load(sim.features)["model_embedding"]
    assert np.allclose(stored, again.X, rtol=1e-4, atol=1e-5)


def test_overwrite_replaces_only_a_previous_simulation(tmp_path):
    _small(tmp_path, trials_per_session=60)  # 120 trials: two sessions
    with pytest.raises(InputError, match="holds a previous simulation; pass overwrite=True"):
        _small(tmp_path)
    _small(tmp_path, trials_per_session=120, overwrite=True)
    assert not _small_session(tmp_path, 2).exists()
    assert load_nsd(tmp_path, 1, "nsdgeneral").source["sessions"] == [1]


def _small_session(root: Path, session: int) -> Path:
    from repscope.io.nsd_layout import NsdLayout

    return NsdLayout(root).betas_session(1, session, suffix=".hdf5")


def test_refuses_a_folder_that_is_not_a_simulation(tmp_path):
    (tmp_path / "thesis.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(InputError, match="not empty and holds no simulation record"):
            _small(tmp_path, overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.txt"]


def test_refuses_an_unwritable_folder(tmp_path, monkeypatch):
    # os.access is what the check asks; patched, since root may write into read-only folders
    monkeypatch.setattr("repscope.io._simulate_checks.os.access", lambda path, mode: False)
    with pytest.raises(InputError, match="is not writable; pass a folder you can write to"):
        _small(tmp_path / "nsd")
    assert not (tmp_path / "nsd").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stimuli": "builtin:digitz"}, "unknown built-in stimulus set 'digitz'"),
        ({"n_images": 5000}, "n_images=5000 exceeds the 1797 images"),
        ({"n_images": 5}, r"n_images=5 is not an integer >= 20"),
        ({"n_subjects": 9}, r"n_subjects=9 is not an integer in 1\.\.8"),
        ({"repeats": 0}, "repeats=0 is not an integer >= 1"),
        ({"snr_range": (1.0, 0.5)}, r"snr_range=\(1\.0, 0\.5\) must be two numbers"),
        ({"nonlinear_fraction": 1.5}, r"nonlinear_fraction=1\.5 must be a number in \[0, 1\]"),
        ({"betas_format": "mgh"}, "betas_format='mgh' is not known"),
        ({"model": np.zeros((39, 4))}, "model features have 39 rows but 40 images"),
        ({"trials_per_session": 59}, "leave 2 in the last session"),
        ({"higher_components": 40}, "fewer than higher_components=40 non-degenerate"),
        ({"stimuli": np.zeros((40, 8, 8), np.uint8)}, "no variation in luminance, contrast"),
    ],
)
def test_bad_input_names_problem_and_fix(tmp_path, kwargs, match):
    stimuli = kwargs.pop("stimuli", "builtin:digits")
    with pytest.raises(InputError, match=match) as info:
        _small(tmp_path / "nsd", stimuli, **kwargs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "nsd").exists()  # checked before anything is written


def test_out_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="is a file; pass a new or empty folder"):
        _small(tmp_path / "f")


# --- low-level features ---------------------------------------------------------------------


def _grating(theta_deg: float, size: int = 64, cycles: float = 8.0) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    t = np.deg2rad(theta_deg)
    wave = np.cos(2 * np.pi * cycles * (x * np.cos(t) + y * np.sin(t)))
    return np.round(127.5 + 127.5 * wave).astype(np.uint8)


def test_oriented_energy_peaks_at_the_grating_orientation():
    images = np.stack([_grating(theta) for theta in (0, 45, 90, 135)])
    F = low_level_features(images, grid=2)
    energy = F[:, 8:].reshape(4, 4, 4).mean(2)  # (image, orientation), averaged over cells
    assert np.array_equal(energy.argmax(1), np.arange(4))
    assert (energy.max(1) > 10 * np.sort(energy, 1)[:, -2]).all()


def test_luminance_and_contrast_are_local():
    images = np.full((2, 64, 64), 64, dtype=np.uint8)
    images[1, :16, :16] = 255  # top-left cell of a 4 x 4 grid
    F = low_level_features(images)
    names = low_level_feature_names()
    assert F.shape == (2, 96) and len(names) == 96
    lum, con = F[:, :16], F[:, 16:32]
    assert np.allclose(lum[0], 64 / 255) and np.allclose(con[0], 0)
    assert lum[1, 0] == pytest.approx(1.0) and np.allclose(lum[1, 1:], 64 / 255)
    assert names[0] == "luminance_r0_c0" and names[32] == "energy_0deg_r0_c0"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grid": 0}, "grid=0 must be an integer >= 1"),
        ({"size": 30}, "size=30 must be an integer >= 8 and a multiple of grid=4"),
        ({"cycles_per_image": 40}, r"cycles_per_image=40 must lie in \(0, size/2 = 32\)"),
    ],
)
def test_low_level_bad_options(kwargs, match):
    with pytest.raises(InputError, match=match):
        low_level_features(np.zeros((1, 8, 8), dtype=np.uint8), **kwargs)
