"""Statistics across a zoo of models: correlations with bootstrap CIs, partial r, scaling fits.

Every function here takes one value per model. :func:`per_model` reads such a vector out of the
tidy ``measures`` and ``models`` tables of :mod:`repscope.results`, named by a :class:`Quantity`
(or its string form, ``"lid@mle@k=50"``). :func:`correlate` gives Pearson and Spearman r with
SciPy's p-values, bootstrap CIs over models and a permutation p; :func:`partial_correlation`
controls for covariates such as architecture family; :func:`correlation_by_k` is the paper's
"local beats global" curve; :func:`scaling_fit` fits LID against log parameters;
:func:`zoo_statistics` puts the paper's pairs into one table.

Randomness: an int ``random_state`` gives the same numbers on every call. The bootstrap and
the permutation test draw from two independent children of ``random_state``
(``np.random.default_rng(random_state).spawn(2)``), so each row of a table is reproducible on
its own.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from repscope._validation import InputError, as_array, check_random_state
from repscope.results import MEASURE_COLUMNS, MODEL_COLUMNS, check_table

__all__ = [
    "BY_K_COLUMNS",
    "GLOBAL_MEASURES",
    "ZOO_COLUMNS",
    "Correlation",
    "PartialCorrelation",
    "Quantity",
    "ScalingFit",
    "correlate",
    "correlation_by_k",
    "default_pairs",
    "generalization_pairs",
    "partial_correlation",
    "per_model",
    "scaling_fit",
    "zoo_statistics",
]

CIMethod = Literal["BCa", "percentile", "basic"]
RandomState = int | np.random.Generator | None

#: Global (non-local) dimension measures: the reference rows of :func:`correlation_by_k`.
GLOBAL_MEASURES = ("pca90", "pca95", "participation_ratio", "effective_rank", "spectrum_alpha")

_CORRELATION_COLUMNS = {
    "n_models": "Int64",
    "pearson_r": "float64",
    "pearson_p": "float64",
    "pearson_ci_low": "float64",
    "pearson_ci_high": "float64",
    "spearman_r": "float64",
    "spearman_p": "float64",
    "spearman_ci_low": "float64",
    "spearman_ci_high": "float64",
    "permutation_p": "float64",
}
#: Columns of :func:`correlation_by_k`, with their pandas dtypes.
BY_K_COLUMNS = {
    "measure": "string",
    "estimator": "string",
    "k": "Int64",
    "x": "string",
    "y": "string",
    **_CORRELATION_COLUMNS,
}
#: Columns of :func:`zoo_statistics`, with their pandas dtypes.
ZOO_COLUMNS = {
    "x": "string",
    "y": "string",
    **_CORRELATION_COLUMNS,
    "partial_r": "float64",
    "partial_p": "float64",
    "partial_n": "Int64",
    "partial_covariates": "string",
}
_FILTERS = ("estimator", "k", "subject", "roi", "target", "layer")
_ALIASES = {"log_params": ("n_params", True), "log_pretrain_size": ("pretrain_size", True)}


# --------------------------------------------------------------------------- quantities


@dataclass(frozen=True)
class Quantity:
    """One value per model, named: a measure of the ``measures`` table or a ``models`` column.

    Parameters
    ----------
    name : str
        A measure (``"lid"``, ``"brain_r2"``…) or a column of the models table
        (``"accuracy"``, ``"n_params"``, ``"family"``…).
    estimator, subject, roi, target, layer : str or None
        Keep only rows of the measures table with this value; None keeps all. After filtering,
        each model must have one row.
    k : int or None
        Keep only rows with this neighbourhood size K.
    log10 : bool
        Take log10 of the values (they must be positive).

    Notes
    -----
    The string form, read by :meth:`parse` and written by ``str()``, is
    ``name[@estimator][@field=value]...`` with fields ``k, subject, roi, target, layer``
    (``estimator=`` for an empty estimator), wrapped in ``log10(...)`` for the log. Aliases:
    ``log_params`` is ``log10(n_params)``, ``log_pretrain_size`` is ``log10(pretrain_size)``.

    Examples
    --------
    >>> str(Quantity.parse("brain_r2@ridge@subject=all@roi=EBA"))
    'brain_r2@ridge@subject=all@roi=EBA'
    >>> Quantity.parse("log_params") == Quantity("n_params", log10=True)
    True
    """

    name: str
    estimator: str | None = None
    k: int | None = None
    subject: str | None = None
    roi: str | None = None
    target: str | None = None
    layer: str | None = None
    log10: bool = False

    def __str__(self) -> str:
        text = self.name
        if self.estimator is not None:
            text += f"@{self.estimator}" if self.estimator else "@estimator="
        for field in _FILTERS[1:]:
            if getattr(self, field) is not None:
                text += f"@{field}={getattr(self, field)}"
        return f"log10({text})" if self.log10 else text

    @classmethod
    def parse(cls, text: str | Quantity) -> Quantity:
        """Read the string form (see Notes of :class:`Quantity`); a Quantity passes through."""
        if isinstance(text, Quantity):
            return text
        if not isinstance(text, str) or not text.strip():
            raise InputError(
                f"quantity {text!r} is not a non-empty string; pass e.g. 'lid@mle@k=50'."
            )
        text = text.strip()
        if text in _ALIASES:
            name, log = _ALIASES[text]
            return cls(name, log10=log)
        if text.startswith("log10(") and text.endswith(")"):
            return replace(cls.parse(text[6:-1]), log10=True)
        name, *parts = text.split("@")
        values: dict[str, Any] = {}
        for part in parts:
            key, has_value, value = part.partition("=")
            key, value = (key.strip().lower(), value.strip()) if has_value else ("estimator", key)
            if key not in _FILTERS or key in values:
                raise InputError(
                    f"quantity {text!r} has a repeated or unknown part {part!r}; write "
                    f"name[@estimator][@field=value] with fields {', '.join(_FILTERS[1:])}."
                )
            values[key] = _parse_k(value, text) if key == "k" else value
        if not name:
            raise InputError(f"quantity {text!r} has no name; pass e.g. 'lid@mle@k=50'.")
        return cls(name, **values)


def _parse_k(value: str, text: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InputError(f"quantity {text!r} has k={value!r}; pass an integer K.") from None


def per_model(
    measures: pd.DataFrame | None, models: pd.DataFrame | None, quantity: Quantity | str
) -> pd.Series:
    """One value per model of ``quantity``, read from the tidy tables.

    Parameters
    ----------
    measures : DataFrame or None
        The ``measures`` table (:data:`repscope.results.MEASURE_COLUMNS`).
    models : DataFrame or None
        The ``models`` table (:data:`repscope.results.MODEL_COLUMNS`).
    quantity : Quantity or str
        What to read; a models column when its name is one, a measure otherwise.

    Returns
    -------
    Series
        Indexed by model (one entry per model that has the quantity), named ``str(quantity)``;
        float64, except non-numeric models columns such as ``family`` (strings). NaN values
        are kept: the statistics drop them and count them.

    Raises
    ------
    InputError
        Unknown quantity; a filter that matches no row; several rows per model (the message
        names the columns to pin); non-positive values under ``log10``.

    Examples
    --------
    >>> import pandas as pd
    >>> models = pd.DataFrame({"model": ["a", "b"], "family": ["cnn", "mlp"],
    ...     "n_params": [1e6, 1e8], "pretrain_data": "", "pretrain_size": 1e6,
    ...     "accuracy": [0.5, 0.7], "accuracy_source": "probe"})
    >>> per_model(None, models, "log_params").tolist()
    [6.0, 8.0]
    """
    q = Quantity.parse(quantity)
    if q.name in MODEL_COLUMNS and q.name != "model":
        values = _from_models(models, q)
    else:
        values = _from_measures(measures, q)
    if q.log10:
        values = _log10(values, q)
    return values.rename(str(q))


def _from_models(models: pd.DataFrame | None, q: Quantity) -> pd.Series:
    if models is None:
        raise InputError(f"quantity '{q}' is a column of the models table; pass that table.")
    check_table(models, MODEL_COLUMNS, "models")
    pinned = [f for f in _FILTERS if getattr(q, f) is not None]
    if pinned:
        raise InputError(
            f"quantity '{q}' is a models-table column and takes no {'/'.join(pinned)}; "
            f"pass {q.name!r} alone."
        )
    if models["model"].duplicated().any():
        dup = models["model"][models["model"].duplicated()].iloc[0]
        raise InputError(f"the models table has model {dup!r} twice; keep one row per model.")
    values = models.set_index("model")[q.name]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        values = values.astype("float64")
    return values


def _from_measures(measures: pd.DataFrame | None, q: Quantity) -> pd.Series:
    if measures is None:
        raise InputError(f"quantity '{q}' is a measure; pass the measures table.")
    check_table(measures, MEASURE_COLUMNS, "measures")
    rows = measures[_equals(measures["measure"], q.name)]
    if rows.empty:
        present = sorted(measures["measure"].dropna().unique())
        model_columns = [c for c in MODEL_COLUMNS if c != "model"]
        raise InputError(
            f"quantity {q.name!r} is neither a measure in the measures table ({present}) nor "
            f"a models column ({model_columns}); pass one of those."
        )
    for field in _FILTERS:
        wanted = getattr(q, field)
        if wanted is None:
            continue
        kept = rows[_equals(rows[field], wanted)]
        if kept.empty:
            available = sorted(rows[field].dropna().unique().tolist())
            raise InputError(
                f"no {q.name!r} rows with {field}={wanted!r} for quantity '{q}'; "
                f"the table has {field} in {available}."
            )
        rows = kept
    _check_one_row_per_model(rows, q)
    return rows.set_index("model")["value"].astype("float64")


def _equals(column: pd.Series, value: object) -> pd.Series:
    """Boolean mask of ``column == value`` with missing entries False."""
    return (column == value).fillna(False).astype(bool)


def _check_one_row_per_model(rows: pd.DataFrame, q: Quantity) -> None:
    if not rows["model"].duplicated().any():
        return
    varying = [f for f in _FILTERS if rows[f].nunique(dropna=False) > 1]
    if not varying:
        raise InputError(f"the measures table repeats rows of '{q}'; drop the duplicates.")
    first = rows.iloc[0]
    example = replace(q, **{f: (int(first[f]) if f == "k" else str(first[f])) for f in varying})
    details = ", ".join(f"{f} ({sorted(rows[f].dropna().unique().tolist())[:6]})" for f in varying)
    raise InputError(
        f"quantity '{q}' has several rows per model, differing in {details}; "
        f"pin them, e.g. '{example}'."
    )


def _log10(values: pd.Series, q: Quantity) -> pd.Series:
    if not pd.api.types.is_float_dtype(values):
        raise InputError(f"quantity '{q}' takes log10 of non-numeric values; drop the log10.")
    bad = values[values <= 0]
    if len(bad):
        raise InputError(
            f"quantity '{q}' needs positive values, but {len(bad)} are <= 0 (model "
            f"{bad.index[0]!r}); fix them or set them to NaN."
        )
    return np.log10(values)


# --------------------------------------------------------------------------- input checks


def _is_pandas(covariates: object) -> bool:
    if isinstance(covariates, pd.DataFrame):
        return True
    return isinstance(covariates, Mapping) and all(
        isinstance(v, pd.Series) for v in covariates.values()
    )


def _covariate_frame(covariates: pd.DataFrame | Mapping[str, Any] | None) -> pd.DataFrame:
    if covariates is None:
        return pd.DataFrame()
    if isinstance(covariates, pd.DataFrame):
        return covariates
    if not isinstance(covariates, Mapping):
        raise InputError(
            f"covariates is a {type(covariates).__name__}; pass a pandas DataFrame or a dict "
            "of 1-D arrays, one value per model."
        )
    if _is_pandas(covariates):
        return pd.concat(dict(covariates), axis=1)
    columns = {str(name): np.asarray(values) for name, values in covariates.items()}
    lengths = {name: values.shape for name, values in columns.items()}
    if any(len(shape) != 1 for shape in lengths.values()) or len(set(lengths.values())) > 1:
        raise InputError(
            f"covariates have shapes {lengths}; pass 1-D arrays of one length, one per model."
        )
    return pd.DataFrame(columns)


def _numeric(values: Any, name: str) -> np.ndarray:
    """Float64 1-D array of ``values`` (missing as NaN); one-line error if impossible."""
    try:
        if isinstance(values, pd.Series):
            arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = as_array(values, name)
            if arr.dtype.kind not in "biuf":  # bool, int, unsigned, float
                raise TypeError(arr.dtype)
            arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} is not numeric; pass real numbers, one per model.") from None
    if arr.ndim != 1:
        raise InputError(
            f"{name} must be 1-D (one value per model), got shape {arr.shape}; pass a vector."
        )
    return arr


def _gather(
    x: Any, y: Any, covariates: pd.DataFrame | Mapping[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, int]:
    """Paired, complete cases of ``x``, ``y`` (and covariates) and the number of rows dropped.

    Aligned on the index when ``x``, ``y`` (and the covariates) are all pandas objects;
    positional otherwise. Rows with a missing value anywhere are dropped.
    """
    frame = _covariate_frame(covariates)
    indexed = covariates is None or _is_pandas(covariates)
    if isinstance(x, pd.Series) and isinstance(y, pd.Series) and indexed:
        for name, values in (("x", x), ("y", y), ("covariates", frame)):
            if values.index.has_duplicates:
                raise InputError(f"{name} has duplicate index labels; keep one per model.")
        joined = pd.concat([x.rename("x"), y.rename("y")], axis=1, join="outer")
        x, y, frame = joined["x"], joined["y"], frame.reindex(joined.index)
    x_arr, y_arr = _numeric(x, "x"), _numeric(y, "y")
    lengths = {"x": len(x_arr), "y": len(y_arr)}
    if covariates is None:
        frame = pd.DataFrame(index=pd.RangeIndex(len(x_arr)))
    else:
        lengths["covariates"] = len(frame)
    if len(set(lengths.values())) > 1:
        raise InputError(
            f"lengths differ ({', '.join(f'{k}={v}' for k, v in lengths.items())}); "
            "pass one value per model, in the same order."
        )
    keep = ~np.isnan(x_arr) & ~np.isnan(y_arr) & frame.notna().all(axis=1).to_numpy(bool)
    for name, arr in (("x", x_arr), ("y", y_arr)):
        if np.isinf(arr[keep]).any():
            raise InputError(f"{name} has infinite values; set them to NaN or fix them.")
    return x_arr[keep], y_arr[keep], frame[keep].reset_index(drop=True), int((~keep).sum())


def _check_n(n: int, n_dropped: int, need: int, fix: str) -> None:
    if n < need:
        raise InputError(
            f"{n} models have both values ({n_dropped} dropped for NaN); at least {need} are "
            f"needed, {fix}."
        )


def _check_varies(values: np.ndarray, name: str) -> None:
    if np.ptp(values) == 0:
        raise InputError(
            f"{name} is constant over the {len(values)} models; a correlation needs variation, "
            "pass a quantity that differs between models."
        )


def _check_resampling(
    n_bootstrap: int, n_permutations: int, confidence: float, ci_method: str
) -> None:
    for name, value in (("n_bootstrap", n_bootstrap), ("n_permutations", n_permutations)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 0:
            raise InputError(f"{name}={value!r} must be an int >= 0; pass e.g. {name}=10_000.")
    if not 0 < confidence < 1:
        raise InputError(f"confidence={confidence!r} must be in (0, 1); pass e.g. 0.95.")
    if ci_method not in ("BCa", "percentile", "basic"):
        raise InputError(
            f"ci_method={ci_method!r} is not known; pass 'BCa', 'percentile' or 'basic'."
        )


# --------------------------------------------------------------------------- resampling


def _pearson(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return stats.pearsonr(x, y, axis=axis).statistic


def _spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    # Spearman's rho is Pearson's r of average ranks (what scipy.stats.spearmanr computes)
    return _pearson(stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis), axis=axis)


def _pearson_and_spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.stack([_pearson(x, y, axis), _spearman(x, y, axis)])


def _bootstrap_ci(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    n_resamples: int,
    confidence: float,
    ci_method: CIMethod,
    rng: np.random.Generator,
) -> np.ndarray:
    """Paired bootstrap CI over models of each output of ``statistic``, shape (n_outputs, 2)."""
    with warnings.catch_warnings():
        # a resample that repeats one model makes r undefined; counted and reported below
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            data,
            statistic,
            n_resamples=n_resamples,
            paired=True,
            vectorized=True,
            confidence_level=confidence,
            method=ci_method,
            rng=rng,
        )
    ci = np.column_stack([result.confidence_interval.low, result.confidence_interval.high])
    if np.isnan(ci).any():
        n_bad = int(np.isnan(np.atleast_2d(result.bootstrap_distribution)).any(axis=0).sum())
        reason = (
            f"{n_bad} of {n_resamples} resamples have a constant variable"
            if n_bad
            else "the bootstrap distribution is degenerate (e.g. |r| = 1 in every resample)"
        )
        warnings.warn(
            f"bootstrap CI is NaN: {reason}; add models, or pass ci_method='percentile' "
            "for a degenerate distribution.",
            RuntimeWarning,
            stacklevel=3,
        )
    return np.atleast_2d(ci)


def _method_note(
    n: int, n_bootstrap: int, n_permutations: int, confidence: float, ci_method: str
) -> str:
    ci = (
        f"{confidence:.0%} CIs by {ci_method} paired bootstrap over models "
        f"({n_bootstrap} resamples, scipy.stats.bootstrap)"
        if n_bootstrap
        else "no CIs (n_bootstrap=0)"
    )
    if not n_permutations:
        perm = "no permutation test (n_permutations=0)"
    else:
        kind = "exact, all n! pairings" if math.factorial(n) <= n_permutations else "random"
        perm = f"two-sided permutation p of Pearson r ({kind}; scipy.stats.permutation_test)"
    return f"p of r from scipy.stats.pearsonr and spearmanr (n-2 df); {ci}; {perm}."


# --------------------------------------------------------------------------- correlation


@dataclass(frozen=True)
class Correlation:
    """Correlation of two per-model quantities across a zoo.

    Attributes
    ----------
    n : int
        Models with both values (the sample size).
    n_dropped : int
        Models dropped because a value was NaN.
    pearson_r, pearson_p : float
        Pearson r and its two-sided p (``scipy.stats.pearsonr``).
    pearson_ci : tuple of float
        (low, high) bootstrap CI of Pearson r; NaN when ``n_bootstrap=0``.
    spearman_r, spearman_p : float
        Spearman rho and its two-sided p (``scipy.stats.spearmanr``).
    spearman_ci : tuple of float
        (low, high) bootstrap CI of Spearman rho, from the same resamples.
    permutation_p : float
        Two-sided permutation p of Pearson r; NaN when ``n_permutations=0``.
    method : str
        How each number was obtained, in words.
    """

    n: int
    n_dropped: int
    pearson_r: float
    pearson_p: float
    pearson_ci: tuple[float, float]
    spearman_r: float
    spearman_p: float
    spearman_ci: tuple[float, float]
    permutation_p: float
    method: str


def correlate(
    x: npt.ArrayLike | pd.Series,
    y: npt.ArrayLike | pd.Series,
    *,
    n_bootstrap: int = 10_000,
    n_permutations: int = 10_000,
    confidence: float = 0.95,
    ci_method: CIMethod = "BCa",
    random_state: RandomState = 0,
) -> Correlation:
    """Pearson and Spearman correlation across models, with bootstrap CIs and a permutation p.

    Parameters
    ----------
    x, y : array-like of shape (n_models,)
        One value per model, in the same order; two pandas Series are aligned on their index
        first. Pairs with a NaN are dropped and counted.
    n_bootstrap : int
        Bootstrap resamples of the models (pairs resampled together); 0 skips the CIs.
    n_permutations : int
        Random pairings for the permutation test; 0 skips it. When ``n! <= n_permutations``
        SciPy enumerates all pairings (an exact test).
    confidence : float
        Confidence level of the intervals.
    ci_method : {"BCa", "percentile", "basic"}
        Interval of ``scipy.stats.bootstrap``; BCa (bias-corrected and accelerated, with a
        jackknife over models) by default.
    random_state : int, Generator or None
        Seed; the bootstrap and the permutation test use its two spawned children.

    Returns
    -------
    Correlation

    Raises
    ------
    InputError
        Lengths differ; fewer than 3 complete pairs (4 with a CI); a constant input.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(10.0)
    >>> c = correlate(x, x ** 2, n_bootstrap=999, n_permutations=999)
    >>> round(c.pearson_r, 3), round(c.spearman_r, 3), c.n
    (0.963, 1.0, 10)
    """
    _check_resampling(n_bootstrap, n_permutations, confidence, ci_method)
    x_arr, y_arr, _, n_dropped = _gather(x, y)
    n = len(x_arr)
    _check_n(n, n_dropped, 3, "add models")
    if n_bootstrap:
        _check_n(n, n_dropped, 4, "for a bootstrap CI; add models or pass n_bootstrap=0")
    _check_varies(x_arr, "x")
    _check_varies(y_arr, "y")
    boot_rng, perm_rng = check_random_state(random_state).spawn(2)
    ci = np.full((2, 2), np.nan)
    if n_bootstrap:
        ci = _bootstrap_ci(
            (x_arr, y_arr),
            _pearson_and_spearman,
            n_resamples=n_bootstrap,
            confidence=confidence,
            ci_method=ci_method,
            rng=boot_rng,
        )
    permutation_p = np.nan
    if n_permutations:
        permutation_p = stats.permutation_test(
            (x_arr, y_arr),
            _pearson,
            permutation_type="pairings",
            vectorized=True,
            n_resamples=n_permutations,
            alternative="two-sided",
            rng=perm_rng,
        ).pvalue
    pearson, spearman = stats.pearsonr(x_arr, y_arr), stats.spearmanr(x_arr, y_arr)
    return Correlation(
        n=n,
        n_dropped=n_dropped,
        pearson_r=float(pearson.statistic),
        pearson_p=float(pearson.pvalue),
        pearson_ci=(float(ci[0, 0]), float(ci[0, 1])),
        spearman_r=float(spearman.statistic),
        spearman_p=float(spearman.pvalue),
        spearman_ci=(float(ci[1, 0]), float(ci[1, 1])),
        permutation_p=float(permutation_p),
        method=_method_note(n, n_bootstrap, n_permutations, confidence, ci_method),
    )


# --------------------------------------------------------------------------- partial correlation


@dataclass(frozen=True)
class PartialCorrelation:
    """Correlation of x and y after removing what covariates explain linearly.

    Attributes
    ----------
    r : float
        Partial correlation (Pearson r of the residuals; of rank residuals for Spearman).
    p : float
        Two-sided p from the t distribution with ``df`` degrees of freedom.
    df : int
        ``n - 2 - n_covariate_columns``.
    n : int
        Models with x, y and every covariate present.
    n_dropped : int
        Models dropped for a missing value.
    method : {"pearson", "spearman"}
    covariates : tuple of str
        Names of the covariates controlled for.
    n_covariate_columns : int
        Independent design columns besides the constant (a categorical with L levels gives
        L - 1; a column collinear with others counts 0).
    ci : tuple of float
        (low, high) bootstrap CI of ``r``; NaN unless ``n_bootstrap > 0``.
    """

    r: float
    p: float
    df: int
    n: int
    n_dropped: int
    method: str
    covariates: tuple[str, ...]
    n_covariate_columns: int
    ci: tuple[float, float]


def _design_columns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Covariate design (n, q) without the constant, and which columns are numeric (q,)."""
    blocks, numeric = [], []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            blocks.append(column.to_numpy(np.float64)[:, None])
            numeric.append(True)
        else:
            # one-hot with the alphabetically first level dropped: it is the reference
            dummies = pd.get_dummies(column.astype(str), drop_first=True, dtype=np.float64)
            blocks.append(dummies.to_numpy())
            numeric.extend([False] * dummies.shape[1])
    n = len(frame)
    return np.hstack([np.empty((n, 0)), *blocks]), np.array(numeric, dtype=bool)


