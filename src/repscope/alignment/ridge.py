"""Ridge encoding alignment: predict targets Y from an embedding X, score held-out R².

The paper's alignment measure (METHOD.md §5). The penalty is chosen per target (or shared) by
K-fold cross-validation on the train split; the folds are
``sklearn.model_selection.KFold(n_splits=cv, shuffle=True, random_state=seed)`` over the train
rows in their order, where ``seed`` is ``random_state`` when it is an int. The criterion is the
validation sum of squared errors summed over folds, which equals himalaya's mean-over-folds MSE
when the folds have equal sizes. See :mod:`repscope.alignment._ridge_cv` for the kernel.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator

from repscope import _memory
from repscope._backend import Device, resolve_device, to_numpy, to_tensor
from repscope._validation import InputError, check_embedding, check_random_state
from repscope.alignment._ridge_cv import constant_columns, fit_batches, target_batch_size

__all__ = ["RidgeEncoder", "RidgeScores", "ridge_alignment"]

DEFAULT_ALPHAS = np.logspace(-2, 6, 20)
_EDGE_WARN_FRACTION = 0.1


@dataclass(frozen=True)
class RidgeScores:
    """Held-out scores of a cross-validated ridge encoding model.

    Attributes
    ----------
    score : float
        Mean test R² over targets that vary in both train and test rows.
    r2 : ndarray of shape (n_targets,)
        Test R² = 1 - SS_res / SS_tot (around the test mean); NaN for constant targets.
    pearson_r : ndarray of shape (n_targets,)
        Pearson correlation of predictions and test targets; NaN for constant targets.
    alpha : ndarray of shape (n_targets,)
        Chosen penalty; NaN for targets constant on the train rows.
    n_train, n_test : int
        Rows in the train and test splits.
    weighted_score : float
        Variance-weighted mean R², ``1 - Σ SS_res / Σ SS_tot`` over non-constant targets.
    n_constant_targets : int
        Targets with zero variance in the train or test rows (excluded from the means).
    alpha_at_edge_fraction : float
        Share of non-constant targets whose penalty is the smallest or largest in the grid.
    """

    score: float
    r2: np.ndarray
    pearson_r: np.ndarray
    alpha: np.ndarray
    n_train: int
    n_test: int
    weighted_score: float
    n_constant_targets: int
    alpha_at_edge_fraction: float


def _check_alphas(alphas: npt.ArrayLike) -> np.ndarray:
    a = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if a.ndim != 1 or a.size == 0:
        raise InputError("alphas must be a non-empty 1-D array; pass e.g. np.logspace(-2, 6, 20).")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise InputError(
            f"alphas must be finite and positive, got min {a.min()!r}; "
            "pass a positive grid such as np.logspace(-2, 6, 20)."
        )
    return a


def _check_cv(cv: Any, n_train: int) -> int:
    if not isinstance(cv, numbers.Integral) or isinstance(cv, bool) or cv < 2:
        raise InputError(f"cv={cv!r} must be an integer >= 2; pass e.g. cv=5.")
    if n_train < cv:
        raise InputError(
            f"the train split has n_train={n_train} rows, fewer than cv={cv} folds; "
            f"pass cv <= {n_train} or more rows."
        )
    return int(cv)


def _check_xy(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = check_embedding(X, name="X")
    Y = check_embedding(Y, name="Y")
    if X.shape[0] != Y.shape[0]:
        raise InputError(
            f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; pass the same stimuli in both."
        )
    return X, Y


def _preflight(X: Any, Y: Any, split: Any, *, cv: Any, alphas: Any, device: Device) -> None:
    """Refuse, before the float64 copies, a fit whose estimated peak exceeds free memory.

    ``split`` is ``(test_size, split)`` of :func:`ridge_alignment`, None for a fit on all
    rows. Inputs the validation would reject are left to it.
    """
    x_shape, y_shape = _memory.array_shape(X), _memory.array_shape(Y)
    if x_shape is None or y_shape is None or x_shape[0] != y_shape[0]:
        return
    if not isinstance(cv, numbers.Integral) or isinstance(cv, bool) or cv < 2:
        return
    n, p, x_dtype = x_shape
    t = y_shape[1]
    n_test = 0 if split is None else _n_test(n, *split)
    n_alphas = int(np.size(alphas))
    dev = resolve_device(device)
    n_test = min(max(n_test, 0), n - 1)
    n_basis = min(p, n - n_test)
    batch = target_batch_size(n - n_test, n_basis, int(cv), n_alphas, dev)
    sizes = {"cv": int(cv), "n_alphas": n_alphas, "n_test": n_test, "batch_targets": batch}
    need = _memory.ridge_bytes(
        n,
        p,
        t,
        x_itemsize=8 if x_dtype == np.float64 else 4,
        y_itemsize=8 if y_shape[2] == np.float64 else 4,
        **sizes,
    )
    what = f"ridge: {_memory.describe((n, p), x_dtype)} to {t} targets"
    fix = (
        "reduce X's features (e.g. PCA to 300 components), fit fewer targets per call "
        "(columns of Y), or subsample the rows."
    )
    _memory.check_memory(what, need, "cpu", fix)
    if dev.type != "cpu":
        _memory.check_memory(what, _memory.ridge_device_bytes(n, p, t, **sizes), dev, fix)


def _n_test(n: int, test_size: Any, split: Any) -> int:
    """Test rows of the split to be made (an estimate for the preflight; 0 if unknown)."""
    if split is not None:
        try:
            return int(np.size(split[1]))
        except (TypeError, IndexError):
            return 0
    try:
        return int(np.ceil(float(test_size) * n))
    except (TypeError, ValueError):
        return 0


def _seed(rng: np.random.Generator, random_state: Any) -> int:
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(rng.integers(2**31 - 1))


def _standardize(X: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Train mean and scale (scale 1 for constant columns or when not standardizing)."""
    mean = X.mean(0)
    scale = X.std(0) if standardize else np.ones(X.shape[1])
    return mean, np.where(scale > 0, scale, 1.0)


