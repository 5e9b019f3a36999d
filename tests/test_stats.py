"""Statistics across a zoo, with SciPy (and closed forms, and numpy least squares) as oracles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from repscope._validation import InputError
from repscope.results import MEASURE_COLUMNS, MODEL_COLUMNS
from repscope.stats import (
    BY_K_COLUMNS,
    ZOO_COLUMNS,
    Quantity,
    correlate,
    correlation_by_k,
    default_pairs,
    partial_correlation,
    per_model,
    scaling_fit,
    zoo_statistics,
)

FAST = {"n_bootstrap": 200, "n_permutations": 200}


def _one_line(excinfo: pytest.ExceptionInfo[InputError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message.endswith(".")
    return message


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    """15 models, y = 0.6 x + noise (seed 0)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(15)
    return x, 0.6 * x + rng.standard_normal(15)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return stats.pearsonr(a, b).statistic


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return stats.spearmanr(a, b).statistic


# --------------------------------------------------------------------------- correlate


def test_r_and_p_are_scipys(pair):
    x, y = pair
    c = correlate(x, y, **FAST)
    pearson, spearman = stats.pearsonr(x, y), stats.spearmanr(x, y)
    assert (c.pearson_r, c.pearson_p) == (pearson.statistic, pearson.pvalue)
    assert (c.spearman_r, c.spearman_p) == (spearman.statistic, spearman.pvalue)
    assert (c.n, c.n_dropped) == (15, 0)


@pytest.mark.parametrize("ci_method", ["BCa", "percentile"])
def test_bootstrap_ci_is_a_direct_scipy_bootstrap(pair, ci_method):
    x, y = pair
    c = correlate(
        x,
        y,
        n_bootstrap=300,
        n_permutations=0,
        confidence=0.9,
        ci_method=ci_method,
        random_state=3,
    )
    for statistic, ci in ((_pearson, c.pearson_ci), (_spearman, c.spearman_ci)):
        # the bootstrap draws from the first of the seed's two spawned children
        direct = stats.bootstrap(
            (x, y),
            statistic,
            paired=True,
            vectorized=False,
            n_resamples=300,
            confidence_level=0.9,
            method=ci_method,
            rng=np.random.default_rng(3).spawn(2)[0],
        )
        expected = (direct.confidence_interval.low, direct.confidence_interval.high)
        np.testing.assert_allclose(ci, expected, rtol=1e-12)
        assert ci[0] < statistic(x, y) < ci[1]
    assert "BCa" in c.method or ci_method == "percentile"


@pytest.mark.parametrize("n", [6, 15])  # 6! = 720 <= 999 pairings: SciPy's exact test
def test_permutation_p_is_scipys_permutation_test(n):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n)
    y = 0.5 * x + rng.standard_normal(n)
    c = correlate(x, y, n_bootstrap=0, n_permutations=999, random_state=5)
    direct = stats.permutation_test(
        (x, y),
        _pearson,
        permutation_type="pairings",
        vectorized=False,
        n_resamples=999,
        alternative="two-sided",
        rng=np.random.default_rng(5).spawn(2)[1],
    )
    assert c.permutation_p == direct.pvalue
    assert ("exact" in c.method) == (math.factorial(n) <= 999)
    assert np.isnan(c.pearson_ci).all()


def test_nan_pairs_are_dropped_and_counted(pair):
    x, y = pair[0].copy(), pair[1].copy()
    x[[2, 7]], y[[7, 11]] = np.nan, np.nan
    c = correlate(x, y, **FAST)
    keep = ~np.isnan(x) & ~np.isnan(y)
    clean = correlate(x[keep], y[keep], **FAST)
    assert (c.n, c.n_dropped) == (12, 3)
    assert (c.pearson_r, c.pearson_ci, c.permutation_p) == (
        clean.pearson_r,
        clean.pearson_ci,
        clean.permutation_p,
    )


def test_series_are_aligned_on_their_index(pair):
    x, y = pair
    names = [f"m{i}" for i in range(len(x))]
    xs = pd.Series(x, index=names)
    ys = pd.Series(y, index=names).iloc[::-1]
    extra = pd.concat([ys, pd.Series([5.0], index=["only_in_y"])])
    assert correlate(xs, ys, **FAST) == correlate(x, y, **FAST)
    assert correlate(xs, extra, **FAST).n_dropped == 1


