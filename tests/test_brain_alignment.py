"""Model–brain alignment: scikit-learn oracles, known answers, id matching, pooling, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.preprocessing import StandardScaler

from repscope._validation import InputError
from repscope.alignment.brain import brain_alignment
from repscope.alignment.ridge import ridge_alignment
from repscope.io.atomic import TEMP_PREFIX
from repscope.io.responses import BrainResponses

ALPHAS = np.logspace(-2, 4, 9)
# exact, pure-noise and small synthetic voxels put penalties at an edge of the grid; that
# warning belongs to ridge_alignment and is tested in test_ridge.py
pytestmark = pytest.mark.filterwarnings("ignore:the chosen alpha is at an edge")


def _ids(n: int, start: int = 0) -> np.ndarray:
    return np.array([f"nsd-{i:05d}" for i in range(start, start + n)])


def _brain(
    Y: np.ndarray,
    ids: np.ndarray | None = None,
    *,
    subject: int = 1,
    rois: dict[str, np.ndarray] | None = None,
    shared: np.ndarray | None = None,
    n_repeats: np.ndarray | None = None,
    ncsnr: np.ndarray | None = None,
) -> BrainResponses:
    n, v = Y.shape
    return BrainResponses(
        subject=subject,
        stimulus_ids=_ids(n) if ids is None else ids,
        responses=np.asarray(Y, dtype=np.float32),
        n_repeats=np.full(n, 3) if n_repeats is None else n_repeats,
        coordinates=np.stack([np.arange(v), np.zeros(v, int), np.ones(v, int)], axis=1),
        ncsnr=np.ones(v) if ncsnr is None else ncsnr,
        roi_masks={"all": np.ones(v, dtype=bool)} if rois is None else rois,
        shared=np.zeros(n, dtype=bool) if shared is None else shared,
        space="func1pt8mm",
    )


def _data(n: int, p: int, v: int, seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 3.0, p) + rng.uniform(-2, 2, p)
    Y = X @ rng.standard_normal((p, v)) + noise * rng.standard_normal((n, v))
    # responses are float32 in BrainResponses; oracles must see the same numbers
    return X, Y.astype(np.float32).astype(np.float64)


def _random_split(n: int, test_size: float, seed: int):
    """The documented split: seeded permutation, first ceil(test_size * n) rows are test."""
    n_test = int(np.ceil(test_size * n))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _sklearn_design(X, train, test, n_components):
    """PCA fit on the train rows, then StandardScaler fit on the train scores (scikit-learn)."""
    pca = PCA(n_components=n_components).fit(X[train])
    scaler = StandardScaler().fit(pca.transform(X[train]))
    return scaler.transform(pca.transform(X[train])), scaler.transform(pca.transform(X[test]))


def _r2_r(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    return r2, np.corrcoef(y, pred)[0, 1]


@pytest.mark.parametrize("pca", [None, 300])
def test_exact_linear_voxels_are_predicted_perfectly(pca):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20))
    Y = X @ rng.standard_normal((20, 30))
    res = brain_alignment(X, _ids(300), _brain(Y), pca=pca, device="cpu")
    # float32 responses carry ~1e-7 relative rounding, so R² is 1 to about 1e-6
    assert res.voxels[(1, "all")].r2.min() > 1 - 1e-4
    assert res.table["r2"].iloc[0] > 1 - 1e-4


def test_rank_deficient_embedding_drops_null_pca_axes():
    """A 5-dimensional embedding keeps 5 components, not null axes scaled up to unit variance."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 5)) @ rng.standard_normal((5, 40))
    Y = X @ rng.standard_normal((40, 10))
    res = brain_alignment(X, _ids(200), _brain(Y), pca=300, device="cpu")
    assert res.table["pca"].iloc[0] == 5
    assert res.voxels[(1, "all")].r2.min() > 1 - 1e-4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_voxels_score_about_zero(seed):
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((300, 20)), rng.standard_normal((300, 50))
    res = brain_alignment(X, _ids(300), _brain(Y), pca=None, device="cpu")
    r2 = res.voxels[(1, "all")].r2
    # a held-out R² of pure noise is ~0 minus the train/test mean mismatch (~1/n_test), and a
    # single voxel's R² has sd ~ sqrt(2/n_test) ≈ 0.16 at most; measured means -0.02 to -0.03
    assert -0.1 < r2.mean() <= 0.01
    assert r2.max() < 0.1


