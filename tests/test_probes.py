"""Linear and k-NN probes: scikit-learn oracles, known answers, the split, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import binom
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import log_loss
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from repscope._validation import InputError
from repscope.generalization.probes import (
    DEFAULT_CS,
    _stratified_folds,
    knn_probe,
    linear_probe,
    probe_split,
)


def _blobs(seed: int, n: int = 240, d: int = 6, n_classes: int = 3, sep: float = 1.0):
    """Overlapping Gaussian classes: continuous data, so no exact distance ties."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centers = sep * rng.standard_normal((n_classes, d))
    return centers[y] + rng.standard_normal((n, d)), y


def _standardized(X: np.ndarray, train: np.ndarray, test: np.ndarray):
    """Train-statistics standardization, computed as the probe documents it."""
    mean, std = X[train].mean(0), X[train].std(0)
    return (X[train] - mean) / std, (X[test] - mean) / std


# --------------------------------------------------------------------------- k-NN oracle


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 4, 7, 20])
def test_knn_probe_equals_sklearn(seed: int, k: int) -> None:
    # exact equality: same neighbours (no distance ties in continuous data), same vote rule;
    # even K with 3 overlapping classes produces vote ties, which both send to the smallest label
    X, y = _blobs(seed)
    res = knn_probe(X, y, n_neighbors=k, random_state=seed)
    train, test = probe_split(y, random_state=seed)
    assert np.array_equal(res.train_index, train) and np.array_equal(res.test_index, test)
    clf = KNeighborsClassifier(n_neighbors=k).fit(X[train], y[train])
    assert res.test_accuracy == clf.score(X[test], y[test])
    assert res.train_accuracy == clf.score(X[train], y[train])
    assert (res.n_neighbors, res.kind, res.train_loss, res.coef) == (k, "knn", None, None)


def test_knn_vote_tie_goes_to_smallest_label_like_sklearn() -> None:
    # every query has one neighbour of each class at K=2: a tie, resolved to the smaller label
    X = np.array([[0.0], [1.0], [10.0], [11.0], [0.4], [10.4]])
    y = np.array(["b", "a", "b", "a", "a", "b"])
    split = (np.arange(4), np.array([4, 5]))
    res = knn_probe(X, y, n_neighbors=2, split=split)
    clf = KNeighborsClassifier(n_neighbors=2).fit(X[:4], y[:4])
    assert clf.predict(X[4:]).tolist() == ["a", "a"]
    assert res.test_accuracy == clf.score(X[4:], y[4:]) == 0.5


# --------------------------------------------------------------------------- linear oracle


@pytest.mark.parametrize(("seed", "n_classes"), [(0, 3), (1, 2), (2, 4)])
def test_linear_probe_matches_sklearn(seed: int, n_classes: int) -> None:
    X, y = _blobs(seed, n=300, d=8, n_classes=n_classes, sep=0.8)
    res = linear_probe(X, y, cv=4, random_state=seed)
    # the probe draws the split, then the folds, from one generator seeded with random_state
    rng = np.random.default_rng(seed)
    train, test = probe_split(y, random_state=rng)
    folds = _stratified_folds(y[train], 4, rng)
    Z_train, Z_test = _standardized(X, train, test)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", FutureWarning)  # LogisticRegressionCV's API transition
        oracle = LogisticRegressionCV(
            Cs=DEFAULT_CS, cv=folds, scoring="neg_log_loss", max_iter=1000
        ).fit(Z_train, y[train])
        model = LogisticRegression(C=res.penalty, max_iter=1000).fit(Z_train, y[train])
    assert res.penalty == float(np.ravel(oracle.C_)[0])
    # raw-unit weights reproduce predict_proba up to rounding in the folded products (1e-10)
    proba_test = model.predict_proba(Z_test)
    np.testing.assert_allclose(
        softmax(X[test] @ res.coef.T + res.intercept, axis=1), proba_test, rtol=0, atol=1e-10
    )
    assert res.coef.shape == (n_classes, 8) and res.intercept.shape == (n_classes,)
    # same fit, same data, one thread: accuracies equal exactly, losses to float rounding
    assert res.test_accuracy == model.score(Z_test, y[test])
    assert res.train_accuracy == model.score(Z_train, y[train])
    labels = np.arange(n_classes)
    assert res.test_loss == pytest.approx(log_loss(y[test], proba_test, labels=labels), rel=1e-12)
    train_loss = log_loss(y[train], model.predict_proba(Z_train), labels=labels)
    assert res.train_loss == pytest.approx(train_loss, rel=1e-12)