def test_seeded_and_deterministic(pair):
    x, y = pair
    assert correlate(x, y, **FAST, random_state=7) == correlate(x, y, **FAST, random_state=7)
    other = correlate(x, y, **FAST, random_state=8)
    assert other.pearson_ci != correlate(x, y, **FAST, random_state=7).pearson_ci


def test_degenerate_resamples_give_nan_ci_with_a_warning():
    # 4 models: 4/256 of resamples repeat one model, whose r is undefined
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 5.0])
    with pytest.warns(RuntimeWarning, match="resamples have a constant variable"):
        c = correlate(x, y, n_bootstrap=2000, n_permutations=0)
    assert np.isnan(c.pearson_ci).all() and c.pearson_r == _pearson(x, y)


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        ([1.0, 2.0], [2.0, 1.0], {}, "2 models have both values .* at least 3"),
        ([np.nan] * 5, [1.0, 2, 3, 4, 5], {}, r"0 models .*\(5 dropped for NaN\)"),
        ([1.0, 2, 3, 4], [1.0, 2, 3], {}, r"lengths differ \(x=4, y=3\)"),
        ([1.0, 1, 1, 1, 1], [1.0, 2, 3, 4, 5], {}, "x is constant over the 5 models"),
        ([1.0, 2, 3], [1.0, 3, 2], {}, "at least 4 are needed, for a bootstrap CI"),
        ([[1.0, 2], [3, 4]], [1.0, 2], {}, "must be 1-D"),
        (["a", "b", "c"], [1.0, 2, 3], {}, "x is not numeric"),
        ([1.0, np.inf, 3, 4], [1.0, 2, 3, 4], {}, "x has infinite values"),
        ([1.0, 2, 3, 4], [1.0, 3, 2, 4], {"confidence": 95}, "confidence=95 must be in"),
        ([1.0, 2, 3, 4], [1.0, 3, 2, 4], {"ci_method": "bca"}, "ci_method='bca' is not"),
        ([1.0, 2, 3, 4], [1.0, 3, 2, 4], {"n_bootstrap": -1}, "n_bootstrap=-1 must be"),
    ],
)
def test_bad_input_is_a_one_line_error(x, y, kwargs, match):
    with pytest.raises(InputError, match=match) as excinfo:
        correlate(x, y, **{**FAST, **kwargs})
    _one_line(excinfo)


# --------------------------------------------------------------------------- partial correlation


def _ols_t_p(x: np.ndarray, y: np.ndarray, design: np.ndarray) -> float:
    """p of x's coefficient in OLS y ~ [x, design]: the textbook partial-correlation test."""
    full = np.column_stack([x, design])
    beta, *_ = np.linalg.lstsq(full, y, rcond=None)
    dof = len(y) - full.shape[1]
    sigma2 = np.sum((y - full @ beta) ** 2) / dof
    se = np.sqrt(sigma2 * np.linalg.inv(full.T @ full)[0, 0])
    return 2 * stats.t.sf(abs(beta[0] / se), dof)


