"""load_algonauts against a miniature Algonauts 2023 tree written with plain NumPy and PIL."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nsd_fixture import MiniAlgonauts
from repscope._validation import InputError
from repscope.io.algonauts import algonauts_rois, load_algonauts


@contextlib.contextmanager
def raises_one_line(match: str) -> Iterator[pytest.ExceptionInfo[InputError]]:
    with pytest.raises(InputError, match=match) as info:
        yield info
    assert "\n" not in str(info.value)


@pytest.fixture
def damaged(mini_algonauts: MiniAlgonauts, tmp_path: Path) -> Path:
    """A private copy of the tree's subj01 folder, to damage; returns the root."""
    shutil.copytree(mini_algonauts.root, tmp_path / "algonauts")
    return tmp_path / "algonauts"


def test_all_vertices_in_training_order(mini_algonauts: MiniAlgonauts) -> None:
    loaded = load_algonauts(mini_algonauts.root, 1)
    truth = mini_algonauts
    assert list(loaded.stimulus_ids) == [f"nsd-{i:05d}" for i in truth.nsd_ids]
    assert not np.all(np.diff(truth.nsd_ids) > 0)  # row order is not nsdId order
    np.testing.assert_array_equal(loaded.responses, np.hstack([truth.fmri["lh"], truth.fmri["rh"]]))
    expected = [(0, v, 0) for v in truth.fsaverage_index["lh"]]
    expected += [(1, v, 0) for v in truth.fsaverage_index["rh"]]
    np.testing.assert_array_equal(loaded.coordinates, expected)
    assert loaded.rois == ("all-vertices",)
    assert loaded.roi_masks["all-vertices"].all()
    assert loaded.space == "algonauts"
    np.testing.assert_array_equal(loaded.n_repeats, 0)
    assert np.isnan(loaded.ncsnr).all() and np.isnan(loaded.noise_ceiling()).all()


def test_rois_select_labelled_vertices(mini_algonauts: MiniAlgonauts) -> None:
    truth = mini_algonauts
    rois = ["EBA", "V1", "prf-visualrois:hV4", "floc-bodies"]
    loaded = load_algonauts(truth.root, 1, rois)
    families = {
        "EBA": ("floc-bodies", [1]),
        "V1": ("prf-visualrois", [1, 2]),
        "prf-visualrois:hV4": ("prf-visualrois", [7]),
        "floc-bodies": ("floc-bodies", [1, 2, 3, 4]),
    }
    per_hemi = {
        hemi: {
            name: np.isin(truth.labels[hemi][family], ids)
            for name, (family, ids) in families.items()
        }
        for hemi in ("lh", "rh")
    }
    cols = {hemi: np.logical_or.reduce(list(m.values())) for hemi, m in per_hemi.items()}
    np.testing.assert_array_equal(
        loaded.responses, np.hstack([truth.fmri[h][:, cols[h]] for h in ("lh", "rh")])
    )
    for name in rois:
        expected = np.concatenate([per_hemi[h][name][cols[h]] for h in ("lh", "rh")])
        np.testing.assert_array_equal(loaded.roi_masks[name], expected)
    fsaverage = np.concatenate([truth.fsaverage_index[h][cols[h]] for h in ("lh", "rh")])
    np.testing.assert_array_equal(loaded.coordinates[:, 1], fsaverage)


def test_one_hemisphere(mini_algonauts: MiniAlgonauts) -> None:
    truth = mini_algonauts
    loaded = load_algonauts(truth.root, 1, "EBA", hemispheres=("rh",))
    mask = truth.labels["rh"]["floc-bodies"] == 1
    np.testing.assert_array_equal(loaded.responses, truth.fmri["rh"][:, mask])
    np.testing.assert_array_equal(loaded.coordinates[:, 0], 1)
    np.testing.assert_array_equal(loaded.coordinates[:, 1], truth.fsaverage_index["rh"][mask])


