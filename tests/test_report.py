"""Figures and the HTML report on small hand-built tidy tables; the report in headless Chromium."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from matplotlib import colormaps, colors
from matplotlib._pylab_helpers import Gcf
from PIL import Image
from scipy.stats import pearsonr

from repscope._validation import InputError
from repscope.io.atomic import TEMP_PREFIX
from repscope.report import (
    OKABE_ITO,
    brain_alignment_bars,
    correlation_by_k,
    lid_profiles,
    lid_scaling,
    lid_scatter,
    measure_summary,
    profile_comparison,
    save_figure,
    scale_invariance_vs_brain,
    study_figures,
    write_report,
)
from repscope.results import MEASURE_COLUMNS, MODEL_COLUMNS
from repscope.stats import correlation_by_k as stats_correlation_by_k
from repscope.stats import zoo_statistics

KS = (5, 10, 20, 50, 100)
MODELS = ("m-a1", "m-a2", "m-b1", "m-b2", "m-c1")
FAMILIES = ("A", "A", "B", "B", "C")
SUBJECTS = ("1", "2", "3")
ROIS = ("EBA", "V1")
PALETTE = {colors.to_hex(c) for c in OKABE_ITO}


def _lid(i: int, k: int) -> float:
    # a deterministic wiggle keeps the relations below from being exactly linear
    return 10.0 + 2.0 * i + 1.5 * np.log(k) + 1.5 * np.sin(3 * i + k)


def _measure_rows() -> list[dict]:
    """Model i: LID grows with i; alignment, accuracy and brain R² fall with i (plus wiggle)."""
    rows = []
    base = {"layer": "penultimate", "subject": "", "roi": "", "target": "", "n": 200}
    for i, model in enumerate(MODELS):
        m = {**base, "model": model}
        for k in KS:
            rows.append({**m, "measure": "lid", "estimator": "mle", "k": k, "value": _lid(i, k)})
            rows.append(
                {**m, "measure": "lid", "estimator": "mom", "k": k, "value": _lid(i, k) + 1}
            )
        rows.append({**m, "measure": "lid_slope", "estimator": "mle", "value": 1.5 + 0.2 * i})
        rows.append({**m, "measure": "pca90", "estimator": "", "value": 30.0 + 3 * np.sin(i)})
        alignment = 0.8 - 0.07 * i + 0.03 * np.cos(2 * i)
        rows.append(
            {**m, "measure": "model_alignment_mean", "estimator": "ridge", "value": alignment}
        )
        for roi_shift, roi in enumerate(ROIS):
            for s, subject in enumerate((*SUBJECTS, "all")):
                value = 0.3 - 0.03 * i - 0.1 * roi_shift + 0.01 * (s % 2)
                rows.append(
                    {**m, "measure": "brain_r2", "estimator": "ridge", "subject": subject,
                     "roi": roi, "value": value}
                )  # fmt: skip
    for roi_shift, roi in enumerate(ROIS):
        for subject in SUBJECTS:
            for k in KS:
                rows.append(
                    {**base, "model": "brain", "layer": "", "measure": "roi_lid",
                     "estimator": "mle", "subject": subject, "roi": roi,
                     "value": 5.0 + np.log(k) ** (2 - roi_shift), "k": k}
                )  # fmt: skip
    return rows


def _frame(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


@pytest.fixture
def measures() -> pd.DataFrame:
    return _frame(_measure_rows(), MEASURE_COLUMNS)


@pytest.fixture
def models() -> pd.DataFrame:
    rows = [
        {"model": m, "family": f, "n_params": 10.0 ** (6 + i / 2), "pretrain_data": "in1k",
         "pretrain_size": 1.2e6 * (1 + i), "accuracy": 0.9 - 0.04 * i - 0.01 * (i % 2),
         "accuracy_source": "metadata"}
        for i, (m, f) in enumerate(zip(MODELS, FAMILIES, strict=True))
    ]  # fmt: skip
    return _frame(rows, MODEL_COLUMNS)


@pytest.fixture
def by_k() -> pd.DataFrame:
    rows = [
        {"k": k, "measure": "lid", "pearson_r": -0.9 + 0.1 * j, "pearson_ci_low": -0.99 + 0.1 * j,
         "pearson_ci_high": -0.6 + 0.1 * j, "pearson_p": 0.01}
        for j, k in enumerate(KS)
    ]  # fmt: skip
    rows += [
        {"k": None, "measure": name, "pearson_r": r, "pearson_ci_low": r - 0.3,
         "pearson_ci_high": r + 0.3, "pearson_p": 0.5}
        for name, r in (("pca90", -0.1), ("participation_ratio", 0.2))
    ]  # fmt: skip
    return pd.DataFrame(rows).astype({"k": "Int64"})


@pytest.fixture
def statistics() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": ["lid@50", "lid@100"],
            "y": ["model_alignment_mean", "accuracy"],
            "n_models": [5, 5],
            "pearson_r": [-0.95, -0.5],
            "pearson_p": [0.01, 0.3],
            "pearson_ci_low": [-0.99, -0.9],
            "pearson_ci_high": [-0.7, 0.4],
            "spearman_r": [-0.9, -0.4],
            "permutation_p": [0.02, 0.35],
            "partial_r": [-0.8, np.nan],
        }
    )


def _hex(color) -> str:
    return colors.to_hex(color)


def _assert_labelled(fig) -> None:
    ax = fig.axes[0]
    assert ax.get_xlabel().strip() and ax.get_ylabel().strip() and ax.get_title().strip()


def _points(fig) -> np.ndarray:
    return np.concatenate([c.get_offsets() for c in fig.axes[0].collections])


# ---------------------------------------------------------------------- figures


def test_lid_profiles_one_viridis_line_per_model_log_k(measures, models):
    fig = lid_profiles(measures, models, "n_params")
    ax = fig.axes[0]
    _assert_labelled(fig)
    assert ax.get_xscale() == "log"
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == list(MODELS)
    np.testing.assert_allclose(lines[2].get_xdata(), KS)
    np.testing.assert_allclose(lines[2].get_ydata(), [_lid(2, k) for k in KS])
    # smallest model darkest, largest brightest on viridis' log scale
    viridis = colormaps["viridis"]
    assert _hex(lines[0].get_color()) == _hex(viridis(0.0))
    assert _hex(lines[-1].get_color()) == _hex(viridis(1.0))
    assert fig.axes[1].get_ylabel() == "parameters (count, log scale)"  # the colour bar


def test_lid_profiles_grey_for_unknown_size(measures, models):
    models.loc[models["model"] == "m-b1", "pretrain_size"] = np.nan
    ax = lid_profiles(measures, models, "pretrain_size").axes[0]
    colors_by_model = {line.get_label(): _hex(line.get_color()) for line in ax.get_lines()}
    assert colors_by_model["m-b1"] == "#999999"
    assert "#999999" not in {c for m, c in colors_by_model.items() if m != "m-b1"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pretrain_size unknown"]


def test_lid_profiles_errors(measures, models):
    with pytest.raises(InputError, match="not a size column"):
        lid_profiles(measures, models, "accuracy")
    with pytest.raises(InputError, match=r"several LID rows at one K .*mle.*mom"):
        lid_profiles(measures, models, estimator=None)
    with pytest.raises(InputError, match="lacks columns \\['k'\\]"):
        lid_profiles(measures.drop(columns="k"), models)
    with pytest.raises(InputError, match="lists \\['m-a1'\\] twice"):
        lid_profiles(measures, pd.concat([models, models.iloc[:1]]))


def test_lid_scatter_points_palette_and_r(measures, models):
    fig = lid_scatter(measures, models, "model_alignment_mean", 50)
    _assert_labelled(fig)
    ax = fig.axes[0]
    xy = _points(fig)
    assert len(xy) == len(MODELS)
    assert {_hex(c.get_facecolor()[0]) for c in ax.collections} <= PALETTE
    assert len(ax.collections) == len(set(FAMILIES))  # one scatter per family
    assert ax.get_xlabel() == "LID at K=50 (dimensions)"
    r = pearsonr(xy[:, 0], xy[:, 1]).statistic
    assert f"Pearson r = {r:.2f} (Fisher-z 95 % CI" in ax.get_title()
    assert len(ax.get_lines()) == 1  # the least-squares line


def test_lid_scatter_uses_the_stats_row(measures, models, statistics):
    row = statistics.iloc[0]
    title = lid_scatter(measures, models, "accuracy", 50, stats_row=row).axes[0].get_title()
    assert "Pearson r = -0.95 (95 % CI -0.99 to -0.70), p = 0.01, n = 5" in title
    with pytest.raises(InputError, match=r"stats_row lacks \['n_models'\]"):
        lid_scatter(measures, models, "accuracy", 50, stats_row=row.drop("n_models"))


def test_lid_scatter_stats_row_without_ci(measures, models, statistics):
    row = statistics.iloc[0].copy()
    row[["pearson_ci_low", "pearson_ci_high", "pearson_p"]] = np.nan
    title = lid_scatter(measures, models, "accuracy", 50, stats_row=row).axes[0].get_title()
    assert "Pearson r = -0.95 (95 % CI undefined), p undefined, n = 5" in title


def test_study_figures_take_r_and_ci_from_the_stats_tables(measures, models):
    # percentile CIs: five hand-made models give some all-|r| = 1 bootstrap distributions
    options = {"n_bootstrap": 200, "n_permutations": 200, "ci_method": "percentile"}
    pairs = [("lid@mle@k=50", "accuracy"), ("log10(n_params)", "lid@mle@k=50")]
    table = zoo_statistics(measures, models, pairs=pairs, covariates=(), **options)
    curve = stats_correlation_by_k(measures, models, y="accuracy", **options)
    figures, notes = study_figures(
        measures, models, statistics=table, correlation_by_k=curve, k_brain=100
    )
    assert notes == []
    by_title = {title: fig for title, fig, _ in figures}
    row = table[(table["x"] == "lid@mle@k=50") & (table["y"] == "accuracy")].iloc[0]
    ci = f"95 % CI {row['pearson_ci_low']:.2f} to {row['pearson_ci_high']:.2f})"
    assert (
        f"Pearson r = {row['pearson_r']:.2f} ({ci}"
        in by_title["LID vs generalization"].axes[0].get_title()
    )
    scaling = by_title["LID vs parameter count"].axes[0].get_title()
    assert "Fisher-z" not in scaling  # the (log10(n_params), lid@mle@k=50) row, reversed
    assert "Fisher-z" in by_title["LID vs pretraining data size"].axes[0].get_title()  # no row
    curve_fig = by_title["Correlation with accuracy over K"]
    labelled = [ln.get_label() for ln in curve_fig.axes[0].get_lines()]
    assert "lid" in labelled and "pca90 (global)" in labelled


def test_lid_scatter_brain_needs_one_roi(measures, models):
    fig = lid_scatter(measures, models, "brain_r2", 100, roi="V1")
    assert fig.axes[0].get_ylabel() == "brain alignment (mean held-out R²), V1"
    np.testing.assert_allclose(
        np.sort(_points(fig)[:, 1]), np.sort(0.21 - 0.03 * np.arange(5))
    )  # "all" = index 3: +0.01
    with pytest.raises(InputError, match=r"2 rows for model 'm-a1' \(they differ in \['roi'\]\)"):
        lid_scatter(measures, models, "brain_r2", 100)
    with pytest.raises(InputError, match=r"no 'brain_r2' rows with roi='FFA'.*\['EBA', 'V1'\]"):
        lid_scatter(measures, models, "brain_r2", 100, roi="FFA")
    with pytest.raises(InputError, match=r"no 'lid' rows with k=7; .*\[5, 10, 20, 50, 100\]"):
        lid_scatter(measures, models, "accuracy", 7)


def test_lid_scatter_needs_three_models(measures, models):
    models["accuracy"] = [np.inf, np.nan, 0.8, 0.7, 0.6]  # not finite: left out
    assert len(_points(lid_scatter(measures, models, "accuracy", 50))) == 3
    with pytest.raises(InputError, match="only 2 models have both lid and accuracy"):
        lid_scatter(measures, models.iloc[:4], "accuracy", 50)


def test_correlation_by_k_curve_band_and_global_lines(by_k):
    fig = correlation_by_k(by_k, y_name="alignment")
    _assert_labelled(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labelled = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert set(labelled) == {"lid", "pca90 (global)", "participation_ratio (global)"}
    np.testing.assert_allclose(labelled["lid"].get_ydata(), by_k["pearson_r"][:5])
    np.testing.assert_allclose(labelled["pca90 (global)"].get_ydata(), [-0.1, -0.1])
    assert len(ax.collections) == 1  # one CI band for the one local measure
    assert {_hex(ln.get_color()) for ln in labelled.values()} <= PALETTE
    assert len({_hex(ln.get_color()) for ln in labelled.values()}) == 3


def test_correlation_by_k_errors(by_k):
    with pytest.raises(InputError, match=r"lacks columns \['pearson_ci_low'\]"):
        correlation_by_k(by_k.drop(columns="pearson_ci_low"))
    with pytest.raises(InputError, match="no rows with K"):
        correlation_by_k(by_k[by_k["k"].isna()])
    with pytest.raises(InputError, match="two rows for one measure and K"):
        correlation_by_k(pd.concat([by_k, by_k]))
    with pytest.raises(InputError, match="table is empty"):
        correlation_by_k(by_k.iloc[:0])


def test_brain_alignment_bars_per_roi_and_subject(measures):
    fig = brain_alignment_bars(measures)
    _assert_labelled(fig)
    ax = fig.axes[0]
    assert len(ax.patches) == len(ROIS) * len(SUBJECTS)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(ROIS)
    bar_colors = [_hex(p.get_facecolor()) for p in ax.patches]
    assert bar_colors == [_hex(c) for c in OKABE_ITO[:3] for _ in ROIS]
    # subject 1's EBA bar: mean over models of 0.3 - 0.03 i
    assert ax.patches[0].get_height() == pytest.approx(0.3 - 0.03 * 2)
    (errorbar,) = ax.containers[-1:]
    assert errorbar.get_label() == "mean ± sd over subjects"
    assert "mean over 5 models" in ax.get_title()


def test_brain_alignment_bars_without_brain_rows(measures):
    no_brain = measures[~measures["measure"].str.startswith("brain_")]
    with pytest.raises(InputError, match="the measures table has no 'brain_r2' rows"):
        brain_alignment_bars(no_brain)
    with pytest.raises(InputError, match="not a brain measure"):
        brain_alignment_bars(measures, measure="lid")


def test_lid_scaling_fit_on_log_size(measures, models):
    models.loc[models["model"] == "m-c1", "n_params"] = np.nan  # left out
    fig = lid_scaling(measures, models, "n_params", 50)
    _assert_labelled(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    xy = _points(fig)
    assert len(xy) == 4
    slope = np.polyfit(np.log10(xy[:, 0]), xy[:, 1], 1)[0]
    assert f"vs log10 n_params: {slope:+.2f} dimensions per tenfold" in ax.get_title()
    # known answer from the fixture: models 0-3 sit half a decade apart
    expected = np.polyfit(6 + np.arange(4) / 2, [_lid(i, 50) for i in range(4)], 1)[0]
    assert slope == pytest.approx(expected)


def test_profile_comparison_z_scored_lines(measures):
    fig = profile_comparison(measures)
    _assert_labelled(fig)
    lines = fig.axes[0].get_lines()
    assert len(lines) == len(MODELS) + len(ROIS)
    for line in lines:
        y = line.get_ydata()
        assert np.mean(y) == pytest.approx(0, abs=1e-12)
        assert np.std(y) == pytest.approx(1)
    roi_colors = {_hex(line.get_color()) for line in lines[len(MODELS) :]}
    assert roi_colors <= PALETTE and len(roi_colors) == len(ROIS)
    assert "mean over 3 subjects" in fig.axes[0].get_title()


def test_profile_comparison_needs_roi_rows_and_common_k(measures):
    with pytest.raises(InputError, match="no 'roi_lid' rows"):
        profile_comparison(measures[measures["measure"] != "roi_lid"])
    few = measures[~((measures["measure"] == "roi_lid") & measures["k"].isin([5, 10, 20]))]
    with pytest.raises(InputError, match="share 2 values of K"):
        profile_comparison(few)


def test_scale_invariance_vs_brain(measures, models):
    fig = scale_invariance_vs_brain(measures, "EBA", models=models)
    _assert_labelled(fig)
    xy = _points(fig)
    np.testing.assert_allclose(np.sort(xy[:, 0]), 1.5 + 0.2 * np.arange(5))
    assert "EBA" in fig.axes[0].get_ylabel()
    assert "p < 0.0001, n = 5" in fig.axes[0].get_title()  # r = -1 exactly: p is not "0"
    single = scale_invariance_vs_brain(measures, "V1")  # no models table: one colour
    assert {_hex(c.get_facecolor()[0]) for c in single.axes[0].collections} == {_hex(OKABE_ITO[0])}


def test_figures_stay_out_of_pyplot(measures, models):
    before = Gcf.get_num_fig_managers()
    lid_profiles(measures, models)
    brain_alignment_bars(measures)
    assert Gcf.get_num_fig_managers() == before


def test_save_figure_png_and_svg(tmp_path, measures, models):
    fig = lid_scatter(measures, models, "accuracy", 50)
    png, svg = save_figure(fig, tmp_path / "out" / "scatter", dpi=50)
    assert (png.name, svg.name) == ("scatter.png", "scatter.svg")
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (round(6.4 * 50), round(4.4 * 50))
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # no date stamp, fixed id salt: the same figure drawn again gives the same bytes
    again = lid_scatter(measures, models, "accuracy", 50)
    png2, svg2 = save_figure(again, tmp_path / "out" / "again", dpi=50)
    assert svg2.read_bytes() == svg.read_bytes() and png2.read_bytes() == png.read_bytes()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(TEMP_PREFIX)]
    with pytest.raises(InputError, match="must be a matplotlib Figure"):
        save_figure("figure", tmp_path / "x")


# ---------------------------------------------------------------------- gallery and report


def test_measure_summary(measures):
    summary = measure_summary(measures).set_index("measure")
    order = ["lid", "lid_slope", "pca90", "model_alignment_mean", "brain_r2", "roi_lid"]
    assert list(summary.index) == order  # order of first appearance
    assert summary.loc["lid", "rows"] == len(MODELS) * len(KS) * 2
    assert summary.loc["lid", "estimators"] == "mle, mom"
    assert (summary.loc["roi_lid", "k_min"], summary.loc["roi_lid", "k_max"]) == (5, 100)
    assert summary.loc["roi_lid", "models"] == 1 and summary.loc["brain_r2", "rois"] == "EBA, V1"
    assert pd.isna(summary.loc["pca90", "k_min"])


def test_study_figures_draws_all_and_notes_what_is_missing(measures, models, by_k):
    figures, notes = study_figures(measures, models, correlation_by_k=by_k, k_brain=100)
    assert notes == []
    assert len(figures) == 11
    titles = [title for title, _, _ in figures]
    assert "LID vs brain alignment in EBA" in titles and "Correlation with K" in titles
    reading = dict((t, r) for t, _, r in figures)["LID vs model–model alignment"]
    assert reading.startswith("Across 5 models Pearson r = -")
    assert reading.endswith("lower LID at K=50 goes with higher model–model alignment.")

    no_brain = measures[~measures["measure"].isin(["brain_r2", "roi_lid"])]
    figures, notes = study_figures(no_brain, models, k_brain=1000)
    assert len(figures) == 6
    assert notes[0] == "LID was not measured at K=1000; K=100 is used instead."
    assert any(n.startswith("LID vs brain alignment in EBA: not drawn (") for n in notes)
    assert any("Brain alignment per ROI and subject: not drawn" in n for n in notes)
    assert len(notes) == 1 + 4


def _report(tmp_path, measures, models, statistics, by_k) -> tuple:
    figures, _ = study_figures(measures, models, correlation_by_k=by_k, k_brain=100)
    path = write_report(
        tmp_path / "report" / "index.html",
        question="Does lower LID <predict> alignment & accuracy?",
        measures=measures,
        models=models,
        statistics=statistics,
        correlation_by_k=by_k,
        figures=figures,
        findings=["r < 0 for <script>alert(1)</script> & friends"],
        provenance={"repscope": "0.1.0", "config": {"k": list(KS), "seed": 0}},
        notes=["a <note>"],
    )
    return path, figures


def test_write_report_is_self_contained_and_escaped(tmp_path, measures, models, statistics, by_k):
    path, figures = _report(tmp_path, measures, models, statistics, by_k)
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', html)
    assert len(images) == len(figures) == html.count("<img")
    for data, alt in images:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as image:
            assert image.format == "PNG" and image.size[0] > 100
        assert alt.strip()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "http://" not in html and "https://" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    for table in ("models", "statistics", "correlation-by-k", "measures"):
        assert f'<table class="sortable" id="{table}-table">' in html
    assert html.count("<tr><td>m-a1</td>") == 1  # the zoo lists each model once
    assert "Does lower LID &lt;predict&gt; alignment &amp; accuracy?" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in html
    assert "<script>alert(1)" not in html and "a &lt;note&gt;" in html
    assert html.count("<script>") == 1 and "function sortBy(" in html
    assert 'addEventListener("click"' in html
    assert "&quot;seed&quot;: 0" in html  # nested provenance as JSON
    assert "report written (UTC)" in html
    assert not [p for p in path.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_write_report_rejects_bad_figures(tmp_path, measures, models):
    with pytest.raises(InputError, match=r"figures\[0\] must be \(title, Figure, reading\)"):
        write_report(tmp_path / "r.html", question="q", measures=measures, models=models,
                     figures=["not a triple"])  # fmt: skip
    with pytest.raises(InputError, match=r"figures\[0\] holds a str, not a Figure"):
        write_report(tmp_path / "r.html", question="q", measures=measures, models=models,
                     figures=[("t", "fig", "reading")])  # fmt: skip
    assert not (tmp_path / "r.html").exists()


# ---------------------------------------------------------------------- headless Chromium

CHROMIUM = shutil.which("chromium-headless-shell")


def _chromium_or_skip() -> str:
    reason = "chromium-headless-shell is not installed (apt-get install chromium-headless-shell)"
    if CHROMIUM is None:
        if os.environ.get("REPSCOPE_REQUIRE_CHROMIUM"):
            pytest.fail(f"REPSCOPE_REQUIRE_CHROMIUM is set but {reason}")
        pytest.skip(reason)
    return CHROMIUM


def _column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table}-table tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent)"
    )


def test_report_in_headless_chromium(tmp_path, measures, models, statistics, by_k):
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    path, figures = _report(tmp_path, measures, models, statistics, by_k)
    problems, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: r.url.startswith("file:") or requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            widths = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
            )
            assert len(widths) == len(figures) and min(widths) > 0

            header = page.locator("#models-table thead th", has_text="n_params")
            index = [c.strip() for c in _column(page, "models", 0)]
            assert index == list(MODELS)
            accuracy = page.locator("#models-table thead th", has_text="accuracy").first
            accuracy.click()
            assert accuracy.get_attribute("aria-sort") == "ascending"
            ascending = [float(v) for v in _column(page, "models", 5)]
            assert ascending == sorted(ascending) and ascending != list(models["accuracy"])
            assert _column(page, "models", 0) == list(models.sort_values("accuracy")["model"])
            accuracy.click()
            descending = [float(v) for v in _column(page, "models", 5)]
            assert descending == sorted(ascending, reverse=True)
            header.click()
            assert header.get_attribute("aria-sort") == "ascending"
            assert accuracy.get_attribute("aria-sort") == "none"
            partial = page.locator("#statistics-table thead th", has_text="partial_r")
            partial.click()
            assert _column(page, "statistics", 9) == ["-0.8", ""]  # blank stays last
            partial.click()
            assert _column(page, "statistics", 9) == ["-0.8", ""]

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert problems == [] and requests == []
    with Image.open(shot) as image:
        assert image.size[0] == 1200 and image.size[1] > 900
    target = os.environ.get("REPSCOPE_SCREENSHOT_DIR")
    if target:
        os.makedirs(target, exist_ok=True)
        shutil.copy(shot, os.path.join(target, "report.png"))