def _closed_form(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    r_xy, r_xz, r_yz = _pearson(x, y), _pearson(x, z), _pearson(y, z)
    return (r_xy - r_xz * r_yz) / np.sqrt((1 - r_xz**2) * (1 - r_yz**2))


@pytest.fixture
def confounded() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """30 models: z drives x and y, which share a little more besides."""
    rng = np.random.default_rng(2)
    z, shared = rng.standard_normal(30), rng.standard_normal(30)
    x = z + 0.5 * shared + 0.5 * rng.standard_normal(30)
    return x, z - 0.4 * shared + 0.5 * rng.standard_normal(30), z


def test_partial_with_one_numeric_covariate_is_the_closed_form(confounded):
    x, y, z = confounded
    pc = partial_correlation(x, y, {"z": z})
    assert pc.r == pytest.approx(_closed_form(x, y, z), abs=1e-12)
    assert pc.p == pytest.approx(_ols_t_p(x, y, np.column_stack([np.ones(30), z])), rel=1e-9)
    assert (pc.df, pc.n, pc.n_covariate_columns, pc.covariates) == (27, 30, 1, ("z",))


def test_spearman_partial_is_the_closed_form_on_ranks(confounded):
    x, y, z = confounded
    pc = partial_correlation(x, y, {"z": z}, method="spearman")
    ranks = [stats.rankdata(v) for v in (x, y, z)]
    assert pc.r == pytest.approx(_closed_form(*ranks), abs=1e-12)


def test_partial_with_a_categorical_covariate_is_lstsq_residual_correlation():
    rng = np.random.default_rng(4)
    family = np.array(["cnn", "mlp", "vit"] * 6)
    level = pd.Series(family).map({"cnn": 0.0, "mlp": 2.0, "vit": -1.0}).to_numpy()
    size = rng.standard_normal(18)
    x, y = level + rng.standard_normal(18), level + 0.5 * rng.standard_normal(18)
    design = np.column_stack([np.ones(18), family == "mlp", family == "vit", size])
    residuals = [v - design @ np.linalg.lstsq(design, v, rcond=None)[0] for v in (x, y)]
    pc = partial_correlation(x, y, {"family": family, "size": size})
    assert pc.r == pytest.approx(_pearson(*residuals), abs=1e-12)
    assert pc.p == pytest.approx(_ols_t_p(x, y, design), rel=1e-9)
    assert (pc.df, pc.n_covariate_columns) == (18 - 2 - 3, 3)


def test_a_covariate_that_explains_the_correlation_drives_partial_r_to_zero():
    rng = np.random.default_rng(5)
    z = rng.standard_normal(200)
    x, y = z + 0.2 * rng.standard_normal(200), z + 0.2 * rng.standard_normal(200)
    assert _pearson(x, y) > 0.9
    pc = partial_correlation(x, y, {"z": z})
    assert abs(pc.r) < 0.15 and pc.p > 0.05


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.01, 100), shift=st.floats(-1e3, 1e3))
def test_partial_r_is_affine_and_order_invariant(seed, scale, shift):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(12)
    x, y = z + rng.standard_normal(12), z + rng.standard_normal(12)
    pc = partial_correlation(x, y, {"z": z})
    order = rng.permutation(12)
    moved = partial_correlation(
        scale * x[order] + shift, y[order] - shift, {"z": scale * z[order] + shift}
    )
    assert moved.r == pytest.approx(pc.r, abs=1e-9)
    assert pc.r == pytest.approx(_closed_form(x, y, z), abs=1e-12)


def test_partial_bootstrap_ci_is_a_direct_scipy_bootstrap(confounded):
    x, y, z = confounded

    def residual_r(a, b, c):
        design = np.column_stack([np.ones_like(c), c])
        res = [v - design @ np.linalg.lstsq(design, v, rcond=None)[0] for v in (a, b)]
        return _pearson(*res)

    pc = partial_correlation(x, y, {"z": z}, n_bootstrap=300, random_state=9)
    direct = stats.bootstrap(
        (x, y, z),
        residual_r,
        paired=True,
        vectorized=False,
        n_resamples=300,
        rng=np.random.default_rng(9),
    )
    expected = (direct.confidence_interval.low, direct.confidence_interval.high)
    np.testing.assert_allclose(pc.ci, expected, rtol=1e-10)
    assert pc.ci[0] < pc.r < pc.ci[1]


def test_partial_aligns_pandas_inputs_and_drops_missing(confounded):
    x, y, z = confounded
    names = [f"m{i}" for i in range(30)]
    zs = pd.Series(z, index=names)
    zs.iloc[3] = np.nan
    frame = pd.DataFrame({"z": zs}).iloc[::-1]
    pc = partial_correlation(pd.Series(x, index=names), pd.Series(y, index=names), frame)
    keep = np.arange(30) != 3
    assert (pc.n, pc.n_dropped) == (29, 1)
    assert pc.r == pytest.approx(_closed_form(x[keep], y[keep], z[keep]), abs=1e-12)


@pytest.mark.parametrize(
    ("covariates", "kwargs", "match"),
    [
        ({"twice_x": "X2"}, {}, "x is a linear function of the covariates"),
        ({"id": [f"m{i}" for i in range(8)]}, {}, "at least 10 are needed, with 7 covariate"),
        ({"z": [1.0] * 7}, {}, r"lengths differ \(x=8, y=8, covariates=7\)"),
        ([1.0] * 8, {}, "covariates is a list; pass a pandas DataFrame"),
        ({}, {"method": "kendall"}, "method='kendall' is not known"),
    ],
)
def test_partial_bad_input_is_a_one_line_error(covariates, kwargs, match):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal(8), rng.standard_normal(8)
    if covariates == {"twice_x": "X2"}:
        covariates = {"twice_x": 2 * x + 1}
    with pytest.raises(InputError, match=match) as excinfo:
        partial_correlation(x, y, covariates, **kwargs)
    _one_line(excinfo)


