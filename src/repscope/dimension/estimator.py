"""scikit-learn style estimator over :func:`repscope.local_dimension`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator

from repscope._validation import InputError, check_embedding
from repscope.dimension.estimate import (
    LocalDimensionResult,
    check_options,
    estimate_prepared,
    prepare_embedding,
)
from repscope.dimension.local import pointwise_dimension
from repscope.neighbors import knn

__all__ = ["LocalDimension"]

_QUERYABLE = ("mle", "mle-unbiased", "mada", "mom", "gride")


class LocalDimension(BaseEstimator):
    """Local intrinsic dimension with scikit-learn's fit/transform contract.

    Parameters are those of :func:`repscope.local_dimension`. ``fit`` learns the reference
    point set (after de-duplication and PCA); ``transform`` gives the pointwise LID of new
    points with respect to it (their neighbours searched among the fitted points), for the
    estimators that need only distances.

    Attributes
    ----------
    result_ : LocalDimensionResult
    profile_ : dict of int to float
    pointwise_ : ndarray of shape (n_points, len(k))
    dimension_ : float
        Aggregate at the largest K.

    Examples
    --------
    >>> import numpy as np
    >>> from repscope import LocalDimension
    >>> X = np.random.default_rng(0).uniform(size=(1000, 2)) @ np.ones((2, 5))
    >>> est = LocalDimension(k=[10, 20], pca=None).fit(X + np.arange(5) * 1e-3)
    >>> sorted(est.profile_)
    [10, 20]
    """

    def __init__(
        self,
        *,
        k: int | Sequence[int] | None = None,
        estimator: str = "mle",
        aggregate: str = "mean",
        pca: int | None = 300,
        duplicates: str = "drop",
        device: str = "auto",
        n_bootstrap: int = 0,
        random_state: int | None = 0,
    ) -> None:
        self.k = k
        self.estimator = estimator
        self.aggregate = aggregate
        self.pca = pca
        self.duplicates = duplicates
        self.device = device
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    def fit(self, X: npt.ArrayLike, y: Any = None) -> LocalDimension:
        """Estimate the LID profile of ``X``; returns ``self``."""
        check_options(self.estimator, self.aggregate, self.n_bootstrap)
        prepared = prepare_embedding(X, pca=self.pca, duplicates=self.duplicates)  # type: ignore[arg-type]
        res: LocalDimensionResult = estimate_prepared(
            prepared,
            self.k,
            estimator=self.estimator,
            aggregate=self.aggregate,
            device=self.device,
            n_bootstrap=self.n_bootstrap,
            random_state=self.random_state,
        )
        self.result_ = res
        self.profile_ = res.profile
        self.pointwise_ = res.pointwise
        self.dimension_ = res.profile[res.k[-1]]
        # the fitted points in the space the search ran in, and the PCA that maps there
        self._reference = prepared.X
        self._projection = prepared.projection
        self.n_features_in_ = prepared.n_features
        return self

    def _project(self, A: np.ndarray) -> np.ndarray:
        if self._projection is None:
            return A
        return (A - self._projection.mean) @ self._projection.components.T

    def transform(self, X: npt.ArrayLike) -> np.ndarray:
        """Pointwise LID of new points against the fitted set, shape (n_samples, len(k))."""
        if not hasattr(self, "result_"):
            raise InputError("this LocalDimension is not fitted yet; call fit(X) first.")
        if self.estimator not in _QUERYABLE:
            raise InputError(
                f"transform with estimator={self.estimator!r} is not supported (it needs the "
                f"neighbours' own neighbours); use one of {', '.join(_QUERYABLE)}."
            )
        arr = check_embedding(X, min_samples=1)
        if arr.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {arr.shape[1]} features but LocalDimension was fitted on "
                f"{self.n_features_in_}; pass data with the same columns."
            )
        found = knn(
            self._reference, max(self.result_.k), queries=self._project(arr), device=self.device
        )
        if (found.distances[:, 0] == 0).any():
            raise InputError(
                "some rows of X coincide with fitted points (distance 0); use fit_transform "
                "for the fitted data itself."
            )
        return pointwise_dimension(self.estimator, found.distances, self.result_.k)

    def fit_transform(self, X: npt.ArrayLike, y: Any = None) -> np.ndarray:
        """Fit and return the pointwise LID of the fitted (distinct) points."""
        return self.fit(X).pointwise_