def _edge_fraction(alpha: np.ndarray, alphas: np.ndarray) -> float:
    chosen = alpha[np.isfinite(alpha)]
    if chosen.size == 0 or alphas.size < 3:
        return 0.0
    return float(np.mean((chosen == alphas.min()) | (chosen == alphas.max())))


def _warn_edge(fraction: float, alphas: np.ndarray) -> None:
    if fraction > _EDGE_WARN_FRACTION:
        warnings.warn(
            f"the chosen alpha is at an edge of the grid [{alphas.min():g}, {alphas.max():g}] "
            f"for {fraction:.0%} of targets; widen alphas.",
            UserWarning,
            stacklevel=3,
        )


def _resolve_split(
    n: int, test_size: float, split: Any, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if split is None:
        if not 0.0 < test_size < 1.0:
            raise InputError(f"test_size={test_size!r} must be in (0, 1); pass e.g. 0.2.")
        n_test = int(np.ceil(test_size * n))
        if n_test < 2 or n - n_test < 2:
            raise InputError(
                f"test_size={test_size} leaves {n_test} test and {n - n_test} train rows of "
                f"{n}; both need at least 2, pass more rows or another test_size."
            )
        perm = rng.permutation(n)
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])
    try:
        train, test = (np.asarray(s) for s in split)
    except (TypeError, ValueError):
        raise InputError(
            "split must be a pair (train_idx, test_idx) of integer arrays; pass split=(tr, te)."
        ) from None
    for name, idx in (("train", train), ("test", test)):
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise InputError(
                f"split {name} indices must be a non-empty 1-D integer array, got shape "
                f"{idx.shape} dtype {idx.dtype}; pass integer row indices."
            )
        if idx.min() < 0 or idx.max() >= n:
            raise InputError(
                f"split {name} indices must lie in [0, {n - 1}], got [{idx.min()}, {idx.max()}]; "
                "pass valid row indices."
            )
        if np.unique(idx).size != idx.size:
            raise InputError(f"split {name} indices contain duplicates; pass each row once.")
    overlap = np.intersect1d(train, test).size
    if overlap:
        raise InputError(
            f"split train and test indices share {overlap} rows; pass disjoint index arrays."
        )
    if test.size < 2:
        raise InputError("split test indices hold 1 row; R² needs at least 2 test rows.")
    return train.astype(np.intp), test.astype(np.intp)