# --------------------------------------------------------------------------- scaling fit


def test_scaling_fit_is_linregress_on_log10_x():
    rng = np.random.default_rng(7)
    params = 10 ** rng.uniform(6, 9, 20)
    lid = 40 - 3 * np.log10(params) + rng.standard_normal(20)
    fit, ref = scaling_fit(params, lid, confidence=0.9), stats.linregress(np.log10(params), lid)
    assert (fit.slope, fit.intercept, fit.r, fit.p) == (
        ref.slope,
        ref.intercept,
        ref.rvalue,
        ref.pvalue,
    )
    assert (fit.slope_stderr, fit.intercept_stderr, fit.r_squared) == (
        ref.stderr,
        ref.intercept_stderr,
        ref.rvalue**2,
    )
    half = stats.t.ppf(0.95, 18) * ref.stderr
    np.testing.assert_allclose(fit.slope_ci, (ref.slope - half, ref.slope + half), rtol=1e-12)
    assert fit.slope_ci[0] < -3 < fit.slope_ci[1]
    assert scaling_fit(params, lid, log_x=False).slope == stats.linregress(params, lid).slope


def test_scaling_fit_refuses_log_of_non_positive_x():
    with pytest.raises(InputError, match="x has 1 values <= 0") as excinfo:
        scaling_fit([0.0, 1.0, 10.0], [3.0, 2.0, 1.0])
    _one_line(excinfo)


# --------------------------------------------------------------------------- tidy tables


def _row(model, measure, value, *, estimator="", k=None, subject="", roi="", target=""):
    return {
        "model": model,
        "layer": "penultimate",
        "measure": measure,
        "estimator": estimator,
        "k": k,
        "subject": subject,
        "roi": roi,
        "target": target,
        "value": value,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "n": 100,
    }


def _measures(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(MEASURE_COLUMNS)).astype(MEASURE_COLUMNS)


def _models(names, family, n_params, accuracy) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "model": names,
            "family": family,
            "n_params": n_params,
            "pretrain_data": "in1k",
            "pretrain_size": 1.28e6,
            "accuracy": accuracy,
            "accuracy_source": "metadata",
        }
    )
    return table[list(MODEL_COLUMNS)].astype(MODEL_COLUMNS)


def test_quantity_strings_round_trip():
    for text in ("lid@mle@k=50", "brain_r2@ridge@subject=all@roi=EBA", "log10(n_params)", "a"):
        assert str(Quantity.parse(text)) == text
    assert Quantity.parse("lid@mle@K=50") == Quantity("lid", estimator="mle", k=50)
    assert str(Quantity("pca90", estimator="")) == "pca90@estimator="
    for bad, match in (
        ("lid@k=big", "k='big'"),
        ("lid@colour=red", "unknown part"),
        ("", "non-empty"),
    ):
        with pytest.raises(InputError, match=match) as excinfo:
            Quantity.parse(bad)
        _one_line(excinfo)


@pytest.fixture
def brain_table() -> pd.DataFrame:
    rows = []
    for i, model in enumerate("abcdef"):
        for subject in ("1", "all"):
            for roi in ("EBA", "V1"):
                rows.append(
                    _row(model, "brain_r2", 0.1 * i, estimator="ridge", subject=subject, roi=roi)
                )
    return _measures(rows)


def test_per_model_reads_one_value_per_model(brain_table):
    values = per_model(brain_table, None, "brain_r2@subject=all@roi=V1")
    assert values.name == "brain_r2@subject=all@roi=V1"
    assert values.index.tolist() == list("abcdef")
    np.testing.assert_allclose(values.to_numpy(), 0.1 * np.arange(6))


