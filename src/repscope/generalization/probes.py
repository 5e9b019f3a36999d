"""Measured generalization proxies: linear-probe and k-NN accuracy on a held-out split.

METHOD.md section 6: when a model's ImageNet top-1 is not available, its embedding of a
labelled stimulus set is probed. Both probes report train and test accuracy on one stratified,
seeded split, so their difference (the generalization gap) can be correlated across a zoo with
the geometric diagnostics. With the same ``test_size`` and integer ``random_state`` both probes
use the same split.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from repscope._validation import InputError, check_embedding, check_random_state
from repscope.generalization._split import (
    RandomState,
    Split,
    _check_labels,
    _check_test_size,
    _resolve_split,
    probe_split,
)

__all__ = ["ProbeResult", "knn_probe", "linear_probe", "probe_split"]

logger = logging.getLogger(__name__)

# scikit-learn's C multiplies the summed log-loss: the penalty per training row is
# ||w||^2 / (2 C n_train). On standardized features the grid runs from a strong penalty
# (C=1e-4: weights of order C * n_train) to a negligible one (C=1e4), the range of
# LogisticRegressionCV's default grid, one value per decade: a finer grid moves the chosen C by
# at most half a decade and costs cv more fits per value.
DEFAULT_CS = np.logspace(-4, 4, 9)


@dataclass(frozen=True)
class ProbeResult:
    """Train and held-out performance of one probe on one embedding.

    Attributes
    ----------
    kind : {"linear", "knn"}
        Which probe produced the result.
    train_accuracy, test_accuracy : float
        Fraction of correctly classified train (resubstitution) and test rows.
    train_loss, test_loss : float or None
        Mean cross-entropy in nats (linear probe); None for the k-NN probe.
    n_train, n_test, n_classes : int
        Rows in each split and classes seen in training.
    penalty : float or None
        Linear probe: the chosen ``C`` (inverse L2 strength, scikit-learn's convention, on
        standardized features). None for the k-NN probe.
    n_neighbors : int or None
        k-NN probe: K. None for the linear probe.
    train_index : ndarray of shape (n_train,), int64
        Row positions in ``X`` of the training split, ascending.
    test_index : ndarray of shape (n_test,), int64
        Row positions in ``X`` of the test split, ascending.
    coef : ndarray of shape (n_classes, n_features) or None
        Linear probe weights acting on the raw embedding (standardization folded in):
        ``softmax(X @ coef.T + intercept)`` gives the class probabilities, classes in sorted
        label order. None for the k-NN probe.
    intercept : ndarray of shape (n_classes,) or None
        Linear probe biases, in the same units as ``X @ coef.T``.
    """

    kind: str
    train_accuracy: float
    test_accuracy: float
    train_loss: float | None
    test_loss: float | None
    n_train: int
    n_test: int
    n_classes: int
    penalty: float | None
    n_neighbors: int | None
    train_index: np.ndarray
    test_index: np.ndarray
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None

    @property
    def gap_accuracy(self) -> float:
        """Generalization gap in accuracy: train minus test (fraction)."""
        return self.train_accuracy - self.test_accuracy

    @property
    def gap_loss(self) -> float | None:
        """Generalization gap in loss: test minus train cross-entropy (nats); None for k-NN."""
        if self.train_loss is None or self.test_loss is None:
            return None
        return self.test_loss - self.train_loss

    def to_dict(self) -> dict[str, Any]:
        """JSON-able scalars (no index arrays or weights), gaps included."""
        return {
            "kind": self.kind,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "gap_accuracy": self.gap_accuracy,
            "train_loss": self.train_loss,
            "test_loss": self.test_loss,
            "gap_loss": self.gap_loss,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_classes": self.n_classes,
            "penalty": self.penalty,
            "n_neighbors": self.n_neighbors,
        }


# --------------------------------------------------------------------------- inputs


def _prepare(
    X: Any, y: Any, split: Split | None, test_size: float, random_state: RandomState
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """Validated (X, codes, train_index, test_index, classes, rng).

    ``classes`` are the sorted labels of the train split and ``codes`` their positions
    (-1 on rows outside the split); ``rng`` has drawn the split, if any.
    """
    X64 = check_embedding(X, name="X", min_samples=2)
    labels = _check_labels(y, len(X64))
    fraction = _check_test_size(test_size)
    rng = check_random_state(random_state)
    if len(np.unique(labels)) < 2:
        raise InputError("y holds a single class; a probe needs at least 2 classes.")
    train, test = _resolve_split(labels, split, fraction, rng)
    classes = np.unique(labels[train])
    if len(classes) < 2:
        raise InputError("the train split holds a single class; a probe needs at least 2.")
    used = np.concatenate([train, test])
    codes = np.full(len(labels), -1, dtype=np.int64)
    codes[used] = np.searchsorted(classes, labels[used])
    return X64, codes, train, test, classes, rng


# --------------------------------------------------------------------------- k-NN probe


def _vote(neighbor_codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority class of each row; ties go to the smallest class, as scikit-learn's mode."""
    n_rows = neighbor_codes.shape[0]
    flat = (np.arange(n_rows)[:, None] * n_classes + neighbor_codes).ravel()
    counts = np.bincount(flat, minlength=n_rows * n_classes).reshape(n_rows, n_classes)
    return counts.argmax(axis=1)


