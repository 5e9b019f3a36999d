"""One entry point over every alignment measure, for the CLI and for pipelines."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from repscope._validation import InputError
from repscope.alignment import cca, cka, similarity

__all__ = ["METHODS", "align"]

METHODS: tuple[str, ...] = (
    "ridge",
    "cka",
    "cka-debiased",
    "cka-rbf",
    "rsa",
    "mutual-knn",
    "cca",
    "svcca",
    "pwcca",
    "procrustes",
)

_SIMPLE = {
    "cka": cka.linear_cka,
    "cka-debiased": cka.linear_cka_debiased,
    "cka-rbf": cka.rbf_cka,
    "rsa": similarity.rsa,
    "cca": cca.cca_similarity,
    "svcca": cca.svcca,
    "pwcca": cca.pwcca,
}


def align(
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    method: str = "ridge",
    *,
    k: int = 10,
    test_size: float = 0.2,
    random_state: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Alignment of X (N × P) with Y (N × Q), rows the same stimuli, by one named method.

    Parameters
    ----------
    X, Y : array-like of shape (n_samples, n_features_x), (n_samples, n_features_y)
    method : str
        One of :data:`METHODS`. ``ridge`` predicts Y from X (held-out R²); ``procrustes`` is
        a distance (lower = more similar), every other method a similarity.
    k : int
        Neighbours for ``mutual-knn``.
    test_size, random_state, device
        For ``ridge``.

    Returns
    -------
    dict
        ``{"method", "score", ...}`` plus the method's extra fields (ridge: ``pearson_r``,
        ``n_train``, ``n_test``, ``alpha_median``; mutual-knn: ``k``; procrustes: ``metric``).
    """
    if method not in METHODS:
        raise InputError(f"method={method!r} is not known; pass one of {', '.join(METHODS)}.")
    if method == "ridge":
        from repscope.alignment.ridge import ridge_alignment

        res = ridge_alignment(X, Y, test_size=test_size, random_state=random_state, device=device)
        return {
            "method": method,
            "score": res.score,
            "pearson_r": float(np.nanmean(res.pearson_r)),
            "n_train": res.n_train,
            "n_test": res.n_test,
            "alpha_median": float(np.nanmedian(res.alpha)),
        }
    if method == "mutual-knn":
        return {"method": method, "score": similarity.mutual_knn(X, Y, k=k).score, "k": k}
    if method == "procrustes":
        score = similarity.procrustes_distance(X, Y)
        return {"method": method, "score": score, "metric": "euclidean"}
    return {"method": method, "score": float(_SIMPLE[method](X, Y))}