@pytest.mark.parametrize(
    ("quantity", "match"),
    [
        ("brain_r2@roi=V1", r"several rows per model, differing in subject \(\['1', 'all'\]\)"),
        ("brain_r2@subject=all@roi=FFA", r"no 'brain_r2' rows with roi='FFA'.*\['EBA', 'V1'\]"),
        ("lid@mle@k=5", "neither a measure in the measures table"),
        ("accuracy", "is a column of the models table; pass that table"),
        ("log10(brain_r2@subject=all@roi=EBA)", "needs positive values, but 1 are <= 0"),
    ],
)
def test_per_model_errors_name_the_fix(brain_table, quantity, match):
    with pytest.raises(InputError, match=match) as excinfo:
        per_model(brain_table, None, quantity)
    _one_line(excinfo)


def test_models_columns_take_no_filters():
    models = _models(list("abc"), "cnn", [1e6, 1e7, 1e8], [0.5, 0.6, 0.7])
    with pytest.raises(InputError, match="takes no k") as excinfo:
        per_model(None, models, "accuracy@k=5")
    _one_line(excinfo)


K_SCALES = (5, 10, 20, 50, 100, 200, 500, 1000)
DECAY_WEIGHTS = 0.9 * np.linspace(1, 0, len(K_SCALES))  # of accuracy in LID, K = 5 … 1000


@pytest.fixture
def decaying_zoo() -> tuple[pd.DataFrame, pd.DataFrame]:
    """12 models whose LID is tied to accuracy at small K and is noise at large K."""
    rng = np.random.default_rng(11)
    names = [f"m{i:02d}" for i in range(12)]
    accuracy = rng.uniform(0.6, 0.9, 12)
    signal = -(accuracy - accuracy.mean()) / accuracy.std()
    noise = rng.standard_normal(12)
    noise -= noise.mean() + (noise @ signal) / (signal @ signal) * signal
    noise /= noise.std()  # centred, orthogonal to the signal, unit sd: r(K) is known exactly
    rows = []
    for weight, k in zip(DECAY_WEIGHTS, K_SCALES, strict=True):
        lid = 20 + weight * signal + (1 - weight) * noise
        rows += [_row(m, "lid", v, estimator="mle", k=k) for m, v in zip(names, lid, strict=True)]
        rows += [_row(m, "lid", v, estimator="mom", k=k) for m, v in zip(names, -lid, strict=True)]
    for measure in ("pca90", "participation_ratio"):
        rows += [_row(m, measure, v) for m, v in zip(names, rng.uniform(10, 50, 12), strict=True)]
    return _measures(rows), _models(names, "convnext", 10 ** rng.uniform(6, 9, 12), accuracy)


def test_correlation_by_k_recovers_the_local_to_global_decay(decaying_zoo):
    measures, models = decaying_zoo
    table = correlation_by_k(measures, models, y="accuracy", **FAST)
    assert list(table.columns) == list(BY_K_COLUMNS)
    by_k = table[table["k"].notna()]
    assert by_k["k"].tolist() == list(K_SCALES)
    assert (by_k["x"] == [f"lid@mle@k={k}" for k in K_SCALES]).all()
    r = by_k["pearson_r"].to_numpy()
    w = DECAY_WEIGHTS
    np.testing.assert_allclose(r, -w / np.sqrt(w**2 + (1 - w) ** 2), atol=1e-12)
    assert r[0] < -0.99 and (np.diff(r) > 0).all()
    assert by_k["pearson_ci_high"].iloc[0] < 0 < by_k["pearson_ci_high"].iloc[-1]
    reference = table[table["k"].isna()]
    assert reference["measure"].tolist() == ["pca90", "participation_ratio"]
    lid50 = per_model(measures, models, "lid@mle@k=50")
    direct = correlate(lid50, per_model(measures, models, "accuracy"), **FAST)
    row = table[table["k"] == 50].iloc[0]
    assert (row["pearson_r"], row["pearson_ci_low"], row["permutation_p"]) == (
        direct.pearson_r,
        direct.pearson_ci[0],
        direct.permutation_p,
    )
    mom = correlation_by_k(measures, models, y="accuracy", estimator="mom", **FAST)
    np.testing.assert_allclose(mom["pearson_r"][:8], -r, rtol=1e-12)


def test_correlation_by_k_names_a_missing_estimator(decaying_zoo):
    measures, models = decaying_zoo
    with pytest.raises(InputError, match=r"no 'lid' rows with estimator='twonn'.*\['mle', 'mom'\]"):
        correlation_by_k(measures, models, y="accuracy", estimator="twonn", **FAST)


