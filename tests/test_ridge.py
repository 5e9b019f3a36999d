"""Ridge encoding: oracle tests against scikit-learn and himalaya, properties, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from repscope._validation import InputError
from repscope.alignment.ridge import RidgeEncoder, RidgeScores, ridge_alignment

ALPHAS = np.logspace(-2, 4, 9)


def _data(n: int, p: int, v: int, seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 3.0, p) + rng.uniform(-2, 2, p)
    W = rng.standard_normal((p, v)) * rng.uniform(0.0, 1.0, v)
    Y = X @ W + noise * rng.standard_normal((n, v)) * rng.uniform(0.5, 5.0, v) + 3.0
    return X, Y


def _split(n: int, test_size: float, seed: int):
    """The documented split: seeded permutation, first ceil(test_size*n) rows are test."""
    n_test = int(np.ceil(test_size * n))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _standardized(X, train, test):
    mean, std = X[train].mean(0), X[train].std(0)
    return (X[train] - mean) / std, (X[test] - mean) / std


def _brute_force_alphas(Xtr, Ytr, alphas, cv, seed):
    """Index of the penalty minimizing summed validation SSE, per target, with sklearn Ridge."""
    folds = KFold(n_splits=cv, shuffle=True, random_state=seed).split(Xtr)
    sse = np.zeros((len(alphas), Ytr.shape[1]))
    for tr, va in folds:
        for i, a in enumerate(alphas):
            pred = Ridge(alpha=a).fit(Xtr[tr], Ytr[tr]).predict(Xtr[va])
            sse[i] += ((Ytr[va] - pred) ** 2).sum(0)
    return sse.argmin(0), sse


# primal; dual (P > n_train); dual folds with a primal refit (n_fold < P <= n_train)
@pytest.mark.parametrize(("n", "p"), [(80, 6), (45, 60), (50, 35)])
@pytest.mark.parametrize("seed", [0, 1])
def test_alpha_choice_equals_brute_force_cv(n, p, seed):
    X, Y = _data(n, p, 7, seed, noise=3.0)
    train, test = _split(n, 0.2, seed)
    Xtr, _ = _standardized(X, train, test)
    best, sse = _brute_force_alphas(Xtr, Y[train], ALPHAS, 4, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = ridge_alignment(X, Y, alphas=ALPHAS, cv=4, random_state=seed, device="cpu")
    # a near-tie in the CV error could flip the choice under rounding; none here
    ordered = np.sort(sse, axis=0)
    assert np.all(ordered[1] - ordered[0] > 1e-9 * ordered[0])
    np.testing.assert_array_equal(res.alpha, ALPHAS[best])


@pytest.mark.parametrize(("n", "p"), [(60, 6), (30, 50), (40, 28)])
def test_cv_errors_equal_brute_force_sse(n, p):
    """The kernel's small-product SSE equals sklearn's validation SSE for every penalty."""
    import torch

    from repscope.alignment._ridge_cv import RidgeCVSolver

    X, Y = _data(n, p, 6, 11, noise=2.0)
    Xs = (X - X.mean(0)) / X.std(0)
    Yc = Y - Y.mean(0)
    folds = list(KFold(n_splits=5, shuffle=True, random_state=0).split(Xs))
    solver = RidgeCVSolver(Xs, ALPHAS, folds, torch.device("cpu"))
    sse, _ = solver.cv_errors(torch.from_numpy(Yc))
    _, ref = _brute_force_alphas(Xs, Yc, ALPHAS, 5, 0)
    np.testing.assert_allclose(sse.numpy(), ref, rtol=1e-9)


def test_shared_alpha_minimizes_total_error():
    X, Y = _data(60, 5, 6, 3, noise=4.0)
    train, test = _split(60, 0.2, 3)
    Xtr, _ = _standardized(X, train, test)
    _, sse = _brute_force_alphas(Xtr, Y[train], ALPHAS, 5, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = ridge_alignment(X, Y, alphas=ALPHAS, per_target=False, device="cpu", random_state=3)
    np.testing.assert_array_equal(res.alpha, np.full(6, ALPHAS[sse.sum(1).argmin()]))


@pytest.mark.parametrize(("n", "p"), [(90, 7), (40, 70), (40, 28)])
def test_predictions_equal_sklearn_ridge(n, p):
    X, Y = _data(n, p, 5, 2, noise=2.0)
    train, test = _split(n, 0.25, 2)
    Xtr, Xte = _standardized(X, train, test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = ridge_alignment(X, Y, test_size=0.25, alphas=ALPHAS, random_state=2, device="cpu")
    for v in range(Y.shape[1]):
        pred = Ridge(alpha=res.alpha[v]).fit(Xtr, Y[train, v]).predict(Xte)
        y = Y[test, v]
        r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        # R² is 1 - SSE/SST, so 1e-6 on R² bounds the prediction error relative to SST
        assert res.r2[v] == pytest.approx(r2, abs=1e-6)
        assert res.pearson_r[v] == pytest.approx(np.corrcoef(pred, y)[0, 1], abs=1e-6)


def test_encoder_predictions_equal_sklearn_ridge():
    X, Y = _data(70, 6, 4, 5, noise=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        enc = RidgeEncoder(alphas=ALPHAS, cv=5, device="cpu").fit(X, Y)
    assert enc.coef_.shape == (6, 4) and enc.intercept_.shape == (4,)
    Xs = (X - X.mean(0)) / X.std(0)
    Xnew = np.random.default_rng(9).standard_normal((10, 6))
    Xnew_s = (Xnew - X.mean(0)) / X.std(0)
    for v in range(4):
        ref = Ridge(alpha=enc.alpha_[v]).fit(Xs, Y[:, v]).predict(Xnew_s)
        np.testing.assert_allclose(enc.predict(Xnew)[:, v], ref, atol=1e-6 * np.abs(ref).max())
    best, _ = _brute_force_alphas(Xs, Y, ALPHAS, 5, 0)
    np.testing.assert_array_equal(enc.alpha_, ALPHAS[best])
    assert enc.score(X, Y) > 0.0


def test_mean_score_agrees_with_himalaya():
    himalaya_backend = pytest.importorskip("himalaya.backend")
    from himalaya.ridge import RidgeCV

    n, seed = 125, 4  # 100 train rows: 5 equal folds, so himalaya's mean MSE = our summed SSE
    X, Y = _data(n, 12, 30, seed, noise=3.0)
    train, test = _split(n, 0.2, seed)
    Xtr, Xte = _standardized(X, train, test)
    previous = himalaya_backend.get_backend()
    himalaya_backend.set_backend("numpy")
    try:
        folds = KFold(n_splits=5, shuffle=True, random_state=seed)
        model = RidgeCV(alphas=ALPHAS, fit_intercept=True, cv=folds).fit(Xtr, Y[train])
        pred = np.asarray(model.predict(Xte))
        best_alphas = np.asarray(model.best_alphas_)
    finally:
        himalaya_backend.set_backend(previous)
    yt = Y[test]
    r2 = 1 - ((yt - pred) ** 2).sum(0) / ((yt - yt.mean(0)) ** 2).sum(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = ridge_alignment(X, Y, alphas=ALPHAS, cv=5, random_state=seed, device="cpu")
    assert res.score == pytest.approx(r2.mean(), abs=1e-3)
    np.testing.assert_allclose(res.alpha, best_alphas)


def test_r2_invariant_to_target_scaling():
    X, Y = _data(80, 6, 5, 6, noise=2.0)
    scales = np.random.default_rng(1).uniform(0.01, 100.0, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = ridge_alignment(X, Y, alphas=ALPHAS, device="cpu")
        b = ridge_alignment(X, Y * scales, alphas=ALPHAS * 1.0, device="cpu")
    # the penalty acts on X only, so scaling a target scales its fit and leaves R² unchanged
    np.testing.assert_allclose(a.r2, b.r2, atol=1e-9)
    np.testing.assert_array_equal(a.alpha, b.alpha)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_r2_invariant_to_rotation_without_standardize(seed):
    X, Y = _data(80, 6, 5, seed, noise=2.0)
    Q = ortho_group.rvs(6, random_state=seed)
    kw = {"alphas": ALPHAS, "standardize": False, "random_state": seed, "device": "cpu"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = ridge_alignment(X, Y, **kw)
        b = ridge_alignment(X @ Q, Y, **kw)
        c = ridge_alignment(X @ np.diag(np.arange(1.0, 7.0)), Y, **kw)
    np.testing.assert_allclose(a.r2, b.r2, atol=1e-9)
    # a non-orthogonal map changes the penalty's geometry, so the scores must move
    assert np.abs(a.r2 - c.r2).max() > 1e-6


def test_explicit_split_is_honoured():
    X, Y = _data(60, 5, 3, 7)
    test = np.arange(0, 60, 3)
    train = np.setdiff1d(np.arange(60), test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = ridge_alignment(X, Y, split=(train, test), alphas=ALPHAS, device="cpu")
        # changing the held-out rows' targets must change the scores, changing nothing else
        Y2 = Y.copy()
        Y2[test] += np.random.default_rng(0).standard_normal((test.size, 3))
        res2 = ridge_alignment(X, Y2, split=(train, test), alphas=ALPHAS, device="cpu")
    assert (res.n_train, res.n_test) == (40, 20)
    np.testing.assert_array_equal(res.alpha, res2.alpha)
    assert np.all(res.r2 != res2.r2)
    Xtr, Xte = _standardized(X, train, test)
    pred = Ridge(alpha=res.alpha[0]).fit(Xtr, Y[train, 0]).predict(Xte)
    r2 = 1 - ((Y[test, 0] - pred) ** 2).sum() / ((Y[test, 0] - Y[test, 0].mean()) ** 2).sum()
    assert res.r2[0] == pytest.approx(r2, abs=1e-9)


def test_constant_targets_counted_and_excluded():
    X, Y = _data(50, 4, 4, 8, noise=1.0)
    _, test = _split(50, 0.2, 0)
    Y[:, 1] = 2.5  # constant everywhere
    Y[test, 3] = 7.0  # varies in train, constant in test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = ridge_alignment(X, Y, alphas=ALPHAS, device="cpu")
    assert res.n_constant_targets == 2
    assert np.isnan(res.r2[[1, 3]]).all() and np.isfinite(res.r2[[0, 2]]).all()
    assert np.isnan(res.alpha[1]) and np.isfinite(res.alpha[3])
    assert res.score == pytest.approx(res.r2[[0, 2]].mean())


def test_weighted_score_is_variance_weighted_mean():
    X, Y = _data(60, 5, 4, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = ridge_alignment(X, Y, alphas=ALPHAS, device="cpu")
    _, test = _split(60, 0.2, 0)
    var = Y[test].var(0)
    assert isinstance(res, RidgeScores)
    assert res.weighted_score == pytest.approx((res.r2 * var).sum() / var.sum(), abs=1e-12)


def test_batches_give_the_same_result(monkeypatch):
    from repscope.alignment import _ridge_cv

    X, Y = _data(70, 8, 11, 10, noise=2.0)
    kw = {"alphas": ALPHAS, "device": "cpu"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        whole = ridge_alignment(X, Y, **kw)
        shared = ridge_alignment(X, Y, per_target=False, **kw)
        calls = []
        monkeypatch.setattr(_ridge_cv, "target_batch_size", lambda *a: calls.append(a) or 3)
        batched = ridge_alignment(X, Y, **kw)
        shared_b = ridge_alignment(X, Y, per_target=False, **kw)
    assert len(calls) == 2  # 11 targets ran in 4 batches of at most 3, twice
    np.testing.assert_array_equal(whole.alpha, batched.alpha)
    np.testing.assert_allclose(whole.r2, batched.r2, atol=1e-12)
    np.testing.assert_array_equal(shared.alpha, shared_b.alpha)
    np.testing.assert_allclose(shared.r2, shared_b.r2, atol=1e-12)


def test_edge_alpha_warning_fires_on_planted_case():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 5))
    Y = X @ rng.standard_normal((5, 4)) + 1e-3 * rng.standard_normal((100, 4))
    with pytest.warns(UserWarning, match="edge of the grid"):
        res = ridge_alignment(X, Y, alphas=np.logspace(1, 5, 5), device="cpu")
    assert res.alpha_at_edge_fraction == 1.0
    Y = rng.standard_normal((100, 4))  # pure noise: the largest penalty wins
    with pytest.warns(UserWarning, match="edge of the grid"):
        ridge_alignment(X, Y, alphas=np.logspace(-4, -2, 5), device="cpu")


def test_no_warning_inside_the_grid():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 20))
    Y = X @ (0.1 * rng.standard_normal((20, 5))) + rng.standard_normal((200, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        res = ridge_alignment(X, Y, device="cpu")
    assert res.alpha_at_edge_fraction == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"Y": np.ones((30, 2))[:29]}, r"X has 30 rows but Y has 29"),
        ({"X": np.full((30, 3), np.nan)}, r"X contains NaN or infinite"),
        ({"Y": np.zeros((30, 0))}, r"Y is empty"),
        ({"cv": 30}, r"n_train=24 rows, fewer than cv=30 folds"),
        ({"alphas": [1.0, -1.0]}, r"alphas must be finite and positive"),
        ({"alphas": []}, r"alphas must be a non-empty"),
        ({"split": (np.arange(10), np.arange(5, 15))}, r"share 5 rows"),
        ({"split": (np.arange(10), np.array([10, 40]))}, r"test indices must lie in \[0, 29\]"),
        ({"split": (np.arange(10), np.array([], dtype=int))}, r"test indices must be a non-empty"),
        ({"split": (np.array([0.5, 1.5]), np.arange(20, 25))}, r"train indices must be"),
        ({"test_size": 1.5}, r"test_size=1.5 must be in \(0, 1\)"),
    ],
)
def test_errors(kwargs, match):
    rng = np.random.default_rng(0)
    args = {"X": rng.standard_normal((30, 3)), "Y": rng.standard_normal((30, 2))}
    args.update(kwargs)
    X, Y = args.pop("X"), args.pop("Y")
    with pytest.raises(InputError, match=match):
        ridge_alignment(X, Y, device="cpu", **args)


def test_encoder_errors_and_clone():
    from sklearn.base import clone

    enc = RidgeEncoder(cv=3, device="cpu")
    assert clone(enc).get_params()["cv"] == 3
    with pytest.raises(InputError, match="not fitted"):
        enc.predict(np.ones((3, 2)))
    with pytest.raises(InputError, match=r"n_train=2 rows, fewer than cv=3"):
        enc.fit(np.eye(2), np.eye(2))
