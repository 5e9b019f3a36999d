"""load_nsd against the planted truth of a miniature NSD tree in the real file formats.

The reference below is deliberately plain: per session, a Python loop z-scores every voxel
(``scipy.stats.zscore``, ddof=0) of the int16 arrays the fixture wrote; a pandas groupby over
the fixture's own trial → nsdId list (generated before it was encoded into NSD's 1-based
design) averages the repeats. float32 accumulation bounds the agreement at rtol 1e-5.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nsd_fixture import (
    CONSTANT_VOXEL,
    DISTINCT_NSD_ID,
    LABELS,
    SESSION_TRIALS,
    MiniNsd,
    write_mini_nsd,
)
from repscope._validation import InputError
from repscope.io._roi_names import resolve_rois
from repscope.io.nsd import available_rois, load_nsd, nsd_trial_ids, zscore_session
from repscope.io.nsd_layout import write_betas_session, write_volume

RTOL, ATOL = 1e-5, 1e-6


def reference(
    mini: MiniNsd, subject: int, mask: np.ndarray, sessions: set[int] | None = None
) -> pd.DataFrame:
    """Repeat-averaged per-session z-scores, indexed by nsdId, plus a ``count`` column."""
    frames, start = [], 0
    for number, data in enumerate(mini.session_betas[subject], 1):
        n_trials = data.shape[-1]
        ids = mini.trial_nsd_ids[subject][start : start + n_trials]
        start += n_trials
        if sessions is not None and number not in sessions:
            continue
        voxels = data[mask] / 300.0  # (n_voxels, trials), rows in np.nonzero order
        z = np.zeros_like(voxels)
        for v, series in enumerate(voxels):
            if np.ptp(series) > 0:  # exactly constant int16 series have no z-score
                z[v] = stats.zscore(series, ddof=0)
        frames.append(pd.DataFrame(z.T).assign(nsdId=ids))
    trials = pd.concat(frames)
    grouped = trials.groupby("nsdId")
    return grouped.mean().assign(count=grouped.size())


def roi_mask(mini: MiniNsd, subject: int, family: str, ids: tuple[int, ...] | None) -> np.ndarray:
    vol = mini.rois[subject][family]
    return vol > 0 if ids is None else np.isin(vol, ids)


def assert_matches(loaded, expected: pd.DataFrame) -> None:
    values = expected.drop(columns="count").to_numpy()
    assert list(loaded.stimulus_ids) == [f"nsd-{i:05d}" for i in expected.index]
    np.testing.assert_allclose(loaded.responses, values, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(loaded.n_repeats, expected["count"])


@pytest.mark.parametrize("subject", [1, 2])
def test_responses_match_reference(mini_nsd: MiniNsd, subject: int) -> None:
    loaded = load_nsd(mini_nsd.root, subject, ["nsdgeneral"])
    mask = roi_mask(mini_nsd, subject, "nsdgeneral", None)
    assert loaded.responses.dtype == np.float32
    assert_matches(loaded, reference(mini_nsd, subject, mask))
    np.testing.assert_array_equal(loaded.coordinates, np.argwhere(mask))
    assert loaded.source["n_trials"] == sum(SESSION_TRIALS[subject])


def test_design_decoding_and_repeats(mini_nsd: MiniNsd) -> None:
    np.testing.assert_array_equal(nsd_trial_ids(mini_nsd.root, 1), mini_nsd.trial_nsd_ids[1])
    loaded = load_nsd(mini_nsd.root, 1, ["EBA"])
    ids, counts = np.unique(mini_nsd.loaded_trials(1), return_counts=True)
    np.testing.assert_array_equal(loaded.nsd_ids, ids)
    np.testing.assert_array_equal(loaded.n_repeats, counts)
    assert set(loaded.n_repeats) == {1, 2, 3}
    np.testing.assert_array_equal(loaded.shared, np.isin(ids, mini_nsd.shared_nsd_ids))


def test_distinct_image_lands_on_its_row(mini_nsd: MiniNsd) -> None:
    """nsdId 0 (subjectim value 1, trial 1) has by far the largest response: off-by-one fails."""
    loaded = load_nsd(mini_nsd.root, 1, ["nsdgeneral"])
    row_means = loaded.responses.mean(axis=1)
    assert loaded.stimulus_ids[np.argmax(row_means)] == f"nsd-{DISTINCT_NSD_ID:05d}"
    assert row_means.max() > 1.5 > np.sort(row_means)[-2]


def test_zscore_session_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    betas = rng.integers(-900, 900, (40, 6)).astype(np.int16)
    betas[:, 2] = 77
    z, constant = zscore_session(betas)
    expected = np.zeros(betas.shape)
    varying = [0, 1, 3, 4, 5]
    expected[:, varying] = stats.zscore(betas[:, varying] / 300.0, axis=0, ddof=0)
    np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(constant, [False, False, True, False, False, False])


def test_zero_variance_voxel_is_zero_and_recorded(mini_nsd: MiniNsd) -> None:
    loaded = load_nsd(mini_nsd.root, 1, ["nsdgeneral"], sessions=[2])
    column = np.flatnonzero((loaded.coordinates == CONSTANT_VOXEL).all(axis=1))
    assert column.size == 1
    np.testing.assert_array_equal(loaded.responses[:, column], 0.0)
    assert loaded.source["zero_variance_voxels"] == {2: 1}


@pytest.mark.parametrize("sessions", [[2], [1, 3], [3, 1]])
def test_session_subsets_use_cumulative_offsets(mini_nsd: MiniNsd, sessions: list[int]) -> None:
    loaded = load_nsd(mini_nsd.root, 1, ["V2"], sessions=sessions)
    mask = roi_mask(mini_nsd, 1, "prf-visualrois", (3, 4))
    assert_matches(loaded, reference(mini_nsd, 1, mask, set(sessions)))
    assert loaded.source["sessions"] == sorted(sessions)


def test_nifti_and_hdf5_give_identical_results(mini_nsd: MiniNsd) -> None:
    rois = ["V1", "EBA", "nsdgeneral"]
    nifti = load_nsd(mini_nsd.root, 1, rois, fmt="nifti")
    hdf5 = load_nsd(mini_nsd.root, 1, rois, fmt="hdf5")
    auto = load_nsd(mini_nsd.root, 1, rois)
    assert nifti.source["formats"] == ["nifti"]
    assert hdf5.source["formats"] == auto.source["formats"] == ["hdf5"]
    np.testing.assert_array_equal(nifti.responses, hdf5.responses)
    np.testing.assert_array_equal(nifti.coordinates, hdf5.coordinates)
    for name in rois:
        np.testing.assert_array_equal(nifti.roi_masks[name], hdf5.roi_masks[name])


def test_auto_mixes_formats_per_session(mini_nsd_copy: MiniNsd) -> None:
    mini_nsd_copy.layout.betas_session(1, 2, suffix=".hdf5").unlink()
    loaded = load_nsd(mini_nsd_copy.root, 1, ["EBA"])
    assert loaded.source["formats"] == ["hdf5", "nifti"]
    assert_matches(
        loaded, reference(mini_nsd_copy, 1, roi_mask(mini_nsd_copy, 1, "floc-bodies", (1,)))
    )


@pytest.mark.parametrize(
    ("request_name", "family", "ids"),
    [
        ("EBA", "floc-bodies", (1,)),
        ("V1v", "prf-visualrois", (1,)),
        ("V1", "prf-visualrois", (1, 2)),
        ("V3", "prf-visualrois", (5, 6)),
        ("prf-visualrois:hV4", "prf-visualrois", (7,)),
        ("floc-bodies", "floc-bodies", None),
    ],
)
def test_roi_selection(mini_nsd: MiniNsd, request_name: str, family: str, ids) -> None:
    loaded = load_nsd(mini_nsd.root, 1, request_name)
    mask = roi_mask(mini_nsd, 1, family, ids)
    np.testing.assert_array_equal(loaded.coordinates, np.argwhere(mask))
    assert loaded.rois == (request_name,)
    assert_matches(loaded, reference(mini_nsd, 1, mask))


def test_several_rois_union_with_overlap(mini_nsd: MiniNsd) -> None:
    loaded = load_nsd(mini_nsd.root, 1, ["EBA", "V1", "FBA-1"])
    masks = {
        "EBA": roi_mask(mini_nsd, 1, "floc-bodies", (1,)),
        "V1": roi_mask(mini_nsd, 1, "prf-visualrois", (1, 2)),
        "FBA-1": roi_mask(mini_nsd, 1, "floc-bodies", (2,)),
    }
    union = masks["EBA"] | masks["V1"] | masks["FBA-1"]
    assert (masks["EBA"] & masks["V1"]).any()  # the fixture plants overlapping ROIs
    np.testing.assert_array_equal(loaded.coordinates, np.argwhere(union))
    for name, mask in masks.items():
        np.testing.assert_array_equal(loaded.roi_masks[name], mask[union])
        eba = loaded.roi(name)
        np.testing.assert_array_equal(eba.coordinates, np.argwhere(mask))
    assert_matches(loaded, reference(mini_nsd, 1, union))


def test_ncsnr_and_mixed_repeat_noise_ceiling(mini_nsd: MiniNsd) -> None:
    loaded = load_nsd(mini_nsd.root, 1, ["V1", "EBA"])
    union = np.isin(mini_nsd.rois[1]["prf-visualrois"], (1, 2)) | (
        mini_nsd.rois[1]["floc-bodies"] == 1
    )
    ncsnr = mini_nsd.ncsnr[1][union].astype(np.float64)
    np.testing.assert_array_equal(loaded.ncsnr, ncsnr)
    a, b, c = (int((loaded.n_repeats == n).sum()) for n in (3, 2, 1))
    inv_n = (a / 3 + b / 2 + c) / (a + b + c)
    np.testing.assert_allclose(loaded.noise_ceiling(), ncsnr**2 / (ncsnr**2 + inv_n), rtol=1e-12)


def test_available_rois(mini_nsd: MiniNsd) -> None:
    names = {family: list(table.values()) for family, table in LABELS.items()}
    assert available_rois(mini_nsd.root, 1) == {
        f: names[f] for f in ("prf-visualrois", "floc-bodies", "nsdgeneral")
    }
    assert available_rois(mini_nsd.root, 2)["Kastner2015"] == ["V1v", "V1d", "LO1"]


def test_curated_family_preferred_over_atlas(mini_nsd: MiniNsd) -> None:
    # subject 2 also has Kastner2015 (V1v, V1d): a bare name means NSD's curated prf-visualrois
    for request, ids in (("V1v", (1,)), ("V1", (1, 2))):
        loaded = load_nsd(mini_nsd.root, 2, [request])
        expected = np.isin(mini_nsd.rois[2]["prf-visualrois"], ids)
        np.testing.assert_array_equal(loaded.coordinates, np.argwhere(expected))
    loaded = load_nsd(mini_nsd.root, 2, ["Kastner2015:V1v"])
    np.testing.assert_array_equal(
        loaded.coordinates, np.argwhere(mini_nsd.rois[2]["Kastner2015"] == 1)
    )


def test_ambiguous_roi_asks_for_family() -> None:
    labels = {"floc-faces": {1: "OFA", 2: "X"}, "floc-words": {1: "X"}, "Kastner2015": {1: "X"}}
    with pytest.raises(InputError, match=r"'floc-faces:X' or 'floc-words:X'"):
        resolve_rois(["X"], labels)
    atlas_only = {"Kastner2015": {1: "LO1"}, "HCP_MMP1": {1: "LO1"}}
    with pytest.raises(InputError, match=r"'Kastner2015:LO1' or 'HCP_MMP1:LO1'"):
        resolve_rois("LO1", atlas_only)


def test_ctab_with_colour_columns(mini_nsd_copy: MiniNsd) -> None:
    ctab = mini_nsd_copy.layout.ctab(1, "floc-bodies")
    ctab.write_text(
        "0  Unknown 0 0 0 0\n1  EBA 255 0 0 0\n\n2\tFBA-1 0 255 0 0\n3 FBA-2 0 0 255 0\n"
    )
    loaded = load_nsd(mini_nsd_copy.root, 1, ["FBA-1"])
    np.testing.assert_array_equal(
        loaded.coordinates, np.argwhere(mini_nsd_copy.rois[1]["floc-bodies"] == 2)
    )


def test_progress_bar_and_simulated_flag(mini_nsd_copy: MiniNsd, capsys) -> None:
    assert load_nsd(mini_nsd_copy.root, 1, ["EBA"]).source["simulated"] is False
    mini_nsd_copy.layout.simulation_record.write_text("{}")
    loaded = load_nsd(mini_nsd_copy.root, 1, ["EBA"], progress=True)
    assert loaded.source["simulated"] is True
    assert "NSD subj01" in capsys.readouterr().err  # bars draw on stderr


# ---------------------------------------------------------------- bad input, one line each


def esc(path: Path) -> str:
    """A path as a literal inside a ``match`` regex."""
    return re.escape(str(path))


@contextlib.contextmanager
def raises_one_line(match: str) -> Iterator[pytest.ExceptionInfo[InputError]]:
    """``pytest.raises(InputError, match=...)`` that also checks the message is one line."""
    with pytest.raises(InputError, match=match) as info:
        yield info
    assert "\n" not in str(info.value)


def test_unknown_roi_lists_available(mini_nsd: MiniNsd) -> None:
    with raises_one_line(
        "unknown ROI 'XYZ'; available: prf-visualrois: V1v.*hV4; "
        "floc-bodies: EBA FBA-1 FBA-2 mTL-bodies"
    ):
        load_nsd(mini_nsd.root, 1, ["XYZ"])
    with raises_one_line(r"'EBA' is not a label of family 'prf-visualrois'.*V1v V1d"):
        load_nsd(mini_nsd.root, 1, ["prf-visualrois:EBA"])
    with raises_one_line(r"family 'floc-faces'.*families present: prf-visualrois"):
        load_nsd(mini_nsd.root, 1, ["floc-faces:FFA-1"])


def test_empty_and_repeated_roi(mini_nsd: MiniNsd) -> None:
    with raises_one_line(r"ROI 'mTL-bodies' has no voxels"):
        load_nsd(mini_nsd.root, 1, ["EBA", "mTL-bodies"])
    with raises_one_line("requested twice"):
        load_nsd(mini_nsd.root, 1, ["EBA", "EBA"])
    with raises_one_line("rois is empty"):
        load_nsd(mini_nsd.root, 1, [])


@pytest.mark.parametrize("subject", [0, 4, 1.5, True])
def test_subject_out_of_range(mini_nsd: MiniNsd, subject) -> None:
    with raises_one_line(
        r"out of range; nsd_expdesign.mat has 3 subjects, pass an int from 1 to 3"
    ):
        load_nsd(mini_nsd.root, subject)


def test_missing_files_name_path_and_folder(mini_nsd_copy: MiniNsd) -> None:
    root, layout = mini_nsd_copy.root, mini_nsd_copy.layout
    with raises_one_line(
        rf"{esc(layout.roi_dir(3))} not found.*nsddata/ppdata/subj03/func1pt8mm/roi/"
    ):
        load_nsd(root, 3)
    layout.ncsnr(1).unlink()
    with raises_one_line(
        rf"{esc(layout.ncsnr(1))} not found.*NSD's nsddata_betas/ppdata/subj01/func1pt8mm/"
        "betas_fithrf_GLMdenoise_RR/ folder"
    ):
        load_nsd(root, 1, ["EBA"])
    layout.ctab(1, "floc-bodies").unlink()
    with raises_one_line(
        rf"{esc(layout.ctab(1, 'floc-bodies'))} not found.*freesurfer/subj01/label/"
    ):
        load_nsd(root, 1, ["V1"])
    with raises_one_line(rf"{esc(layout.betas_dir(2, 'betas_assumehrf'))} not found"):
        load_nsd(root, 2, ["EBA"], betas="betas_assumehrf")
    layout.expdesign.unlink()
    with raises_one_line(
        rf"{esc(layout.expdesign)} not found.*NSD's nsddata/experiments/nsd/ folder"
    ):
        load_nsd(root, 1)


def test_session_gap_names_missing_file(mini_nsd_copy: MiniNsd) -> None:
    layout = mini_nsd_copy.layout
    layout.betas_session(1, 2, suffix=".hdf5").unlink()
    with raises_one_line(rf"{esc(layout.betas_session(1, 2, suffix='.hdf5'))} not found"):
        load_nsd(mini_nsd_copy.root, 1, fmt="hdf5")
    layout.betas_session(1, 2).unlink()
    with raises_one_line(rf"{esc(layout.betas_session(1, 2))} not found.*1\.\.3 without gaps"):
        load_nsd(mini_nsd_copy.root, 1)
    for session in (1, 3):
        for suffix in (".nii.gz", ".hdf5"):
            layout.betas_session(1, session, suffix=suffix).unlink()
    with raises_one_line(r"holds no betas_sessionNN\.nii\.gz or \.hdf5 files"):
        load_nsd(mini_nsd_copy.root, 1)


def test_bad_sessions_and_fmt(mini_nsd: MiniNsd) -> None:
    with raises_one_line(r"sessions=\[4\] must be distinct session numbers from 1 to 3"):
        load_nsd(mini_nsd.root, 1, sessions=[4])
    with raises_one_line(r"sessions=\[1, 1\]"):
        load_nsd(mini_nsd.root, 1, sessions=[1, 1])
    with raises_one_line("fmt='mat' is not a session format"):
        load_nsd(mini_nsd.root, 1, fmt="mat")  # type: ignore[arg-type]


def test_more_trials_than_design(mini_nsd_copy: MiniNsd) -> None:
    extra = mini_nsd_copy.session_betas[1][0]  # 20 more trials: 92 > the design's 80
    write_betas_session(mini_nsd_copy.layout.betas_session(1, 4, suffix=".hdf5"), extra)
    with raises_one_line(r"4 session files hold 92 trials but .*masterordering has 80"):
        load_nsd(mini_nsd_copy.root, 1)


def test_wrong_betas_dtype_and_shape(mini_nsd_copy: MiniNsd) -> None:
    layout = mini_nsd_copy.layout
    path = layout.betas_session(1, 2)
    as_float = mini_nsd_copy.session_betas[1][1].astype(np.float32)
    write_volume(path, as_float)
    with raises_one_line(
        rf"{esc(path)} holds float32 betas.*expected int16 of shape \(X, Y, Z, trials\)"
    ):
        load_nsd(mini_nsd_copy.root, 1, fmt="nifti")
    write_volume(path, np.zeros((7, 6, 5), np.int16))
    with raises_one_line(r"holds int16 betas of shape \(7, 6, 5\)"):
        load_nsd(mini_nsd_copy.root, 1, fmt="nifti")
    hdf5 = layout.betas_session(1, 3, suffix=".hdf5")
    write_betas_session(hdf5, np.zeros((7, 6, 4, 24), np.int16))
    with raises_one_line(
        rf"{esc(hdf5)} has volume shape \(X, Y, Z\) = \(7, 6, 4\) but the ROI volumes"
    ):
        load_nsd(mini_nsd_copy.root, 1, fmt="hdf5")
    with h5py.File(hdf5, "w") as f:
        f.create_dataset("data", data=np.zeros(3))
    with raises_one_line(r"has no dataset 'betas' \(found: data\)"):
        load_nsd(mini_nsd_copy.root, 1, fmt="hdf5")


def test_scaled_nifti_betas_rejected(mini_nsd_copy: MiniNsd) -> None:
    path = mini_nsd_copy.layout.betas_session(1, 1)
    raw = bytearray(nib.Nifti1Image(mini_nsd_copy.session_betas[1][0], np.eye(4)).to_bytes())
    struct.pack_into("<f", raw, 112, 2.0)  # scl_slope: nibabel then returns scaled floats
    path.write_bytes(gzip.compress(bytes(raw)))
    with raises_one_line("scaled betas"):
        load_nsd(mini_nsd_copy.root, 1, fmt="nifti")


def test_volume_shape_mismatches(mini_nsd_copy: MiniNsd) -> None:
    layout = mini_nsd_copy.layout
    write_volume(layout.ncsnr(1), np.ones((7, 6, 4), np.float32))
    with raises_one_line(rf"{esc(layout.ncsnr(1))} has shape \(7, 6, 4\) but the ROI volumes"):
        load_nsd(mini_nsd_copy.root, 1, ["EBA"])
    write_volume(layout.roi_volume(1, "floc-bodies"), np.ones((7, 6, 4), np.int16))
    with raises_one_line(
        r"differ in shape \(prf-visualrois \(7, 6, 5\), floc-bodies \(7, 6, 4\)\)"
    ):
        load_nsd(mini_nsd_copy.root, 1, ["V1", "EBA"])
    with raises_one_line(
        r"volume shape \(X, Y, Z\) = \(7, 6, 5\) but the ROI volumes have \(7, 6, 4\)"
    ):
        load_nsd(mini_nsd_copy.root, 1, ["EBA"])


def test_unreadable_files(mini_nsd_copy: MiniNsd) -> None:
    layout = mini_nsd_copy.layout
    layout.betas_session(1, 1).write_bytes(b"not a nifti")
    with raises_one_line(rf"{esc(layout.betas_session(1, 1))} is not a readable NIfTI file"):
        load_nsd(mini_nsd_copy.root, 1, fmt="nifti")
    layout.ctab(1, "nsdgeneral").write_text("0 Unknown\none nsdgeneral\n")
    with raises_one_line(r"line 2 is not a new '<id> <name>' entry"):
        load_nsd(mini_nsd_copy.root, 1)
    layout.expdesign.write_bytes(b"garbage")
    with raises_one_line(rf"{esc(layout.expdesign)} is not a readable MATLAB file"):
        load_nsd(mini_nsd_copy.root, 1)


def test_fixture_is_seeded(tmp_path: Path, mini_nsd: MiniNsd) -> None:
    again = write_mini_nsd(tmp_path, formats=(".hdf5",))
    np.testing.assert_array_equal(again.trial_nsd_ids[1], mini_nsd.trial_nsd_ids[1])
    np.testing.assert_array_equal(again.session_betas[2][1], mini_nsd.session_betas[2][1])