def knn_probe(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    n_neighbors: int = 10,
    test_size: float = 0.2,
    split: Split | None = None,
    random_state: RandomState = 0,
) -> ProbeResult:
    """k-nearest-neighbour probe: majority vote of the K nearest training rows (Euclidean).

    Test rows vote among their K nearest training rows; training accuracy is resubstitution
    (each training row among all training rows, itself included), which equals
    ``KNeighborsClassifier(n_neighbors=K).fit(X_train, y_train).score(X_train, y_train)``.
    Ties in the vote go to the smallest label, as in scikit-learn; neighbours at exactly equal
    distance are ordered by row position (scikit-learn leaves that order unspecified).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embedding (NumPy array or torch tensor), one row per stimulus.
    y : array-like of shape (n_samples,)
        Class labels, integers or strings.
    n_neighbors : int
        K, at most the number of training rows.
    test_size : float
        Held-out fraction per class when ``split`` is None.
    split : (train_index, test_index), optional
        Row positions of a user-chosen split; overrides ``test_size``.
    random_state : int, numpy Generator or None
        Seed of the split.

    Returns
    -------
    ProbeResult
        ``kind="knn"``, losses, ``penalty``, ``coef`` and ``intercept`` None.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> X = rng.standard_normal((100, 3)) + 10 * y[:, None]
    >>> knn_probe(X, y, n_neighbors=5).test_accuracy
    1.0
    """
    from repscope.neighbors import knn

    X64, codes, train, test, classes, _ = _prepare(X, y, split, test_size, random_state)
    n_classes = len(classes)
    k = _check_n_neighbors(n_neighbors, len(train))
    X_train, y_train = X64[train], codes[train]
    test_pred = _vote(y_train[knn(X_train, k, queries=X64[test]).indices], n_classes)
    train_pred = _vote(y_train[knn(X_train, k, queries=X_train).indices], n_classes)
    return ProbeResult(
        kind="knn",
        train_accuracy=float(np.mean(train_pred == y_train)),
        test_accuracy=float(np.mean(test_pred == codes[test])),
        train_loss=None,
        test_loss=None,
        n_train=len(train),
        n_test=len(test),
        n_classes=n_classes,
        penalty=None,
        n_neighbors=k,
        train_index=train,
        test_index=test,
    )


def _check_n_neighbors(n_neighbors: object, n_train: int) -> int:
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, numbers.Integral):
        raise InputError(f"n_neighbors={n_neighbors!r} is not an integer; pass e.g. 10.")
    if not 1 <= n_neighbors <= n_train:
        raise InputError(
            f"n_neighbors={n_neighbors} must be between 1 and n_train={n_train} (training "
            f"rows); pass n_neighbors <= {n_train}."
        )
    return int(n_neighbors)


# --------------------------------------------------------------------------- linear probe