def ridge_alignment(
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    *,
    test_size: float = 0.2,
    split: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    alphas: npt.ArrayLike = DEFAULT_ALPHAS,
    cv: int = 5,
    per_target: bool = True,
    standardize: bool = True,
    random_state: int | np.random.Generator | None = 0,
    device: Device = "auto",
) -> RidgeScores:
    """Held-out R² of a ridge encoding model predicting ``Y`` from ``X``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Source embedding (rows are stimuli).
    Y : array-like of shape (n_samples, n_targets)
        Targets: a reference model's principal components or fMRI voxels.
    test_size : float
        Fraction of rows held out (rounded up) when ``split`` is None.
    split : (train_idx, test_idx), optional
        Explicit disjoint integer row indices, e.g. NSD's shared 1000 images as test.
    alphas : array-like of shape (n_alphas,)
        Positive penalty grid.
    cv : int
        Folds of the seeded ``KFold(shuffle=True)`` over the train rows.
    per_target : bool
        Choose a penalty per target (default) or one penalty minimizing the total error.
    standardize : bool
        Standardize X columns with train-split mean and standard deviation (ddof=0).
    random_state : int, Generator or None
        Seeds the train/test split and the folds.
    device : {"auto", "cpu", "cuda"}
        Where the float64 products run.

    Returns
    -------
    RidgeScores

    Warns
    -----
    UserWarning
        When the chosen penalty is at an edge of the grid for more than 10 % of targets.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 50))
    >>> Y = X @ (0.2 * rng.standard_normal((50, 3))) + rng.standard_normal((200, 3))
    >>> res = ridge_alignment(X, Y, device="cpu")
    >>> round(res.score, 2), res.n_train, res.n_test
    (0.57, 160, 40)
    """
    _preflight(X, Y, (test_size, split), cv=cv, alphas=alphas, device=device)
    X, Y = _check_xy(X, Y)
    alphas = _check_alphas(alphas)
    rng = check_random_state(random_state)
    train, test = _resolve_split(X.shape[0], test_size, split, rng)
    cv = _check_cv(cv, train.size)
    dev = resolve_device(device)
    mean, scale = _standardize(X[train], standardize)
    Xtr = (X[train] - mean) / scale
    Xte = (X[test] - mean) / scale
    n_targets = Y.shape[1]
    r2 = np.full(n_targets, np.nan)
    pr = np.full(n_targets, np.nan)
    alpha = np.full(n_targets, np.nan)
    ss_res = np.zeros(n_targets)
    ss_tot = np.zeros(n_targets)
    const = np.zeros(n_targets, dtype=bool)
    Xte_t = None
    for b, alpha_b, coef, ybar in fit_batches(
        Xtr,
        Y,
        train,
        alphas=alphas,
        cv=cv,
        seed=_seed(rng, random_state),
        per_target=per_target,
        device=dev,
    ):
        if Xte_t is None:
            Xte_t = to_tensor(Xte - Xtr.mean(0), dev, coef.dtype)
        pred = to_numpy(Xte_t @ coef + ybar)
        yt = Y[test, b]
        res = yt - pred
        dev_y = yt - yt.mean(0)
        dev_p = pred - pred.mean(0)
        ss_res[b] = (res * res).sum(0)
        ss_tot[b] = (dev_y * dev_y).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r2[b] = 1.0 - ss_res[b] / ss_tot[b]
            pr[b] = (dev_y * dev_p).sum(0) / np.sqrt(ss_tot[b] * (dev_p * dev_p).sum(0))
        alpha[b] = alpha_b
        # alpha is NaN exactly for targets constant on the train rows
        const[b] = np.isnan(alpha_b) | constant_columns(yt)
    r2[const] = np.nan
    pr[const] = np.nan
    keep = ~const
    edge = _edge_fraction(alpha[keep], alphas)
    _warn_edge(edge, alphas)
    score = float(r2[keep].mean()) if keep.any() else float("nan")
    weighted = float(1.0 - ss_res[keep].sum() / ss_tot[keep].sum()) if keep.any() else np.nan
    return RidgeScores(
        score=score,
        r2=r2,
        pearson_r=pr,
        alpha=alpha,
        n_train=int(train.size),
        n_test=int(test.size),
        weighted_score=float(weighted),
        n_constant_targets=int(const.sum()),
        alpha_at_edge_fraction=edge,
    )


