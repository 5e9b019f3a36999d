"""The study's ``[weights]`` stage: fine-tuned pairs from the project's own zoo, stability rows
that agree with the library, statistics against pretraining size, the report section."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from repscope.experiment.config import load_config
from repscope.experiment.run import run_study
from repscope.weightspace import spectral_stability
from repscope.zoo.finetuned import load_finetuned
from repscope.zoo.minizoo import train_minizoo

MEMBERS = [
    "minizoo:mlp-w64-d1-n500",
    "minizoo:cnn-w8-d1-n500",
    "minizoo:mlp-w128-d1-n1000",
    "minizoo:cnn-w8-d2-n1000",
    "minizoo:mlp-w64-d2-n2000",
]
RANK = 4

CONFIG = f"""
[study]
name = "weights"
question = "Does more pretraining data make the spectral basis more stable under fine-tuning?"
output = "out"
device = "cpu"

[models]
specs = {json.dumps(MEMBERS)}

[stimuli]
source = "builtin:digits"
n_images = 120

[preprocessing]
pca = 10

[dimension]
k = [5, 10]
global_measures = false

[alignment]
k = 10

[weights]
task = "digits"
n_train = 300
epochs = 3
ranks = [1, 2, 4, 8, 16]
rank = {RANK}

[statistics]
covariates = []
bootstrap = 50
permutations = 50
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("cache")
    train_minizoo([m.split(":")[1] for m in MEMBERS], cache_dir=folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def study(cache, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("study")
    (folder / "study.toml").write_text(CONFIG)
    return run_study(load_config(folder / "study.toml"), progress=False, cache_dir=cache)


def _at(measures, measure: str, **where):
    rows = measures[measures["measure"] == measure]
    for column, value in where.items():
        rows = rows[rows[column] == value]
    return rows.set_index("model")["value"]


@pytest.mark.slow
def test_rows_agree_with_the_library_and_the_finetuned_zoo(study, cache) -> None:
    m = study.measures
    overlap = _at(m, "spectral_overlap", estimator="all", k=RANK)
    baseline = _at(m, "spectral_baseline", estimator="all", k=RANK)
    assert set(overlap.index) == set(MEMBERS)
    assert overlap.between(0, 1).all() and (overlap > baseline).all()
    spec = "minizoo:cnn-w8-d2-n1000"
    (name,) = [
        p.name for p in (cache / "finetuned").iterdir() if p.name.startswith("minizoo-cnn-w8-d2")
    ]
    tuned = load_finetuned(name, cache_dir=cache)
    assert tuned.config.task == "digits" and tuned.config.n_train == 300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = spectral_stability(spec, tuned, (RANK,), cache_dir=cache)
    summary = result.summary(RANK)
    assert overlap[spec] == pytest.approx(summary["overlap"], rel=1e-12)
    assert _at(m, "spectral_update_share", estimator="all", k=RANK)[spec] == pytest.approx(
        summary["update_share"], rel=1e-12
    )
    assert result.tuned == f"finetuned:{name}"
    assert dict(result.skipped)[f"{tuned.head}.weight"] == "the head a fine-tune replaced"
    accuracy = _at(m, "finetune_accuracy")[spec]
    assert accuracy == pytest.approx(tuned.metrics["test_accuracy"], abs=1e-12)
    depths = set(m.loc[m["measure"] == "spectral_overlap", "estimator"])
    assert depths <= {"all", "early", "middle", "late"} and "all" in depths


@pytest.mark.slow
def test_statistics_relate_stability_to_pretraining_size_and_lid(study) -> None:
    stats = study.statistics
    overlap = f"spectral_overlap@all@k={RANK}@target=digits@layer=weights"
    rows = stats[(stats["x"] == "log10(pretrain_size)") & (stats["y"] == overlap)]
    assert len(rows) == 1 and rows["n_models"].iloc[0] == len(MEMBERS)
    assert np.isfinite(rows["pearson_r"].iloc[0])
    assert (stats["y"] == overlap).sum() >= 3  # size and LID at each K
    assert (stats["x"] == overlap).any()  # against accuracy and alignment


@pytest.mark.slow
def test_report_has_the_weights_section_and_figure(study) -> None:
    html = study.report.read_text()
    assert 'id="weights"' in html and "weights-table" in html
    assert "Spectral basis under fine-tuning on digits" in html
    assert f"At r = {RANK} the top-r subspaces keep a mean overlap" in html
    assert any("Spectral_basis" in p.name for p in (study.output / "figures").iterdir())