def linear_probe(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    test_size: float = 0.2,
    split: Split | None = None,
    Cs: npt.ArrayLike | None = None,
    cv: int = 5,
    standardize: bool = True,
    max_iter: int = 1000,
    random_state: RandomState = 0,
) -> ProbeResult:
    """Linear probe: L2-penalized multinomial logistic regression, C chosen by cross-validation.

    The features are standardized with the training split's mean and standard deviation
    (constant columns are only centred). ``C`` is chosen on the training split alone by
    stratified ``cv``-fold cross-validation, maximizing the mean held-out log-likelihood
    (ties go to the smaller C); each fold follows the C grid upwards, warm-starting every fit
    from the previous solution. The model is then refit on the whole training split with the
    chosen C (scikit-learn's ``LogisticRegression``, lbfgs) and scored on both splits.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embedding (NumPy array or torch tensor), one row per stimulus.
    y : array-like of shape (n_samples,)
        Class labels, integers or strings; every class needs 2 training rows.
    test_size : float
        Held-out fraction per class when ``split`` is None.
    split : (train_index, test_index), optional
        Row positions of a user-chosen split; overrides ``test_size``.
    Cs : array-like of positive floats, optional
        Inverse L2 strengths tried (on standardized features); default ``DEFAULT_CS``,
        ``np.logspace(-4, 4, 9)``.
    cv : int
        Number of cross-validation folds, at least 2.
    standardize : bool
        Standardize features with training statistics before fitting. ``coef`` and
        ``intercept`` are reported on the raw embedding either way.
    max_iter : int
        lbfgs iterations per fit. Fits that stop at it are reported in one
        ``ConvergenceWarning`` when the chosen C is among them.
    random_state : int, numpy Generator or None
        Seed of the split and of the cross-validation folds.

    Returns
    -------
    ProbeResult
        ``kind="linear"``, ``penalty`` the chosen C, losses mean cross-entropy in nats.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["cat", "dog"], 50)
    >>> X = rng.standard_normal((100, 3)) + 6 * (y == "dog")[:, None]
    >>> res = linear_probe(X, y, Cs=[0.01, 1.0], cv=3)
    >>> res.test_accuracy, res.coef.shape
    (1.0, (2, 3))
    """
    from threadpoolctl import threadpool_limits

    X64, codes, train, test, classes, rng = _prepare(X, y, split, test_size, random_state)
    grid = _check_cs(Cs)
    n_folds = _check_cv(cv, codes[train], classes)
    iters = _check_max_iter(max_iter)
    mean, scale = _standardizer(X64[train], standardize)
    Z_train, Z_test = (X64[train] - mean) / scale, (X64[test] - mean) / scale
    # the folds continue the generator that drew the split: one seed fixes both
    folds = _stratified_folds(codes[train], n_folds, rng)
    # one BLAS/OpenMP thread: each lbfgs step is a thin GEMM plus an OpenMP loss loop, whose
    # two thread pools spin against each other (measured 10-25x slower on 2 busy cores), and
    # single-threaded sums make the chosen C independent of the machine's core count
    with threadpool_limits(limits=1):
        scores, unconverged = _cv_path(Z_train, codes[train], folds, grid, iters, len(classes))
        best = int(np.argmax(scores))
        model, final_ok = _fit(Z_train, codes[train], grid[best], iters)
        result = _linear_result(model, Z_train, Z_test, codes, train, test, grid[best], mean, scale)
    _report_convergence(unconverged, best, final_ok, grid, iters)
    return result


def _check_cs(Cs: npt.ArrayLike | None) -> np.ndarray:
    if Cs is None:
        return DEFAULT_CS.copy()
    try:
        grid = np.atleast_1d(np.asarray(Cs, dtype=np.float64))
    except (TypeError, ValueError):
        grid = np.array([np.nan])
    if grid.ndim != 1 or grid.size == 0 or not (np.isfinite(grid) & (grid > 0)).all():
        raise InputError(
            f"Cs={Cs!r} must be a non-empty list of positive finite floats; pass e.g. "
            "np.logspace(-4, 4, 9)."
        )
    return np.unique(grid)  # ascending: the warm-started path runs from strong to weak penalty


def _check_cv(cv: object, train_codes: np.ndarray, classes: np.ndarray) -> int:
    if isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2:
        raise InputError(f"cv={cv!r} must be an integer >= 2 (number of folds); pass e.g. 5.")
    if cv > len(train_codes):
        raise InputError(
            f"cv={cv} exceeds the {len(train_codes)} training rows; pass cv <= {len(train_codes)}."
        )
    counts = np.bincount(train_codes, minlength=len(classes))
    if counts.min() < 2:
        small = classes[counts.argmin()].item()
        raise InputError(
            f"class {small!r} has 1 training row; the linear probe needs at least 2 per class "
            "(every fold must train on every class); add rows or drop that class."
        )
    return int(cv)


def _check_max_iter(max_iter: object) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise InputError(f"max_iter={max_iter!r} must be a positive integer; pass e.g. 1000.")
    return int(max_iter)