def test_fixed_alpha_equals_sklearn_pca_scaler_ridge():
    X, Y = _data(120, 40, 12, seed=3, noise=4.0)
    res = brain_alignment(X, _ids(120), _brain(Y), pca=15, alphas=[3.0], device="cpu")
    train, test = _random_split(120, 0.2, 0)
    Xtr, Xte = _sklearn_design(X, train, test, 15)
    pred = Ridge(alpha=3.0).fit(Xtr, Y[train]).predict(Xte)
    vm = res.voxels[(1, "all")]
    for v in range(Y.shape[1]):
        r2, r = _r2_r(Y[test, v], pred[:, v])
        # both are float64 solutions of the same well-conditioned system: agree to ~1e-12
        assert vm.r2[v] == pytest.approx(r2, abs=1e-9)
        assert vm.pearson_r[v] == pytest.approx(r, abs=1e-9)
    assert res.table["n_train"].iloc[0] == 96 and res.table["n_test"].iloc[0] == 24


def test_cv_penalty_per_voxel_equals_sklearn_grid_search():
    # n_train = 100 in 5 folds of 20: summed SSE and sklearn's mean fold MSE pick the same alpha
    X, Y = _data(125, 30, 8, seed=4, noise=6.0)
    res = brain_alignment(X, _ids(125), _brain(Y), pca=12, alphas=ALPHAS, device="cpu")
    train, test = _random_split(125, 0.2, 0)
    Xtr, Xte = _sklearn_design(X, train, test, 12)
    folds = KFold(n_splits=5, shuffle=True, random_state=0)
    vm = res.voxels[(1, "all")]
    for v in range(Y.shape[1]):
        search = GridSearchCV(
            Ridge(), {"alpha": ALPHAS}, cv=folds, scoring="neg_mean_squared_error"
        ).fit(Xtr, Y[train, v])
        assert vm.alpha[v] == search.best_params_["alpha"]
        r2, r = _r2_r(Y[test, v], search.predict(Xte))
        assert vm.r2[v] == pytest.approx(r2, abs=1e-9)
        assert vm.pearson_r[v] == pytest.approx(r, abs=1e-9)