def test_linear_probe_raw_units_with_constant_column_and_no_standardization() -> None:
    X, y = _blobs(3, n=200, d=5, sep=1.5)
    X[:, 2] = 7.25  # zero variance: centred only, never divided by 0
    X = X * np.array([1e-3, 1.0, 1.0, 50.0, 1.0])
    for standardize in (True, False):
        res = linear_probe(X, y, Cs=[0.1, 10.0], cv=3, standardize=standardize)
        assert np.isfinite(res.coef).all() and np.isfinite(res.intercept).all()
        proba = softmax(X[res.test_index] @ res.coef.T + res.intercept, axis=1)
        assert np.isfinite(proba).all()
        # losses are computed from the same probabilities (1e-10: rounding of the folding)
        loss = log_loss(y[res.test_index], proba, labels=np.arange(3))
        assert res.test_loss == pytest.approx(loss, abs=1e-10)
    assert res.coef[:, 2].tolist() == [0.0, 0.0, 0.0] or standardize is False


def test_linear_probe_string_labels_binary_and_torch() -> None:
    torch = pytest.importorskip("torch")
    X, y = _blobs(4, n=160, d=4, n_classes=2, sep=1.0)
    names = np.array(["zebra", "ant"])[y]  # sorted classes: ant=0, zebra=1
    res = linear_probe(torch.as_tensor(X), names, Cs=[1.0], cv=3)
    ref = linear_probe(X, 1 - y, Cs=[1.0], cv=3)
    assert res.test_accuracy == ref.test_accuracy
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-12, atol=0)
    assert res.coef.shape == (2, 4) and res.n_classes == 2


# --------------------------------------------------------------------------- known answers


def test_separated_classes_are_classified_perfectly() -> None:
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(4), 50)
    X = rng.standard_normal((200, 5)) + 10.0 * np.eye(4, 5)[y]  # centres 14 sd apart
    for res in (linear_probe(X, y), knn_probe(X, y, n_neighbors=5)):
        assert res.test_accuracy == 1.0 and res.train_accuracy == 1.0


@pytest.mark.parametrize("probe", ["linear", "knn"])
def test_random_labels_give_chance_accuracy(probe: str) -> None:
    # labels independent of X: test hits ~ Binomial(n_test, 1/C); accept its central 99.99 %
    rng = np.random.default_rng(6)
    n_classes = 4
    X, y = rng.standard_normal((1000, 10)), rng.integers(0, n_classes, 1000)
    if probe == "linear":
        res = linear_probe(X, y, Cs=[1e-2, 1.0, 1e2], cv=3)
    else:
        res = knn_probe(X, y, n_neighbors=15)
    lo, hi = binom.interval(0.9999, res.n_test, 1 / n_classes)
    assert lo <= res.test_accuracy * res.n_test <= hi


def test_gap_large_when_memorizing_random_labels() -> None:
    # n_features close to n_train and a weak penalty: random labels are memorized (train ~1),
    # test stays at chance (~0.25), so the gap is > 0.5; separable data generalize (gap ~0)
    rng = np.random.default_rng(7)
    y_rand = rng.integers(0, 4, 200)
    noise = linear_probe(rng.standard_normal((200, 150)), y_rand, Cs=[1e3], cv=3)
    y_sep = np.repeat(np.arange(4), 50)
    X_sep = rng.standard_normal((200, 150)) + 30.0 * np.eye(4, 150)[y_sep]
    clean = linear_probe(X_sep, y_sep, Cs=[1e3], cv=3)
    assert noise.gap_accuracy > 0.5 > 0.05 > clean.gap_accuracy
    assert noise.gap_loss > clean.gap_loss + 1.0
    # 1-NN resubstitution finds each point itself: train accuracy 1, the same memorization
    one_nn = knn_probe(rng.standard_normal((200, 150)), y_rand, n_neighbors=1)
    assert one_nn.train_accuracy == 1.0 and one_nn.gap_accuracy > 0.5


def test_default_grid_protects_against_memorization() -> None:
    # cross-validated C on random labels picks a strong penalty: much smaller gap than C=1e3
    rng = np.random.default_rng(7)
    res = linear_probe(rng.standard_normal((200, 150)), rng.integers(0, 4, 200), cv=3)
    assert res.penalty <= 1e-2


def test_result_to_dict_is_json_and_probes_share_the_split() -> None:
    X, y = _blobs(8)
    lin, nn = linear_probe(X, y, Cs=[1.0], cv=3), knn_probe(X, y)
    assert np.array_equal(lin.test_index, nn.test_index)
    for res in (lin, nn):
        out = json.loads(json.dumps(res.to_dict()))
        assert out["gap_accuracy"] == pytest.approx(res.train_accuracy - res.test_accuracy)
        assert "train_index" not in out and "coef" not in out
    assert nn.to_dict()["gap_loss"] is None and lin.penalty == 1.0


# --------------------------------------------------------------------------- the split


