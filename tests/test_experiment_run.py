"""``repscope run``: a small study end to end, its tables' schema, resume, and the plan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_one_line_error, invoke
from repscope.experiment.config import load_config
from repscope.experiment.run import run_study
from repscope.results import MEASURE_COLUMNS, MODEL_COLUMNS

MEMBERS = [
    "minizoo:mlp-w64-d1-n500",
    "minizoo:cnn-w8-d1-n500",
    "minizoo:mlp-w128-d1-n1000",
    "minizoo:cnn-w8-d2-n1000",
    "minizoo:mlp-w64-d2-n2000",
]

CONFIG = f"""
[study]
name = "tiny"
question = "Does LID track alignment in a tiny zoo?"
output = "out"
seed = 0
device = "cpu"

[models]
specs = {json.dumps(MEMBERS)}

[stimuli]
source = "nsd"

[preprocessing]
pca = 10

[dimension]
k = [5, 10, 20]

[alignment]
k = 10

[brain]
simulated = {{ stimuli = "builtin:digits", n_images = 80, subjects = 2, seed = 0 }}
rois = ["EBA", "V1"]
test = "random"
pca = 10
k = 20

[statistics]
covariates = ["family"]
bootstrap = 50
permutations = 50
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    """The tiny study run once: (config, result, cache folder)."""
    folder = tmp_path_factory.mktemp("study")
    (folder / "study.toml").write_text(CONFIG)
    cache = folder / "cache"
    config = load_config(folder / "study.toml")
    return config, run_study(config, progress=False, cache_dir=cache), cache


def test_tables_follow_the_schema(study) -> None:
    _, result, _ = study
    assert list(result.measures.columns) == list(MEASURE_COLUMNS)
    assert list(result.models.columns) == list(MODEL_COLUMNS)
    for name in ("measures", "models", "statistics", "correlation_by_k", "scaling"):
        on_disk = pd.read_parquet(result.files[name])
        pd.testing.assert_frame_equal(on_disk, getattr(result, name), check_dtype=False)


def test_every_stage_left_its_measures(study) -> None:
    _, result, _ = study
    m = result.measures
    lid = m[m["measure"] == "lid"]
    assert set(lid["model"]) == set(MEMBERS)
    assert sorted(set(lid["k"].astype(int))) == [5, 10, 20]
    assert ((lid["value"] > 0) & (lid["value"] < 10)).all()  # PCA to 10 components
    brain = m[(m["measure"] == "brain_r2") & (m["subject"] == "all")]
    assert set(brain["roi"]) == {"EBA", "V1"} and set(brain["model"]) == set(MEMBERS)
    roi_lid = m[m["measure"] == "roi_lid"]
    assert set(roi_lid["model"]) == {"brain"} and set(roi_lid["subject"]) == {"1", "2"}
    # the reference is the most accurate member; the others are aligned to it
    best = result.models.sort_values("accuracy").iloc[-1]["model"]
    aligned = m[m["measure"] == "model_alignment"]
    assert set(aligned["target"]) == {best}
    assert set(aligned["model"]) == set(MEMBERS) - {best}
    assert result.models["accuracy"].between(0.5, 1.0).all()


def test_statistics_rows_match_direct_calls(study) -> None:
    from repscope import stats

    _, result, _ = study
    row = result.statistics[
        (result.statistics["x"] == "lid@mle@k=10@layer=penultimate")
        & (result.statistics["y"] == "accuracy")
    ].iloc[0]
    x = stats.per_model(result.measures, result.models, stats.Quantity.parse(row["x"]))
    y = stats.per_model(result.measures, result.models, stats.Quantity.parse(row["y"]))
    direct = stats.correlate(x, y, n_bootstrap=50, n_permutations=50, random_state=0)
    assert row["pearson_r"] == pytest.approx(direct.pearson_r, abs=1e-12)
    assert row["permutation_p"] == pytest.approx(direct.permutation_p, abs=1e-12)


def test_second_run_reuses_every_part_and_gives_identical_tables(study) -> None:
    config, first, cache = study
    again = run_study(config, progress=False, cache_dir=cache)
    parts = list((first.output / "parts").glob("*.parquet"))
    assert again.stages_reused == len(parts) > 0
    pd.testing.assert_frame_equal(again.measures, first.measures)
    pd.testing.assert_frame_equal(again.statistics, first.statistics)


