"""The brain as a representation: ROI LID profiles, their stability, model–ROI profile distances."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from repscope._validation import InputError
from repscope.dimension.brain import profile_distances, roi_dimension_profiles
from repscope.dimension.estimate import local_dimension
from repscope.io.responses import BrainResponses

N_IMAGES = 1000
KS = [5, 10, 20, 50]


def _subspace(rng: np.random.Generator, d: int, n_voxels: int) -> np.ndarray:
    """Gaussian points on a random d-dimensional affine subspace of R^n_voxels."""
    basis = np.linalg.qr(rng.standard_normal((n_voxels, d)))[0]
    return 5.0 * rng.standard_normal((N_IMAGES, d)) @ basis.T + rng.standard_normal(n_voxels)


def _brain(seed: int = 0, subject: int = 1) -> BrainResponses:
    """ROI "low": a 3-D subspace in 200 voxels; ROI "high": a 10-D subspace in 100 voxels."""
    rng = np.random.default_rng(seed)
    Y = np.concatenate([_subspace(rng, 3, 200), _subspace(rng, 10, 100)], axis=1)
    cols = np.arange(300)
    return BrainResponses(
        subject=subject,
        stimulus_ids=np.array([f"nsd-{i:05d}" for i in range(N_IMAGES)]),
        responses=Y.astype(np.float32),
        n_repeats=np.full(N_IMAGES, 3),
        coordinates=np.zeros((300, 3), dtype=int),
        ncsnr=np.ones(300),
        roi_masks={"low": cols < 200, "high": cols >= 200},
        shared=np.zeros(N_IMAGES, dtype=bool),
        space="func1pt8mm",
    )


@pytest.fixture(scope="module")
def profiles() -> pd.DataFrame:
    return roi_dimension_profiles(
        [_brain(0), _brain(1, subject=2)], k=KS, estimator="mle-unbiased", device="cpu"
    )


def test_table_is_tidy_per_subject_roi_and_k(profiles):
    assert list(profiles[["subject", "roi", "k"]].itertuples(index=False, name=None)) == [
        (s, roi, k) for s in ("1", "2") for roi in ("low", "high") for k in KS
    ]
    low = profiles[profiles["roi"] == "low"]
    assert set(low["n_voxels"]) == {200} and set(low["n_images"]) == {N_IMAGES}
    assert set(low["pca"]) == {200} and set(profiles["estimator"]) == {"mle-unbiased"}


def test_roi_on_a_3d_subspace_has_lid_3_at_small_k(profiles):
    small = profiles["k"].isin([10, 20])
    low = profiles[(profiles["roi"] == "low") & small]
    # the unbiased MLE on a 3-D Gaussian is 3 up to sampling and the density's curvature;
    # the largest deviation at K = 10, 20 over data seeds 0–49 is 0.18
    np.testing.assert_allclose(low["lid"], 3.0, atol=0.25)
    high = profiles[(profiles["roi"] == "high") & small]
    assert (high["lid"].to_numpy() > low["lid"].to_numpy() + 4).all()


def test_biased_mle_follows_its_closed_form_bias():
    """Levina–Bickel's MLE has expectation d (K−1)/(K−2) on a flat d-manifold."""
    table = roi_dimension_profiles(_brain(2), "low", k=[10, 20], device="cpu")
    expected = 3.0 * (table["k"] - 1) / (table["k"] - 2)
    # largest deviation over data seeds 0–49: 0.20
    np.testing.assert_allclose(table["lid"], expected, atol=0.25)


def test_stability_columns_are_slopes_against_log_k(profiles):
    for _, group in profiles.groupby(["subject", "roi"]):
        log_k, lid = np.log(group["k"].to_numpy()), group["lid"].to_numpy()
        # independent OLS fits (numpy.polyfit), with and without the largest scale
        assert group["slope"].iloc[0] == pytest.approx(np.polyfit(log_k, lid, 1)[0], rel=1e-9)
        assert group["slope_without_largest"].iloc[0] == pytest.approx(
            np.polyfit(log_k[:-1], lid[:-1], 1)[0], rel=1e-9
        )
        assert group["cv"].iloc[0] == pytest.approx(lid.std() / lid.mean(), rel=1e-12)
        assert group[["slope", "cv"]].nunique().eq(1).all()