def test_one_fit_on_the_roi_union_equals_one_fit_per_roi():
    X, Y = _data(150, 25, 20, seed=5, noise=3.0)
    cols = np.arange(20)
    rois = {"A": cols < 10, "B": (cols >= 5) & (cols < 15), "C": cols >= 15}
    brain = _brain(Y, rois=rois)
    union = brain_alignment(X, _ids(150), brain, pca=10, alphas=ALPHAS, device="cpu")
    for roi in rois:
        alone = brain_alignment(X, _ids(150), brain, rois=roi, pca=10, alphas=ALPHAS, device="cpu")
        a, b = union.voxels[(1, roi)], alone.voxels[(1, roi)]
        np.testing.assert_array_equal(a.columns, np.flatnonzero(rois[roi]))
        np.testing.assert_array_equal(a.alpha, b.alpha)
        # same per-voxel arithmetic, only the BLAS blocking of the batch differs
        np.testing.assert_allclose(a.r2, b.r2, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a.pearson_r, b.pearson_r, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(a.coordinates, brain.coordinates[rois[roi]])


def test_shared_images_are_the_test_set():
    X, Y = _data(160, 10, 6, seed=6, noise=2.0)
    shared = np.zeros(160, dtype=bool)
    shared[np.random.default_rng(0).choice(160, 40, replace=False)] = True
    res = brain_alignment(
        X,
        _ids(160),
        _brain(Y, shared=shared),
        test="shared",
        pca=None,
        alphas=ALPHAS,
        device="cpu",
    )
    ref = ridge_alignment(
        X,
        Y,
        split=(np.flatnonzero(~shared), np.flatnonzero(shared)),
        alphas=ALPHAS,
        device="cpu",
    )
    row = res.table.iloc[0]
    assert (row["n_train"], row["n_test"], row["test"]) == (120, 40, "shared")
    np.testing.assert_allclose(res.voxels[(1, "all")].r2, ref.r2, rtol=1e-12)
    assert res.to_dict()["settings"]["test_size"] is None


def test_id_matching_with_shuffled_and_partial_ids_equals_prealigned():
    X, Y = _data(150, 12, 8, seed=7, noise=2.0)
    ids = _ids(150)
    rng = np.random.default_rng(1)
    # the embedding lacks 20 of the brain's images and has 25 the brain lacks, in random order
    kept = np.sort(rng.choice(150, 130, replace=False))
    X_extra = rng.standard_normal((25, 12))
    X_emb = np.concatenate([X[kept], X_extra])
    ids_emb = np.concatenate([ids[kept], _ids(25, start=5000)])
    perm = rng.permutation(len(X_emb))
    shuffled = brain_alignment(X_emb[perm], ids_emb[perm], _brain(Y), pca=8, device="cpu")
    aligned = brain_alignment(X[kept], ids[kept], _brain(Y[kept], ids[kept]), pca=8, device="cpu")
    np.testing.assert_array_equal(shuffled.voxels[(1, "all")].r2, aligned.voxels[(1, "all")].r2)
    row = shuffled.table.iloc[0]
    assert (row["n_train"] + row["n_test"], row["n_embedding_only"], row["n_brain_only"]) == (
        130,
        25,
        20,
    )


@pytest.mark.parametrize("test", ["random", "shared"])
def test_noise_ceiling_uses_the_test_images_repeats(test):
    X, Y = _data(200, 10, 15, seed=8, noise=3.0)
    rng = np.random.default_rng(2)
    shared = rng.random(200) < 0.3
    # shared images were seen 3 times, the others 1 or 2: the test set's ceiling differs
    n_repeats = np.where(shared, 3, rng.integers(1, 3, 200))
    ncsnr = rng.uniform(0.0, 1.5, 15)
    ncsnr[0] = np.nan  # unknown for one voxel
    brain = _brain(Y, shared=shared, n_repeats=n_repeats, ncsnr=ncsnr)
    res = brain_alignment(X, _ids(200), brain, test=test, pca=None, device="cpu")
    test_rows = np.flatnonzero(shared) if test == "shared" else _random_split(200, 0.2, 0)[1]
    expected = ncsnr**2 / (ncsnr**2 + np.mean(1.0 / n_repeats[test_rows]))
    vm = res.voxels[(1, "all")]
    np.testing.assert_allclose(vm.noise_ceiling, expected, rtol=1e-12)
    row = res.table.iloc[0]
    known = ~np.isnan(expected)
    assert row["noise_ceiling"] == pytest.approx(expected[known].mean(), rel=1e-12)
    assert row["r2_normalized"] == pytest.approx(
        vm.r2[known].mean() / expected[known].mean(), rel=1e-12
    )
    reliable = known & (np.nan_to_num(expected) > 0.05)
    assert row["n_voxels_reliable"] == reliable.sum()
    assert row["r2_normalized_median"] == pytest.approx(
        np.median(vm.r2[reliable] / expected[reliable]), rel=1e-12
    )


def test_unknown_noise_ceiling_gives_nan_normalized_scores():
    X, Y = _data(100, 5, 4, seed=9)
    res = brain_alignment(X, _ids(100), _brain(Y, ncsnr=np.full(4, np.nan)), pca=None)
    row = res.table.iloc[0]
    assert np.isnan(row["noise_ceiling"]) and np.isnan(row["r2_normalized"])
    assert np.isnan(row["r2_normalized_median"]) and row["n_voxels_reliable"] == 0
    assert np.isfinite(row["r2"])


def _planted(seed: int) -> tuple[float, float]:
    """Mean (R² − NC) over planted voxels, and the ROI's r2_normalized."""
    # 40 voxels = linear signal (variance 1) + trial noise (sd 1/snr) averaged over 3 trials
    rng = np.random.default_rng(seed)
    n, p, v = 3000, 10, 40
    X = rng.standard_normal((n, p))
    W = rng.standard_normal((p, v))
    W /= np.linalg.norm(W, axis=0)  # signal variance 1 in every voxel
    snr = rng.uniform(0.3, 1.5, v)
    trials = (X @ W)[None] + rng.standard_normal((3, n, v)) / snr
    res = brain_alignment(X, _ids(n), _brain(trials.mean(0), ncsnr=snr), pca=None, device="cpu")
    truth = snr**2 / (snr**2 + 1 / 3)  # the explainable share of the averaged response
    return float(np.mean(res.voxels[(1, "all")].r2 - truth)), res.table["r2_normalized"].iloc[0]


def test_planted_signal_r2_approaches_the_noise_ceiling_from_below():
    gaps, normalized = np.array([_planted(seed) for seed in range(5)]).T
    # a perfect model reaches NC up to sampling error: the test set (600 images) is shared by
    # the voxels, so one seed's mean gap has sd ~0.005 (measured over 40 seeds: −0.012 to
    # +0.009), and fitting p = 10 weights on 2400 rows costs ~p/n_train ≈ 0.004
    assert np.abs(gaps).max() < 0.02
    np.testing.assert_allclose(normalized, 1.0, atol=0.03)
    # not systematically above the ceiling: the 40-seed mean was −0.0044 (sd of a 5-seed mean
    # 0.002)
    assert gaps.mean() < 0.002


def test_pooled_rows_are_means_over_subjects():
    X, Y1 = _data(120, 10, 12, seed=10, noise=2.0)
    _, Y2 = _data(120, 10, 12, seed=11, noise=4.0)
    cols = np.arange(12)
    rois1 = {"V1": cols < 6, "FFA": cols >= 6}
    subjects = [_brain(Y1, rois=rois1), _brain(Y2, subject=2, rois={"V1": cols < 8})]
    res = brain_alignment(X, _ids(120), subjects, pca=None, device="cpu")
    t = res.table.set_index(["subject", "roi"])
    assert list(t.index) == [("1", "V1"), ("1", "FFA"), ("2", "V1"), ("all", "V1"), ("all", "FFA")]
    for name in ("r2", "pearson_r", "noise_ceiling", "r2_normalized"):
        per = np.array([t.loc[("1", "V1"), name], t.loc[("2", "V1"), name]])
        assert t.loc[("all", "V1"), name] == pytest.approx(per.mean(), rel=1e-12)
        assert t.loc[("all", "V1"), f"{name}_sd"] == pytest.approx(per.std(ddof=1), rel=1e-12)
        assert t.loc[("all", "FFA"), name] == t.loc[("1", "FFA"), name]
        assert np.isnan(t.loc[("all", "FFA"), f"{name}_sd"])
    assert t.loc[("all", "V1"), "n_subjects"] == 2 and t.loc[("all", "FFA"), "n_subjects"] == 1
    assert t.loc[("all", "V1"), "n_voxels"] == 14
    assert pd.isna(t.loc[("all", "V1"), "n_train"])


def test_save_writes_both_files_atomically_and_to_dict_is_json(tmp_path):
    X, Y = _data(100, 8, 6, seed=12)
    cols = np.arange(6)
    brain = _brain(Y, rois={"V1": cols < 3, "EBA": cols >= 2})
    res = brain_alignment(X, _ids(100), brain, pca=5, device="cpu")
    table_path, voxels_path = res.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "brain_alignment.csv",
        "voxel_maps.npz",
    ]
    assert not list((tmp_path / "out").glob(f"{TEMP_PREFIX}*"))
    back = pd.read_csv(table_path)
    np.testing.assert_allclose(back["r2"], res.table["r2"], rtol=1e-12)
    assert list(back.columns) == list(res.table.columns)
    with np.load(voxels_path) as maps:
        for (subject, roi), vm in res.voxels.items():
            np.testing.assert_array_equal(maps[f"{subject}/{roi}/r2"], vm.r2)
            np.testing.assert_array_equal(maps[f"{subject}/{roi}/coordinates"], vm.coordinates)
    summary = json.loads(json.dumps(res.to_dict()))
    assert summary["settings"]["pca"] == 5 and len(summary["table"]) == 4
    assert summary["table"][2]["n_train"] is None and summary["table"][2]["subject"] == "all"