def _residuals(
    x: np.ndarray, y: np.ndarray, *columns: np.ndarray, numeric: np.ndarray, rank: bool
) -> np.ndarray:
    """Least-squares residuals of x and y on [1, columns], shape (..., n, 2); ranks first."""
    if rank:
        x, y = stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1)
        columns = tuple(
            stats.rankdata(c, axis=-1) if is_numeric else c
            for c, is_numeric in zip(columns, numeric, strict=True)
        )
    design = np.stack([np.ones_like(x), *columns], axis=-1)
    xy = np.stack([x, y], axis=-1)
    # pinv solves every resample's least squares at once; rank-deficient designs included
    return xy - design @ (np.linalg.pinv(design) @ xy)


def _partial_statistic(
    x: np.ndarray,
    y: np.ndarray,
    *columns: np.ndarray,
    numeric: np.ndarray,
    rank: bool,
    axis: int = -1,
) -> np.ndarray:
    """Partial r of each resample; ``axis`` is SciPy's, the models are always the last axis."""
    res = _residuals(x, y, *columns, numeric=numeric, rank=rank)
    return _pearson(res[..., 0], res[..., 1])


def partial_correlation(
    x: npt.ArrayLike | pd.Series,
    y: npt.ArrayLike | pd.Series,
    covariates: pd.DataFrame | Mapping[str, Any],
    *,
    method: Literal["pearson", "spearman"] = "pearson",
    n_bootstrap: int = 0,
    confidence: float = 0.95,
    ci_method: CIMethod = "BCa",
    random_state: RandomState = 0,
) -> PartialCorrelation:
    """Partial correlation of x and y controlling for covariates, by least-squares residuals.

    x and y are each regressed on a constant plus the covariates; the partial correlation is
    the Pearson r of the two residual vectors, and its p comes from the t distribution with
    ``n - 2 - q`` degrees of freedom, q the number of covariate columns. Numeric covariates
    enter as they are; a non-numeric (e.g. architecture ``family``) enters one-hot with its
    alphabetically first level dropped. ``method="spearman"`` ranks x, y and the numeric
    covariates first.

    Parameters
    ----------
    x, y : array-like of shape (n_models,)
        One value per model. When x, y and the covariates are all pandas objects they are
        aligned on the index; otherwise by position.
    covariates : DataFrame or dict of str to array-like of shape (n_models,)
        Columns to control for.
    method : {"pearson", "spearman"}
    n_bootstrap : int
        Paired bootstrap resamples for a CI of r (0: none).
    confidence : float
        Confidence level of the CI.
    ci_method : {"BCa", "percentile", "basic"}
        Interval of ``scipy.stats.bootstrap``.
    random_state : int, Generator or None
        Seed of the bootstrap (used as ``np.random.default_rng(random_state)``, not spawned).

    Returns
    -------
    PartialCorrelation

    Raises
    ------
    InputError
        Too few complete models for the covariates; x or y constant, or explained exactly by
        the covariates.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal(200)
    >>> x, y = z + 0.1 * rng.standard_normal(200), z + 0.1 * rng.standard_normal(200)
    >>> abs(partial_correlation(x, y, {"z": z}).r) < 0.2
    True
    """
    if method not in ("pearson", "spearman"):
        raise InputError(f"method={method!r} is not known; pass 'pearson' or 'spearman'.")
    _check_resampling(n_bootstrap, 0, confidence, ci_method)
    x_arr, y_arr, frame, n_dropped = _gather(x, y, covariates)
    columns, numeric = _design_columns(frame)
    n = len(x_arr)
    n_columns = int(np.linalg.matrix_rank(np.column_stack([np.ones(n), columns]))) - 1 if n else 0
    _check_n(n, n_dropped, n_columns + 3, f"with {n_columns} covariate columns")
    if n_bootstrap:
        _check_n(n, n_dropped, n_columns + 4, "for a CI; pass n_bootstrap=0 or add models")
    rank = method == "spearman"
    _check_varies(x_arr, "x")
    _check_varies(y_arr, "y")
    res = _residuals(x_arr, y_arr, *columns.T, numeric=numeric, rank=rank)
    for name, values, residual in (("x", x_arr, res[:, 0]), ("y", y_arr, res[:, 1])):
        # relative test: residuals of an exact linear fit are rounding noise, not zero
        if np.ptp(residual) <= 1e-10 * np.ptp(stats.rankdata(values) if rank else values):
            raise InputError(
                f"{name} is a linear function of the covariates; nothing is left to correlate, "
                "drop the covariate that explains it."
            )
    r = float(_pearson(res[:, 0], res[:, 1]))
    df = n - 2 - n_columns
    with np.errstate(divide="ignore"):
        t = r * np.sqrt(df / max(1.0 - r * r, 0.0))
    ci = np.full((1, 2), np.nan)
    if n_bootstrap:
        ci = _bootstrap_ci(
            (x_arr, y_arr, *columns.T),
            partial(_partial_statistic, numeric=numeric, rank=rank),
            n_resamples=n_bootstrap,
            confidence=confidence,
            ci_method=ci_method,
            rng=check_random_state(random_state),
        )
    return PartialCorrelation(
        r=r,
        p=float(2.0 * stats.t.sf(abs(t), df)),
        df=df,
        n=n,
        n_dropped=n_dropped,
        method=method,
        covariates=tuple(str(c) for c in frame.columns),
        n_covariate_columns=n_columns,
        ci=(float(ci[0, 0]), float(ci[0, 1])),
    )