def test_algonauts_rois(mini_algonauts: MiniAlgonauts) -> None:
    assert algonauts_rois(mini_algonauts.root, 1) == {
        family: list(names.values()) for family, names in mini_algonauts.mappings.items()
    }


def test_bad_rois_and_hemispheres(mini_algonauts: MiniAlgonauts) -> None:
    root = mini_algonauts.root
    with raises_one_line(r"unknown ROI 'FFA-1'; available: prf-visualrois: V1v .*floc-bodies: EBA"):
        load_algonauts(root, 1, ["FFA-1"])
    with raises_one_line(r"ROI 'mTL-bodies' has no vertices in hemispheres lh, rh"):
        load_algonauts(root, 1, ["mTL-bodies"])
    with raises_one_line(r"hemispheres=\('lh', 'xh'\) must be distinct values of 'lh', 'rh'"):
        load_algonauts(root, 1, hemispheres=("lh", "xh"))
    with raises_one_line(r"subject=2: no folder subjAA for it .*subjects present: subj01"):
        load_algonauts(root, 2)


def test_missing_and_mismatched_files(damaged: Path) -> None:
    masks = damaged / "subj01" / "roi_masks"
    fmri = damaged / "subj01" / "training_split" / "training_fmri"
    (masks / "rh.floc-bodies_challenge_space.npy").unlink()
    with raises_one_line(
        rf"{re.escape(str(masks))}/rh\.floc-bodies_challenge_space\.npy not found: .*"
        r"Algonauts 2023 subj01/roi_masks/ folder"
    ):
        load_algonauts(damaged, 1, ["EBA"])
    np.save(fmri / "lh_training_fmri.npy", np.zeros((14, 20), np.float32))
    with raises_one_line(r"has shape \(14, 20\), expected \(15, n_vertices\)"):
        load_algonauts(damaged, 1)
    np.save(fmri / "lh_training_fmri.npy", np.zeros((15, 21), np.float32))
    with raises_one_line(r"selects 20 vertices but the lh fMRI has 21 columns"):
        load_algonauts(damaged, 1)
    next((damaged / "subj01" / "training_split" / "training_images").glob("train-0003_*")).unlink()
    with raises_one_line(r"lacks train-0003_nsd-IIIII\.png"):
        load_algonauts(damaged, 1)


def test_pickles_only_in_mapping_files(damaged: Path) -> None:
    masks = damaged / "subj01" / "roi_masks"
    np.save(masks / "mapping_floc-bodies.npy", np.array(["EBA", "FBA-1"], dtype=object))
    with raises_one_line(r"mapping_floc-bodies\.npy does not hold a dict of int label ids"):
        load_algonauts(damaged, 1, ["EBA"])
    np.save(masks / "mapping_floc-bodies.npy", {"1": "EBA"})
    with raises_one_line("does not hold a dict of int label ids to str names"):
        load_algonauts(damaged, 1, ["EBA"])
    fmri = damaged / "subj01" / "training_split" / "training_fmri" / "rh_training_fmri.npy"
    np.save(fmri, np.array([{"a": 1}] * 15, dtype=object))  # a pickle where data belongs
    with raises_one_line(r"rh_training_fmri\.npy is not a readable \.npy array"):
        load_algonauts(damaged, 1)


class _Payload:
    """Unpickling this would run code: it rebuilds itself by calling ``Path.touch``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_mapping_file_cannot_run_code(damaged: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    masks = damaged / "subj01" / "roi_masks"
    np.save(masks / "mapping_floc-bodies.npy", np.array({1: _Payload(marker)}), allow_pickle=True)
    with raises_one_line(r"mapping_floc-bodies\.npy is not a readable mapping file .*refused"):
        load_algonauts(damaged, 1, ["EBA"])
    assert not marker.exists()  # refused before anything ran
    assert np.load(masks / "mapping_floc-bodies.npy", allow_pickle=True) is not None
    assert marker.exists()  # the same file through a plain np.load does run it