class RidgeEncoder(BaseEstimator):
    """Ridge regression with a cross-validated penalty per target (scikit-learn estimator).

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,)
        Positive penalty grid.
    cv : int
        Folds of ``KFold(n_splits=cv, shuffle=True, random_state=seed)`` over the rows.
    per_target : bool
        One penalty per target (default) or one shared penalty.
    standardize : bool
        Standardize X columns before the fit; coefficients are reported in input units.
    random_state : int, Generator or None
        Seeds the folds.
    device : {"auto", "cpu", "cuda"}

    Attributes
    ----------
    alpha_ : ndarray of shape (n_targets,)
        Chosen penalties (NaN for constant targets).
    coef_ : ndarray of shape (n_features, n_targets)
        Coefficients on the input (unstandardized) X.
    intercept_ : ndarray of shape (n_targets,)
    n_features_in_ : int
    """

    def __init__(
        self,
        *,
        alphas: npt.ArrayLike = DEFAULT_ALPHAS,
        cv: int = 5,
        per_target: bool = True,
        standardize: bool = True,
        random_state: int | np.random.Generator | None = 0,
        device: Device = "auto",
    ) -> None:
        self.alphas = alphas
        self.cv = cv
        self.per_target = per_target
        self.standardize = standardize
        self.random_state = random_state
        self.device = device

    def fit(self, X: npt.ArrayLike, Y: npt.ArrayLike) -> RidgeEncoder:
        """Choose the penalties by CV and refit on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Y : array-like of shape (n_samples, n_targets)

        Returns
        -------
        self
        """
        _preflight(X, Y, None, cv=self.cv, alphas=self.alphas, device=self.device)
        X, Y = _check_xy(X, Y)
        alphas = _check_alphas(self.alphas)
        cv = _check_cv(self.cv, X.shape[0])
        rng = check_random_state(self.random_state)
        dev = resolve_device(self.device)
        mean, scale = _standardize(X, self.standardize)
        Xs = (X - mean) / scale
        xs_mean = Xs.mean(0)
        coef = np.empty((X.shape[1], Y.shape[1]))
        intercept = np.empty(Y.shape[1])
        alpha = np.empty(Y.shape[1])
        for b, alpha_b, coef_b, ybar in fit_batches(
            Xs,
            Y,
            np.arange(X.shape[0]),
            alphas=alphas,
            cv=cv,
            seed=_seed(rng, self.random_state),
            per_target=self.per_target,
            device=dev,
        ):
            c = to_numpy(coef_b) / scale[:, None]
            coef[:, b] = c
            # (Xs - xs_mean) @ coef_s + ybar  ==  X @ c - (mean + scale * xs_mean) @ c + ybar
            intercept[b] = to_numpy(ybar) - (mean + scale * xs_mean) @ c
            alpha[b] = alpha_b
        _warn_edge(_edge_fraction(alpha, alphas), alphas)
        self.alpha_ = alpha
        self.coef_ = coef
        self.intercept_ = intercept
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Predicted targets, ndarray of shape (n_samples, n_targets)."""
        if not hasattr(self, "coef_"):
            raise InputError("this RidgeEncoder is not fitted; call fit(X, Y) first.")
        X = check_embedding(X, name="X", min_samples=1)
        if X.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {X.shape[1]} features but the encoder was fit on {self.n_features_in_}; "
                "pass the same embedding."
            )
        return X @ self.coef_ + self.intercept_

    def score(self, X: npt.ArrayLike, Y: npt.ArrayLike) -> float:
        """Mean R² over non-constant targets of ``Y`` (n_samples, n_targets)."""
        Y = check_embedding(Y, name="Y")
        pred = self.predict(X)
        if pred.shape != Y.shape:
            raise InputError(
                f"Y has shape {Y.shape} but predictions have {pred.shape}; pass matching rows."
            )
        ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
        keep = ~constant_columns(Y)
        return float(np.mean(1.0 - ((Y - pred) ** 2).sum(0)[keep] / ss_tot[keep]))