# --------------------------------------------------------------------------- scaling


@dataclass(frozen=True)
class ScalingFit:
    """Least-squares line ``y = intercept + slope * x'``, x' = log10(x) or x.

    Attributes
    ----------
    slope, intercept : float
        In units of y per unit of x' (per decade of x when ``log_x``).
    r, r_squared, p : float
        Pearson r of (x', y), its square, and the two-sided p of slope = 0.
    slope_stderr, intercept_stderr : float
        Standard errors (``scipy.stats.linregress``).
    slope_ci : tuple of float
        (low, high): slope ± t_{n-2} quantile × slope_stderr.
    confidence : float
    n, n_dropped : int
        Models fitted, and dropped for NaN.
    log_x : bool
    """

    slope: float
    intercept: float
    r: float
    r_squared: float
    p: float
    slope_stderr: float
    intercept_stderr: float
    slope_ci: tuple[float, float]
    confidence: float
    n: int
    n_dropped: int
    log_x: bool


def scaling_fit(
    x: npt.ArrayLike | pd.Series,
    y: npt.ArrayLike | pd.Series,
    *,
    log_x: bool = True,
    confidence: float = 0.95,
) -> ScalingFit:
    """Fit y against log10 x (e.g. LID against parameters or pretraining images).

    Parameters
    ----------
    x : array-like of shape (n_models,)
        E.g. parameter count or pretraining-set size; positive when ``log_x``.
    y : array-like of shape (n_models,)
        E.g. LID at one K.
    log_x : bool
        Regress on log10(x) (default) or on x.
    confidence : float
        Level of the slope interval.

    Returns
    -------
    ScalingFit

    Examples
    --------
    >>> fit = scaling_fit([1e6, 1e7, 1e8, 1e9], [30.0, 28.0, 26.0, 24.0])
    >>> round(fit.slope, 6), round(fit.r, 6)
    (-2.0, -1.0)
    """
    if not 0 < confidence < 1:
        raise InputError(f"confidence={confidence!r} must be in (0, 1); pass e.g. 0.95.")
    x_arr, y_arr, _, n_dropped = _gather(x, y)
    _check_n(len(x_arr), n_dropped, 3, "add models")
    if log_x:
        if (x_arr <= 0).any():
            raise InputError(
                f"x has {(x_arr <= 0).sum()} values <= 0, which have no log10; pass positive "
                "x or log_x=False."
            )
        x_arr = np.log10(x_arr)
    _check_varies(x_arr, "x")
    _check_varies(y_arr, "y")
    fit = stats.linregress(x_arr, y_arr)
    n = len(x_arr)
    half = stats.t.ppf(0.5 + confidence / 2, n - 2) * fit.stderr
    return ScalingFit(
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        r=float(fit.rvalue),
        r_squared=float(fit.rvalue**2),
        p=float(fit.pvalue),
        slope_stderr=float(fit.stderr),
        intercept_stderr=float(fit.intercept_stderr),
        slope_ci=(float(fit.slope - half), float(fit.slope + half)),
        confidence=confidence,
        n=n,
        n_dropped=n_dropped,
        log_x=log_x,
    )