def test_a_lost_or_damaged_part_is_recomputed_to_the_same_rows(study) -> None:
    config, first, cache = study
    parts = sorted((first.output / "parts").glob("dimension-*.parquet"))
    parts[0].unlink()  # as if the run had been killed before writing it
    parts[1].write_bytes(b"not parquet")  # as if a disk had damaged it
    again = run_study(config, progress=False, cache_dir=cache)
    pd.testing.assert_frame_equal(again.measures, first.measures)
    assert pd.read_parquet(parts[1]).shape[0] > 0


def test_run_json_records_config_and_stages(study) -> None:
    config, result, _ = study
    record = json.loads(result.files["run"].read_text())
    assert record["config"] == json.loads(json.dumps(config.to_dict()))
    kinds = [s["kind"] for s in record["stages"]]
    assert kinds.count("dimension") == len(MEMBERS) and "statistics" in kinds


def test_dry_run_prints_the_plan_without_writing(tmp_path: Path) -> None:
    (tmp_path / "study.toml").write_text(CONFIG)
    result = invoke("run", tmp_path / "study.toml", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    stages = [s["stage"] for s in plan["stages"]]
    assert stages.count("extract") == len(MEMBERS) and stages[-1] == "report"
    extract = [s for s in plan["stages"] if s["stage"] == "extract"]
    assert all(s["seconds"] > 0 for s in extract)  # the 80 simulated images are counted
    assert plan["seconds"] == pytest.approx(sum(s["seconds"] for s in plan["stages"]), abs=0.5)
    assert not (tmp_path / "out").exists()


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "study.toml").write_text(CONFIG.replace("[dimension]\n", "[dimension]\nkk = 3\n"))
    assert_one_line_error(invoke("run", tmp_path / "study.toml"), r"study\.toml:\d+: .*kk")


def test_simulated_brain_ids_match_the_embeddings(study) -> None:
    _, result, _ = study
    rows = result.measures[
        (result.measures["measure"] == "brain_r2") & (result.measures["subject"] == "1")
    ]
    assert np.isfinite(rows["value"]).all()


def test_report_and_figures_are_written(study) -> None:
    _, result, _ = study
    html = result.report.read_text()
    assert result.report.name == "report.html" and "Does LID track alignment" in html
    pngs = sorted((result.output / "figures").glob("*.png"))
    assert pngs and len(pngs) == len(list((result.output / "figures").glob("*.svg")))
    assert html.count("data:image/png;base64,") == len(pngs)
    assert "LID at K=10 vs accuracy: Pearson r = " in html
    assert 'id="scaling-table"' in html


@pytest.mark.slow
def test_demo_runs_the_whole_study_offline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("demo", "--cache-dir", tmp_path / "cache", "--no-progress")
    assert result.exit_code == 0, result.output
    report = tmp_path / "repscope-demo" / "report.html"
    assert f"report: {report}" in result.stdout
    assert "- LID at K=50 vs accuracy: Pearson r = " in result.stdout
    measures = pd.read_parquet(tmp_path / "repscope-demo" / "measures.parquet")
    assert {"lid", "model_alignment_mean", "brain_r2", "roi_lid"} <= set(measures["measure"])
    assert measures["model"].nunique() == 15  # 14 models and the brain's own profiles


def test_scaling_fits_match_linregress(study) -> None:
    from scipy.stats import linregress

    from repscope import stats

    _, result, _ = study
    row = result.scaling[result.scaling["x"] == "log10(pretrain_size)"].iloc[0]
    lid = stats.per_model(result.measures, result.models, stats.Quantity.parse(row["y"]))
    size = result.models.set_index("model")["pretrain_size"].reindex(lid.index)
    ref = linregress(np.log10(size.to_numpy(float)), lid.to_numpy(float))
    assert row["slope"] == pytest.approx(ref.slope, rel=1e-12)
    assert row["r"] == pytest.approx(ref.rvalue, rel=1e-12)
    assert row["slope_ci_low"] < row["slope"] < row["slope_ci_high"]