def test_one_scale_leaves_stability_undefined():
    table = roi_dimension_profiles(_brain(0), "low", k=10, device="cpu")
    assert len(table) == 1 and table[["slope", "slope_without_largest", "cv"]].isna().all(axis=None)


def test_profile_matches_local_dimension_on_the_roi_columns():
    brain = _brain(3)
    table = roi_dimension_profiles(brain, ["high"], k=KS, pca=20, device="cpu")
    ref = local_dimension(brain.responses[:, 200:], KS, pca=20, device="cpu")
    np.testing.assert_allclose(table["lid"], [ref.profile[k] for k in KS], rtol=1e-12)


def test_distance_to_an_identical_profile_is_zero(profiles):
    group = profiles[(profiles["subject"] == "1") & (profiles["roi"] == "low")]
    model = dict(zip(group["k"], group["lid"], strict=True))
    out = profile_distances(model, profiles)
    assert list(out[["subject", "roi"]].itertuples(index=False, name=None)) == [
        ("1", "low"),
        ("1", "high"),
        ("2", "low"),
        ("2", "high"),
    ]
    assert out["distance"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert (out["n_common_k"] == len(KS)).all()


def test_distance_matches_a_hand_computation(profiles):
    model = {5: 9.0, 10: 7.5, 20: 7.0, 100: 6.0}  # K=100 is not in the brain's profile
    out = profile_distances(model, profiles).set_index(["subject", "roi"])
    for (subject, roi), group in profiles.groupby(["subject", "roi"]):
        brain = group.set_index("k")["lid"].loc[[5, 10, 20]].to_numpy()
        a = np.array([9.0, 7.5, 7.0])
        za = (a - a.mean()) / a.std()
        zb = (brain - brain.mean()) / brain.std()
        assert out.loc[(subject, roi), "distance"] == pytest.approx(
            np.sqrt(((za - zb) ** 2).sum()), rel=1e-12
        )
        assert out.loc[(subject, roi), "n_common_k"] == 3


def test_a_local_dimension_result_is_accepted_as_model_profile():
    brain = _brain(4)
    table = roi_dimension_profiles(brain, "low", k=KS, device="cpu")
    model = local_dimension(brain.responses[:, :200], KS, device="cpu")
    assert profile_distances(model, table)["distance"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError, match=r"estimator 'mle' but brain_profiles uses \['twonn'\]"):
        profile_distances(model, table.assign(estimator="twonn"))


def test_empty_roi_is_skipped_with_a_warning():
    brain = _brain(0)
    masks = {**brain.roi_masks, "FFA": np.zeros(300, dtype=bool)}
    brain = replace(brain, roi_masks=masks)
    with pytest.warns(UserWarning, match="ROI 'FFA' has no voxels in subject 1"):
        table = roi_dimension_profiles(brain, ["low", "FFA"], k=[10, 20], device="cpu")
    assert set(table["roi"]) == {"low"}


def test_bad_input_raises_one_line_errors(profiles):
    brain = _brain(0)
    with pytest.raises(InputError, match=r"ROI 'EBA' is not in subject 1's responses"):
        roi_dimension_profiles(brain, ["EBA"])
    bad = brain.responses.copy()
    bad[5, 3] = np.nan
    with pytest.raises(InputError, match=r"NaN or infinite values in 1 of 200 voxels"):
        roi_dimension_profiles(replace(brain, responses=bad), "low")
    with pytest.raises(InputError, match=r"brain_profiles lacks columns \['lid'\]"):
        profile_distances({5: 1.0, 10: 2.0}, profiles.drop(columns="lid"))
    with pytest.raises(InputError, match=r"share 1 scale"):
        profile_distances({5: 1.0, 7: 2.0}, profiles)