def test_generator_random_state_is_accepted_and_seeds_reproducibly():
    X, Y = _data(100, 8, 4, seed=13)
    a = brain_alignment(X, _ids(100), _brain(Y), pca=None, random_state=np.random.default_rng(5))
    b = brain_alignment(X, _ids(100), _brain(Y), pca=None, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(a.voxels[(1, "all")].r2, b.voxels[(1, "all")].r2)
    assert a.to_dict()["settings"]["random_state"] is None


def _bad_calls():
    X, Y = _data(60, 5, 4, seed=14)
    ids = _ids(60)
    good = _brain(Y)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    Y_nan = Y.copy()
    Y_nan[0, 2] = np.inf
    return [
        (
            (X, _ids(60, start=9000), good),
            {},
            r"ids \(e.g. 'nsd-09000'\) and subject 1's images \(e.g. 'nsd-00000'\) have none",
        ),
        ((X[:8], ids[:8], good), {}, r"shares only 8 images.*at least 10"),
        ((X, ids, good), {"rois": ["EBA"]}, r"ROI 'EBA' is not in subject 1's responses"),
        ((X_nan, ids, good), {}, r"X contains NaN or infinite values in 1 of 60 rows"),
        ((X, ids, good), {"test": "shared"}, r"0 shared and 60 other.*pass test='random'"),
        ((X, ids, good), {"test": "nsd"}, r"test='nsd' is not known"),
        ((X, ids[:59], good), {}, r"ids has shape \(59,\) but X has 60 rows"),
        ((X, np.r_[ids[:59], ids[:1]], good), {}, r"ids repeat 1 values \(e.g. 'nsd-00000'\)"),
        ((X, ids, [good, good]), {}, r"brain repeats a subject"),
        ((X, ids, []), {}, r"brain is an empty sequence"),
        ((X, ids, Y), {}, r"brain holds a ndarray, not BrainResponses"),
        ((X, ids, _brain(Y_nan)), {}, r"NaN or infinite values in 1 of 4 voxels"),
        ((X, ids, good), {"pca": 0}, r"pca=0 must be >= 1"),
        ((X, ids, good), {"min_noise_ceiling": 1.0}, r"min_noise_ceiling=1.0 must be in"),
        ((X, ids, good), {"rois": []}, r"no ROIs to analyse"),
        ((np.ones_like(X), ids, good), {}, r"X is constant over the train images"),
        ((X, ids.astype(object), good), {"test_size": 0.99}, r"test_size=0.99 leaves 60 test"),
    ]


@pytest.mark.parametrize(("args", "kwargs", "match"), _bad_calls())
def test_bad_input_raises_one_line_error(args, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        brain_alignment(*args, device="cpu", **kwargs)
    assert "\n" not in str(info.value)


def test_shared_test_needs_two_non_shared_images():
    X, Y = _data(30, 4, 3, seed=15)
    shared = np.ones(30, dtype=bool)
    shared[0] = False
    with pytest.raises(InputError, match=r"29 shared and 1 other images"):
        brain_alignment(X, _ids(30), _brain(Y, shared=shared), test="shared", pca=None)