@pytest.fixture
def small_zoo() -> tuple[pd.DataFrame, pd.DataFrame]:
    """8 models in two families with LID, alignment, brain R² (2 subjects × 2 ROIs), metadata."""
    rng = np.random.default_rng(12)
    names = list("abcdefgh")
    rows = []
    for m in names:
        rows += [_row(m, "lid", rng.uniform(10, 30), estimator="mle", k=k) for k in (10, 50)]
        rows += [_row(m, "model_alignment_mean", rng.uniform(), estimator="ridge")]
        for subject in ("1", "all"):
            rows += [
                _row(m, "brain_r2", rng.uniform(), estimator="ridge", subject=subject, roi=roi)
                for roi in ("EBA", "V1")
            ]
    accuracy = rng.uniform(0.5, 0.9, 8)
    accuracy[2] = np.nan
    models = _models(names, ["cnn", "mlp"] * 4, 10 ** rng.uniform(6, 9, 8), accuracy)
    return _measures(rows), models


def test_zoo_statistics_gives_the_paper_pairs(small_zoo):
    measures, models = small_zoo
    table = zoo_statistics(measures, models, **FAST)
    assert list(table.columns) == list(ZOO_COLUMNS)
    lids = ["lid@mle@k=10", "lid@mle@k=50"]
    ys = [
        "accuracy",
        "model_alignment_mean",
        "brain_r2@subject=all@roi=EBA",
        "brain_r2@subject=all@roi=V1",
    ]
    expected = [(lid, y) for y in ys for lid in lids]
    expected += [("log10(n_params)", lid) for lid in lids] + [("accuracy", "log10(n_params)")]
    assert list(zip(table["x"], table["y"], strict=True)) == expected
    assert table["n_models"].tolist() == [7, 7] + [8] * 6 + [8, 8, 7]
    covariates = table.set_index(["x", "y"])["partial_covariates"]
    assert covariates[("lid@mle@k=50", "accuracy")] == "family+log10(n_params)"
    assert covariates[("accuracy", "log10(n_params)")] == "family"

    x = per_model(measures, models, "lid@mle@k=50")
    y = per_model(measures, models, "brain_r2@subject=all@roi=V1")
    direct = correlate(x, y, **FAST)
    family = models.set_index("model")["family"]
    log_params = np.log10(models.set_index("model")["n_params"])
    pc = partial_correlation(x, y, {"family": family, "log10(n_params)": log_params})
    row = table[(table["x"] == "lid@mle@k=50") & (table["y"] == ys[-1])].iloc[0]
    assert (row["pearson_r"], row["spearman_ci_high"], row["permutation_p"]) == (
        direct.pearson_r,
        direct.spearman_ci[1],
        direct.permutation_p,
    )
    assert (row["partial_r"], row["partial_p"], row["partial_n"]) == (pc.r, pc.p, 8)


def test_zoo_statistics_is_deterministic_and_takes_explicit_pairs(small_zoo):
    measures, models = small_zoo
    pairs = [("lid@mle@k=10", "brain_r2@subject=1@roi=EBA")]
    first = zoo_statistics(measures, models, pairs=pairs, covariates=(), **FAST)
    pd.testing.assert_frame_equal(
        first, zoo_statistics(measures, models, pairs=pairs, covariates=(), **FAST)
    )
    assert first["partial_covariates"].tolist() == [""] and first["partial_r"].isna().all()
    assert len(default_pairs(measures, None)) == 2 * 3  # no models table: no accuracy, params


@pytest.mark.parametrize(
    ("pairs", "match"),
    [
        ([("lid@mle@k=10", "brain_r2@roi=EBA")], r"pair \(lid@mle@k=10, brain_r2@roi=EBA\):"),
        ([("lid@mle@k=10", "cka")], "'cka' is neither a measure"),
        ([], "no pairs to correlate"),
    ],
)
def test_zoo_statistics_errors_name_the_pair(small_zoo, pairs, match):
    measures, models = small_zoo
    with pytest.raises(InputError, match=match) as excinfo:
        zoo_statistics(measures, models, pairs=pairs, **FAST)
    _one_line(excinfo)