def test_probe_split_stratified_seeded_disjoint_covering() -> None:
    y = np.repeat(["a", "b", "c"], [50, 30, 7])
    train, test = probe_split(y, test_size=0.2, random_state=3)
    assert train.dtype == test.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.union1d(train, test), np.arange(len(y)))
    # each class sends round(0.2 * m) rows to test: 10, 6, 1 (1.4 rounds to 1)
    assert [int(np.sum(y[test] == c)) for c in "abc"] == [10, 6, 1]
    again = probe_split(y, test_size=0.2, random_state=3)
    assert np.array_equal(again[1], test)
    assert not np.array_equal(probe_split(y, test_size=0.2, random_state=4)[1], test)
    gen = np.random.default_rng(3)
    assert np.array_equal(probe_split(y, random_state=gen)[1], test)


def test_probe_split_keeps_every_class_on_both_sides() -> None:
    y = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    for test_size in (0.05, 0.95):
        train, test = probe_split(y, test_size=test_size, random_state=0)
        assert set(y[train]) == set(y[test]) == {0, 1}


# --------------------------------------------------------------------------- bad input


def _bad_cases():
    X = np.random.default_rng(9).standard_normal((60, 3))
    y = np.repeat(np.arange(3), 20)  # 4 test rows per class: n_train = 48
    X_nan = X.copy()
    X_nan[4, 1] = np.nan
    y_small = y.copy()
    y_small[0] = 99
    return [
        (lambda: knn_probe(X_nan, y), "NaN or infinite"),
        (lambda: linear_probe(np.full((60, 2), np.inf), y), "NaN or infinite"),
        (lambda: knn_probe(X[:, 0], y), "must be 2-D"),
        (lambda: knn_probe(X, y[:-1]), "59 labels but X has 60 rows"),
        (lambda: linear_probe(X, np.zeros(60, dtype=int)), "single class"),
        (lambda: knn_probe(X, y_small), "class 99 has 1 member"),
        (lambda: probe_split(np.r_[y.astype(float)[:-1], np.nan]), "NaN or infinite labels"),
        (lambda: knn_probe(X, np.array([None, *y[1:]], dtype=object)), "missing labels"),
        (lambda: knn_probe(X, y + 0.5), "non-integer float"),
        (lambda: knn_probe(X, y[:, None]), "y must be 1-D"),
        (lambda: probe_split(y, test_size=1.0), "strictly between 0 and 1"),
        (lambda: knn_probe(X, y, test_size=0), "strictly between 0 and 1"),
        (lambda: linear_probe(X, y, cv=1), "cv=1 must be an integer >= 2"),
        (lambda: linear_probe(X, y, cv=2.5), "must be an integer >= 2"),
        (lambda: linear_probe(X, y, Cs=[1.0, -1.0]), "positive finite"),
        (lambda: linear_probe(X, y, Cs="big"), "positive finite"),
        (lambda: linear_probe(X, y, max_iter=0), "max_iter=0"),
        (lambda: knn_probe(X, y, n_neighbors=0), "between 1 and n_train=48"),
        (lambda: knn_probe(X, y, n_neighbors=49), "pass n_neighbors <= 48"),
        (lambda: knn_probe(X, y, n_neighbors=2.0), "not an integer"),
        (lambda: knn_probe(X, y, split=([0, 1, 2], [2, 3])), "overlap"),
        (lambda: knn_probe(X, y, split=([0, 1, 60], [3])), "outside 0..59"),
        (lambda: knn_probe(X, y, split=([], [3])), "non-empty 1-D integer"),
        (lambda: knn_probe(X, y, split=(np.flatnonzero(y != 0), [np.argmax(y == 0)])), "never"),
        (lambda: knn_probe(X, y, split=np.arange(10)), "pair"),
        (lambda: linear_probe(X, y, random_state="x"), "random_state"),
    ]


@pytest.mark.parametrize("case", range(26))
def test_bad_input_raises_one_line(case: int) -> None:
    call, match = _bad_cases()[case]
    with pytest.raises(InputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_linear_probe_needs_two_training_rows_per_class() -> None:
    X, y = _blobs(10, n=60, d=3)
    y[:3] = 7  # class 7: 3 rows; put two of them in test, one in train
    split = (np.arange(2, 60), np.array([0, 1]))
    with pytest.raises(InputError, match="class 7 has 1 training row"):
        linear_probe(X, y, split=split, cv=2)
    with pytest.raises(InputError, match="cv=59 exceeds the 58 training rows"):
        linear_probe(X, y, split=split, cv=59)


def test_non_convergence_gives_one_clear_warning() -> None:
    from sklearn.exceptions import ConvergenceWarning

    X, y = _blobs(11, n=200, d=6, sep=1.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = linear_probe(X, y, Cs=[0.1, 1.0, 10.0], cv=3, max_iter=2)
    assert len(caught) == 1 and caught[0].category is ConvergenceWarning
    assert f"max_iter=2 before converging at the chosen C={res.penalty:g}" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged fits: no warning at all
        linear_probe(X, y, Cs=[0.1, 1.0, 10.0], cv=3)