def test_model_alignment_fits_pca_on_the_train_rows_only(study) -> None:
    from sklearn.decomposition import PCA

    from repscope._validation import check_random_state
    from repscope.alignment.ridge import _resolve_split, ridge_alignment
    from repscope.io.extract import extract_embeddings
    from repscope.io.nsd_layout import NsdLayout
    from repscope.io.stimuli import open_stimuli

    config, result, cache = study
    row = result.measures[result.measures["measure"] == "model_alignment"].iloc[0]
    stimuli = open_stimuli(NsdLayout(result.output / "brain-simulated").stimuli)
    X, Y = (
        extract_embeddings(spec, stimuli, cache_dir=cache, progress=False).X
        for spec in (row["model"], row["target"])
    )
    train, test = _resolve_split(len(X), 0.2, None, check_random_state(config.study.seed))

    def train_pcs(A: np.ndarray) -> np.ndarray:
        pca = PCA(10).fit(A[train].astype(np.float64))
        return pca.transform(A.astype(np.float64))

    def score(A: np.ndarray, B: np.ndarray) -> float:
        return ridge_alignment(A, B, split=(train, test), random_state=0, device="cpu").score

    expected = (score(train_pcs(X), train_pcs(Y)) + score(train_pcs(Y), train_pcs(X))) / 2
    assert row["value"] == pytest.approx(expected, abs=1e-6)


TABLES = ("measures", "models", "statistics", "correlation_by_k", "scaling")


def _cached_embeddings(cache: Path) -> dict[str, np.ndarray]:
    """Every cache entry's embedding matrix, by model spec.

    (Entry digests differ between the two runs: the simulated NSD stimuli sit under each run's
    own output folder, and a file's stimulus fingerprint includes its path.)
    """
    out = {}
    for path in sorted(cache.glob("embeddings/*/*/embedding.npz")):
        model = json.loads((path.parent / "meta.json").read_text())["key"]["model"]
        with np.load(path) as archive:
            out[model] = archive["X"]
    return out


@pytest.mark.slow
def test_dask_run_from_scratch_is_bitwise_identical(study, tmp_path: Path) -> None:
    """Two single-threaded Dask workers with an empty cache write the serial run's tables byte
    for byte: every task pins its BLAS and torch threads to ``[study] threads``. (Unpinned, a
    2-thread serial run differs from a 1-thread one in 229 measure values, up to 2e-4, and the
    BCa intervals by up to 0.11.)"""
    from repscope.experiment.executor import dask_executor

    config, first, cache = study
    elsewhere = config.model_copy(
        update={"study": config.study.model_copy(update={"output": tmp_path / "dask-out"})}
    )
    executor = dask_executor(workers=2)
    try:
        on_dask = run_study(
            elsewhere, progress=False, cache_dir=tmp_path / "cache", executor=executor
        )
    finally:
        executor.close()
    assert on_dask.stages_reused == 0  # every part was computed by the workers
    assert json.loads(on_dask.files["run"].read_text())["executor"].startswith("dask: 2 workers")
    for name in TABLES:
        assert (first.output / f"{name}.parquet").read_bytes() == (
            on_dask.output / f"{name}.parquet"
        ).read_bytes(), name
    ours, theirs = _cached_embeddings(cache), _cached_embeddings(tmp_path / "cache")
    assert set(MEMBERS) <= ours.keys() and set(MEMBERS) <= theirs.keys()
    for model in MEMBERS:
        np.testing.assert_array_equal(theirs[model], ours[model])


def test_bad_worker_count_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "study.toml").write_text(CONFIG)
    result = invoke("run", tmp_path / "study.toml", "--workers", "0")
    assert_one_line_error(result, r"workers=0 must be >= 1")
    assert not (tmp_path / "out").exists()


def test_a_zoo_too_small_for_statistics_still_finishes(study, tmp_path: Path) -> None:
    """Three models: every correlation is skipped with a warning; tables, report, no error."""
    _, _, cache = study
    (tmp_path / "study.toml").write_text(
        CONFIG.replace(json.dumps(MEMBERS), json.dumps(MEMBERS[:3]))
    )
    with pytest.warns(UserWarning, match="at least 4 needed"):
        result = run_study(load_config(tmp_path / "study.toml"), progress=False, cache_dir=cache)
    assert result.statistics.empty and list(result.statistics.columns)[:3] == [
        "x",
        "y",
        "n_models",
    ]
    assert result.report is not None and result.report.is_file()
    assert set(result.measures["model"]) == {*MEMBERS[:3], "brain"}  # + the ROIs' own LID