def _standardizer(X_train: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Training mean and scale per column; constant columns centred on their value, scale 1."""
    if not standardize:
        zeros = np.zeros(X_train.shape[1])
        return zeros, np.ones_like(zeros)
    mean = X_train.mean(axis=0)
    scale = X_train.std(axis=0)
    # exact test: a constant column's std may come out ~1e-17 from rounding in the mean
    constant = np.ptp(X_train, axis=0) == 0
    mean[constant] = X_train[0, constant]
    scale[constant] = 1.0
    return mean, scale


def _stratified_folds(
    codes: np.ndarray, n_folds: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) positions of ``n_folds`` stratified folds, seeded.

    Rows are shuffled, grouped by class and dealt round-robin to the folds across the class
    boundaries, so fold sizes differ by at most one and each class is spread evenly.
    """
    order = rng.permutation(len(codes))
    order = order[np.argsort(codes[order], kind="stable")]
    fold_of = np.empty(len(codes), dtype=np.int64)
    fold_of[order] = np.arange(len(codes)) % n_folds
    rows = np.arange(len(codes))
    return [(rows[fold_of != f], rows[fold_of == f]) for f in range(n_folds)]


def _model(C: float, max_iter: int, warm_start: bool) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter, warm_start=warm_start, solver="lbfgs")


def _fit(Z: np.ndarray, codes: np.ndarray, C: float, max_iter: int) -> tuple[Any, bool]:
    """LogisticRegression fitted from zero; also whether lbfgs converged before max_iter."""
    from sklearn.exceptions import ConvergenceWarning

    model = _model(C, max_iter, warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Z, codes)
    return model, int(np.max(model.n_iter_)) < max_iter


def _cv_path(
    Z: np.ndarray,
    codes: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    grid: np.ndarray,
    max_iter: int,
    n_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean held-out log-likelihood per C, and how many folds stopped at max_iter per C."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import log_loss

    scores = np.zeros(len(grid))
    unconverged = np.zeros(len(grid), dtype=np.int64)
    labels = np.arange(n_classes)
    for fit_rows, val_rows in folds:
        model = _model(grid[0], max_iter, warm_start=True)
        for j, C in enumerate(grid):
            model.set_params(C=C)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(Z[fit_rows], codes[fit_rows])
            unconverged[j] += int(np.max(model.n_iter_)) >= max_iter
            proba = model.predict_proba(Z[val_rows])
            scores[j] -= log_loss(codes[val_rows], proba, labels=labels) / len(folds)
    return scores, unconverged


def _report_convergence(
    unconverged: np.ndarray, best: int, final_ok: bool, grid: np.ndarray, max_iter: int
) -> None:
    """One warning when the chosen C's fits stopped early; other Cs only logged."""
    from sklearn.exceptions import ConvergenceWarning

    if unconverged.any():
        logger.info(
            "linear_probe: cross-validation fits stopped at max_iter=%d for C in %s",
            max_iter,
            grid[unconverged > 0].tolist(),
        )
    if not final_ok or unconverged[best]:
        warnings.warn(
            f"linear_probe: lbfgs stopped at max_iter={max_iter} before converging at the "
            f"chosen C={grid[best]:g} ({unconverged[best]} cross-validation folds, final fit "
            f"{'converged' if final_ok else 'did not converge'}); losses may be slightly high: "
            "pass a larger max_iter or Cs without the largest values.",
            ConvergenceWarning,
            stacklevel=3,
        )


def _raw_units(model: Any, mean: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights acting on the raw embedding: softmax(X @ coef.T + intercept) = predict_proba.

    A binary scikit-learn model holds one vector ``w`` (logit of class 1); it is written as the
    symmetric pair ``(-w/2, w/2)``, whose softmax is the same sigmoid.
    """
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    raw = coef / scale
    return raw, intercept - raw @ mean


def _linear_result(
    model: Any,
    Z_train: np.ndarray,
    Z_test: np.ndarray,
    codes: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    C: float,
    mean: np.ndarray,
    scale: np.ndarray,
) -> ProbeResult:
    from sklearn.metrics import log_loss

    coef, intercept = _raw_units(model, mean, scale)
    labels = np.arange(coef.shape[0])
    y_train, y_test = codes[train], codes[test]
    return ProbeResult(
        kind="linear",
        train_accuracy=float(np.mean(model.predict(Z_train) == y_train)),
        test_accuracy=float(np.mean(model.predict(Z_test) == y_test)),
        train_loss=float(log_loss(y_train, model.predict_proba(Z_train), labels=labels)),
        test_loss=float(log_loss(y_test, model.predict_proba(Z_test), labels=labels)),
        n_train=len(train),
        n_test=len(test),
        n_classes=len(labels),
        penalty=float(C),
        n_neighbors=None,
        train_index=train,
        test_index=test,
        coef=coef,
        intercept=intercept,
    )