# --------------------------------------------------------------------------- zoo tables


def _correlation_row(c: Correlation) -> dict[str, object]:
    return {
        "n_models": c.n,
        "pearson_r": c.pearson_r,
        "pearson_p": c.pearson_p,
        "pearson_ci_low": c.pearson_ci[0],
        "pearson_ci_high": c.pearson_ci[1],
        "spearman_r": c.spearman_r,
        "spearman_p": c.spearman_p,
        "spearman_ci_low": c.spearman_ci[0],
        "spearman_ci_high": c.spearman_ci[1],
        "permutation_p": c.permutation_p,
    }


def _table(rows: list[dict[str, object]], columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def _layer(measures: pd.DataFrame, layer: str | None, name: str) -> str | None:
    """The layer to pin in quantities: None when the ``name`` rows have one layer."""
    layers = sorted(measures.loc[_equals(measures["measure"], name), "layer"].dropna().unique())
    if layer is not None:
        if layer not in layers:
            raise InputError(f"layer={layer!r} has no {name!r} rows; pass one of {layers}.")
        return layer
    if len(layers) > 1:
        raise InputError(f"{name!r} rows come from layers {layers}; pass layer= one of them.")
    return None


def _scales(measures: pd.DataFrame, name: str, estimator: str, layer: str | None) -> list[int]:
    """Sorted K of ``name`` rows with this estimator (and layer)."""
    rows = measures[_equals(measures["measure"], name)]
    estimators = sorted(rows["estimator"].dropna().unique())
    rows = rows[_equals(rows["estimator"], estimator)]
    if layer is not None:
        rows = rows[_equals(rows["layer"], layer)]
    ks = sorted(int(k) for k in rows["k"].dropna().unique())
    if not ks:
        raise InputError(
            f"the measures table has no {name!r} rows with estimator={estimator!r} and a K; "
            f"pass one of its estimators {estimators}."
        )
    return ks


def correlation_by_k(
    measures: pd.DataFrame,
    models: pd.DataFrame | None,
    *,
    y: Quantity | str,
    x_measure: str = "lid",
    estimator: str = "mle",
    layer: str | None = None,
    global_measures: Sequence[str] | None = None,
    n_bootstrap: int = 10_000,
    n_permutations: int = 10_000,
    confidence: float = 0.95,
    ci_method: CIMethod = "BCa",
    random_state: RandomState = 0,
) -> pd.DataFrame:
    """Correlation of LID at each K with a per-model quantity: the "local beats global" curve.

    Parameters
    ----------
    measures, models : DataFrame
        The tidy tables of :mod:`repscope.results`; ``models`` may be None when ``y`` is a
        measure.
    y : Quantity or str
        What LID is correlated with, e.g. ``"accuracy"``, ``"model_alignment_mean"``,
        ``"brain_r2@subject=all@roi=EBA"``. A measure without a layer gets ``layer``.
    x_measure : str
        Measure with one value per K (``"lid"``).
    estimator : str
        LID estimator whose rows are used (``"mle"``, ``"mom"``…).
    layer : str or None
        Layer to read; None when the table holds one layer.
    global_measures : sequence of str or None
        Reference measures correlated with ``y`` too; None: those of
        :data:`GLOBAL_MEASURES` present in the table; ``()``: none.
    n_bootstrap, n_permutations, confidence, ci_method, random_state
        As in :func:`correlate`; every row uses ``random_state`` afresh.

    Returns
    -------
    DataFrame
        Columns :data:`BY_K_COLUMNS`: ``measure, estimator, k, x, y, n_models, pearson_r,
        pearson_p, pearson_ci_low, pearson_ci_high, spearman_r, spearman_p, spearman_ci_low,
        spearman_ci_high, permutation_p``. One row per K (ascending), then one per global
        measure with ``k`` = <NA>; ``x`` and ``y`` are the quantities' string forms.
    """
    check_table(measures, MEASURE_COLUMNS, "measures")
    layer = _layer(measures, layer, x_measure)
    y_q = Quantity.parse(y)
    if y_q.name not in MODEL_COLUMNS and y_q.layer is None:
        y_q = replace(y_q, layer=layer)
    if global_measures is None:
        present = set(measures["measure"].dropna())
        global_measures = [g for g in GLOBAL_MEASURES if g in present]
    quantities = [
        Quantity(x_measure, estimator=estimator, k=k, layer=layer)
        for k in _scales(measures, x_measure, estimator, layer)
    ] + [Quantity(g, layer=layer) for g in global_measures]
    y_values = per_model(measures, models, y_q)
    options = dict(
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        confidence=confidence,
        ci_method=ci_method,
        random_state=random_state,
    )
    rows = []
    for q in quantities:
        c = _labelled(correlate, q, y_q, per_model(measures, models, q), y_values, **options)
        head = {"measure": q.name, "estimator": q.estimator or "", "k": q.k, "x": str(q)}
        rows.append({**head, "y": str(y_q), **_correlation_row(c)})
    return _table(rows, BY_K_COLUMNS)


def _labelled(
    function: Callable[..., Any], x_q: Quantity, y_q: Quantity, *args: Any, **kwargs: Any
) -> Any:
    """Call ``function``, prefixing an InputError with the pair it concerns."""
    try:
        return function(*args, **kwargs)
    except InputError as exc:
        raise InputError(f"pair ({x_q}, {y_q}): {exc}") from None


def _variants(measures: pd.DataFrame, name: str, layer: str | None) -> list[Quantity]:
    """One quantity per distinct (estimator, subject, roi, target) of ``name`` rows.

    A field is pinned when it varies; brain measures always pin subject and ROI, keeping
    only subject ``"all"`` (pooled) when the table has it.
    """
    rows = measures[_equals(measures["measure"], name)]
    if layer is not None:
        rows = rows[_equals(rows["layer"], layer)]
    brain = name.startswith("brain_")
    if brain and _equals(rows["subject"], "all").any():
        rows = rows[_equals(rows["subject"], "all")]
    fields_ = [
        f
        for f in ("estimator", "subject", "roi", "target")
        if rows[f].nunique() > 1 or (brain and f in ("subject", "roi"))
    ]
    if rows.empty:
        return []
    if not fields_:
        return [Quantity(name, layer=layer)]
    combos = rows[fields_].drop_duplicates().itertuples(index=False)
    return [
        Quantity(name, layer=layer, **dict(zip(fields_, combo, strict=True))) for combo in combos
    ]


def default_pairs(
    measures: pd.DataFrame,
    models: pd.DataFrame | None,
    *,
    estimator: str = "mle",
    layer: str | None = None,
    spectral_rank: int = 16,
) -> list[tuple[Quantity, Quantity]]:
    """The paper's pairs, for what the tables hold.

    LID at each K against accuracy, ``model_alignment_mean`` and ``brain_r2`` (per ROI, subject
    ``"all"`` when present); log10 parameters against LID at each K; accuracy against log10
    parameters; the generalization diagnostics against the gap (:func:`generalization_pairs`)
    and weight-space stability against pretraining size, LID and alignment
    (:func:`spectral_pairs`, at rank ``spectral_rank``). Pairs whose y is absent from the
    tables (or all NaN) are left out.

    Parameters
    ----------
    measures, models : DataFrame
        The tidy tables; ``models`` may be None.
    estimator : str
        LID estimator.
    layer : str or None
        Layer; None when the table holds one.

    Returns
    -------
    list of (Quantity, Quantity)
        (x, y) pairs.
    """
    check_table(measures, MEASURE_COLUMNS, "measures")
    layer = _layer(measures, layer, "lid")
    lids = [
        Quantity("lid", estimator=estimator, k=k, layer=layer)
        for k in _scales(measures, "lid", estimator, layer)
    ]
    has: dict[str, bool] = {}
    if models is not None:
        check_table(models, MODEL_COLUMNS, "models")
        has = {c: bool(models[c].notna().any()) for c in ("accuracy", "n_params")}
    accuracy, log_params = Quantity("accuracy"), Quantity("n_params", log10=True)
    ys = [accuracy] if has.get("accuracy") else []
    for name in ("model_alignment_mean", "brain_r2"):
        ys += _variants(measures, name, layer)
    pairs = [(lid, y) for y in ys for lid in lids]
    if has.get("n_params"):
        pairs += [(log_params, lid) for lid in lids]
        if has.get("accuracy"):
            pairs.append((accuracy, log_params))
    overlap_ys = [accuracy] if has.get("accuracy") else []
    overlap_ys += _variants(measures, "model_alignment_mean", layer)
    return (
        pairs
        + generalization_pairs(measures)
        + spectral_pairs(measures, models, lids=lids, ys=overlap_ys, rank=spectral_rank)
    )


#: The fourth paper's per-model stability summaries (``[weights]`` stage rows).
SPECTRAL_MEASURES = ("spectral_overlap", "spectral_update_share")


def spectral_pairs(
    measures: pd.DataFrame,
    models: pd.DataFrame | None,
    *,
    lids: Sequence[Quantity] = (),
    ys: Sequence[Quantity] = (),
    rank: int = 16,
) -> list[tuple[Quantity, Quantity]]:
    """Weight-space stability against pretraining-set size, LID and alignment.

    Parameters
    ----------
    measures, models : DataFrame
        The tidy tables; the ``spectral_*`` rows come from a study's ``[weights]`` stage
        (``k`` = rank, ``estimator`` = depth bin, ``target`` = fine-tuning task).
    lids : sequence of Quantity
        LID quantities; each is an x against the overlap.
    ys : sequence of Quantity
        Quantities the overlap should predict (accuracy, model–model alignment).
    rank : int
        The rank r whose all-layer summary is correlated.

    Returns
    -------
    list of (Quantity, Quantity)
        Per task: (log10 pretraining size, overlap) and (log10 pretraining size, update
        share) when the models table has sizes; (LID, overlap) for each of ``lids``; (overlap,
        y) for each of ``ys``. Empty without ``spectral_*`` rows at ``rank``.
    """
    rows = measures[_equals(measures["measure"], SPECTRAL_MEASURES[0])]
    rows = rows[_equals(rows["k"], rank) & _equals(rows["estimator"], "all")]
    pairs: list[tuple[Quantity, Quantity]] = []
    has_sizes = models is not None and bool(models["pretrain_size"].notna().any())
    for task in sorted(rows["target"].dropna().unique()):
        overlap, share = (
            Quantity(name, estimator="all", k=rank, target=str(task), layer="weights")
            for name in SPECTRAL_MEASURES
        )
        if has_sizes:
            size = Quantity("pretrain_size", log10=True)
            pairs += [(size, overlap), (size, share)]
        pairs += [(lid, overlap) for lid in lids]
        pairs += [(overlap, y) for y in ys]
    return pairs


#: The third paper's diagnostics (x) and the gaps they should predict (y).
GENERALIZATION_X = ("gen_lid", "gen_w1", "gen_lipschitz", "gen_lipschitz_w1")
GENERALIZATION_Y = ("gen_gap_accuracy", "gen_gap_loss")


def generalization_pairs(
    measures: pd.DataFrame, *, min_models: int = 4
) -> list[tuple[Quantity, Quantity]]:
    """Each generalization diagnostic against each gap, per kind of head.

    Parameters
    ----------
    measures : DataFrame
        The measures table; its ``gen_*`` rows come from a study's ``[generalization]`` stage
        (estimator = head kind, ``own`` or ``probe``).
    min_models : int
        A head kind with fewer models is left out: its correlations would be undefined.

    Returns
    -------
    list of (Quantity, Quantity)
        For each head kind: (``gen_lid@mle@k=K``, ``gen_w1@METHOD``, ``gen_lipschitz@HEAD``,
        ``gen_lipschitz_w1@HEAD``) × (``gen_gap_accuracy@HEAD``, ``gen_gap_loss@HEAD``); empty
        without ``gen_*`` rows. Models with another head drop out of each pair by the join.
    """
    gaps = measures[_equals(measures["measure"], GENERALIZATION_Y[0])]
    counts = gaps["estimator"].value_counts()
    heads = sorted(str(h) for h, n in counts.items() if n >= min_models)
    pairs = []
    for head in heads:
        xs = [q for name in GENERALIZATION_X[:2] for q in _pinned_variants(measures, name)]
        xs += [Quantity(name, estimator=head) for name in GENERALIZATION_X[2:]]
        ys = [Quantity(name, estimator=head) for name in GENERALIZATION_Y]
        pairs += [(x, y) for y in ys for x in xs]
    return pairs


def _pinned_variants(measures: pd.DataFrame, name: str) -> list[Quantity]:
    """One quantity per (estimator, K) of ``name`` rows, both pinned."""
    rows = measures.loc[_equals(measures["measure"], name), ["estimator", "k"]].drop_duplicates()
    return [
        Quantity(name, estimator=str(e), k=None if pd.isna(k) else int(k))
        for e, k in rows.itertuples(index=False)
    ]


def zoo_statistics(
    measures: pd.DataFrame,
    models: pd.DataFrame | None,
    *,
    pairs: Sequence[tuple[Quantity | str, Quantity | str]] | None = None,
    covariates: Sequence[Quantity | str] = ("family", "log_params"),
    n_bootstrap: int = 10_000,
    n_permutations: int = 10_000,
    confidence: float = 0.95,
    ci_method: CIMethod = "BCa",
    random_state: RandomState = 0,
) -> pd.DataFrame:
    """The statistics table of a zoo: one row per (x, y) pair of per-model quantities.

    Parameters
    ----------
    measures, models : DataFrame
        The tidy tables of :mod:`repscope.results`.
    pairs : sequence of (Quantity or str, Quantity or str), or None
        (x, y) pairs, e.g. ``[("lid@mle@k=50", "accuracy")]``; None: :func:`default_pairs`.
    covariates : sequence of Quantity or str
        Controlled for in the partial correlation (Pearson); a covariate on the same column
        as x or y is left out for that pair; ``()`` skips the partial correlation.
    n_bootstrap, n_permutations, confidence, ci_method, random_state
        As in :func:`correlate`; every row uses ``random_state`` afresh.

    Returns
    -------
    DataFrame
        Columns :data:`ZOO_COLUMNS`: ``x, y, n_models, pearson_r, pearson_p, pearson_ci_low,
        pearson_ci_high, spearman_r, spearman_p, spearman_ci_low, spearman_ci_high,
        permutation_p, partial_r, partial_p, partial_n, partial_covariates`` (covariate names
        joined by ``+``; empty, with NaN partial values, when none applies).

    Raises
    ------
    InputError
        A pair or covariate that the tables cannot give; the message names the pair.
    """
    check_table(measures, MEASURE_COLUMNS, "measures")
    if pairs is None:
        parsed = default_pairs(measures, models)
    else:
        parsed = [(Quantity.parse(a), Quantity.parse(b)) for a, b in pairs]
    if not parsed:
        raise InputError("no pairs to correlate; pass pairs=[('lid@mle@k=50', 'accuracy')].")
    controls = [Quantity.parse(c) for c in covariates]
    options = dict(
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        confidence=confidence,
        ci_method=ci_method,
        random_state=random_state,
    )
    rows = [_pair_row(measures, models, x_q, y_q, controls, options) for x_q, y_q in parsed]
    return _table(rows, ZOO_COLUMNS)


def _pair_row(
    measures: pd.DataFrame,
    models: pd.DataFrame | None,
    x_q: Quantity,
    y_q: Quantity,
    controls: list[Quantity],
    options: dict[str, Any],
) -> dict[str, object]:
    x = _labelled(per_model, x_q, y_q, measures, models, x_q)
    y = _labelled(per_model, x_q, y_q, measures, models, y_q)
    c = _labelled(correlate, x_q, y_q, x, y, **options)
    used = [q for q in controls if q.name not in (x_q.name, y_q.name)]
    partial_row: dict[str, object] = {
        "partial_r": np.nan,
        "partial_p": np.nan,
        "partial_n": pd.NA,
        "partial_covariates": "+".join(str(q) for q in used),
    }
    if used:
        frame = {str(q): _labelled(per_model, x_q, y_q, measures, models, q) for q in used}
        try:
            pc = _labelled(partial_correlation, x_q, y_q, x, y, frame)
        except InputError as exc:  # too few models for the covariates, or x explained by them
            warnings.warn(f"partial correlation left NaN: {exc}", UserWarning, stacklevel=3)
        else:
            partial_row.update(partial_r=pc.r, partial_p=pc.p, partial_n=pc.n)
    return {"x": str(x_q), "y": str(y_q), **_correlation_row(c), **partial_row}
