"""The third paper's diagnostics for one model, and the ``[generalization]`` stage of a study."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from repscope import InputError
from repscope.experiment.config import load_config
from repscope.experiment.run import run_study
from repscope.generalization import generalization_diagnostics, linear_probe
from repscope.io.extract import extract_embeddings
from repscope.io.stimuli import open_stimuli
from repscope.zoo._mnist import minizoo_test_split, training_subset
from repscope.zoo.minizoo import load_minizoo_model, train_minizoo

MEMBERS = [
    "minizoo:mlp-w64-d1-n500",
    "minizoo:cnn-w8-d1-n500",
    "minizoo:mlp-w128-d1-n1000",
    "minizoo:cnn-w8-d2-n1000",
    "minizoo:mlp-w64-d2-n2000",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("cache")
    train_minizoo([m.split(":")[1] for m in MEMBERS], cache_dir=folder, progress=False)
    return folder


def _embed(spec: str, indices: np.ndarray, cache) -> np.ndarray:
    stimuli = open_stimuli("builtin:mnist")
    chosen = stimuli.select([f"mnist-{i:04d}" for i in indices])
    return extract_embeddings(spec, chosen, cache_dir=cache, progress=False).X


def test_own_head_reproduces_the_members_recorded_scores(cache) -> None:
    """The penultimate embedding through the last Linear is the member: its training metrics.

    The sidecar's accuracies were computed in float32 by the training loop on the same images
    with the same normalisation, so they must agree to float32 rounding of the mean loss.
    """
    spec = "minizoo:mlp-w128-d1-n1000"
    member = load_minizoo_model(spec.split(":")[1], cache_dir=cache)
    train_idx, _, y_train = training_subset(member.config.n_train)
    test_idx, _, y_test = minizoo_test_split()
    diag = generalization_diagnostics(
        _embed(spec, train_idx, cache),
        _embed(spec, test_idx, cache),
        y_train,
        y_test,
        head=member.module[-1],
        k=10,
    )
    assert diag.head == "own"
    assert diag.train_accuracy == pytest.approx(member.metrics["train_accuracy"], abs=1e-9)
    assert diag.test_accuracy == pytest.approx(member.metrics["test_accuracy"], abs=1e-9)
    assert diag.train_loss == pytest.approx(member.metrics["train_loss"], rel=1e-4)
    assert diag.test_loss == pytest.approx(member.metrics["test_loss"], rel=1e-4)
    weight = member.module[-1].weight.detach().double().numpy()
    assert diag.lipschitz.value == pytest.approx(np.linalg.norm(weight, 2), rel=1e-12)
    assert diag.gap_accuracy == pytest.approx(diag.train_accuracy - diag.test_accuracy)
    assert diag.gap_loss == pytest.approx(diag.test_loss - diag.train_loss)
    assert diag.lipschitz_w1 == pytest.approx(diag.lipschitz.value * diag.wasserstein.distance)
    assert diag.wasserstein.method == "exact" and diag.wasserstein.n_a == 1000
    assert 1 < diag.lid < weight.shape[1]
    assert json.loads(json.dumps(diag.to_dict()))["head"] == "own"


def test_probe_head_is_the_linear_probe() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(3, 6))
    y = np.repeat(np.arange(3), 60)
    X = centers[y] + rng.normal(size=(len(y), 6))
    train, test = np.arange(0, 180, 2), np.arange(1, 180, 2)
    diag = generalization_diagnostics(X[train], X[test], y[train], y[test], k=10)
    probe = linear_probe(X, y, split=(train, test))
    assert diag.head == "probe"
    assert diag.test_accuracy == probe.test_accuracy
    assert diag.train_loss == pytest.approx(probe.train_loss, rel=1e-12)
    assert diag.lipschitz.value == pytest.approx(np.linalg.norm(probe.coef, 2), rel=1e-12)


def test_shifted_test_set_raises_w1_and_the_bound() -> None:
    """A test set moved away from the train set: W1 grows by the shift, the gap opens."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(2), 100)
    X = np.c_[y * 4.0 + rng.normal(size=200), rng.normal(size=200)]
    near = generalization_diagnostics(X[::2], X[1::2], y[::2], y[1::2], k=10)
    moved = X[1::2] + np.array([2.0, 0.0])
    far = generalization_diagnostics(X[::2], moved, y[::2], y[1::2], k=10)
    assert far.wasserstein.distance > near.wasserstein.distance + 1.0
    assert far.lipschitz_w1 > near.lipschitz_w1
    assert far.gap_accuracy > near.gap_accuracy


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"test": np.zeros((5, 3))}, "train has 4 features but test has 3"),
        ({"y_train": np.zeros(7, int)}, "y_train has shape"),
        ({"head": torch.nn.Linear(4, 2)}, "labels 0 … 2"),
    ],
)
def test_bad_input_is_one_line(change: dict, match: str) -> None:
    rng = np.random.default_rng(0)
    args = {
        "train": rng.normal(size=(30, 4)),
        "test": rng.normal(size=(10, 4)),
        "y_train": np.arange(30) % 3,
        "y_test": np.arange(10) % 3,
    }
    head = change.pop("head", None)
    args.update(change)
    with pytest.raises(InputError, match=match):
        generalization_diagnostics(**args, head=head, k=5)


CONFIG = f"""
[study]
name = "generalization"
question = "Do embedding dimension and W1 track the generalization gap?"
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

[generalization]
data = "builtin:mnist"
n_train = 200
accuracy = "probe"

[statistics]
covariates = []
bootstrap = 50
permutations = 50
"""


@pytest.fixture(scope="module")
def study(cache, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("study")
    (folder / "study.toml").write_text(CONFIG)
    config = load_config(folder / "study.toml")
    return run_study(config, progress=False, cache_dir=cache)


@pytest.mark.slow
def test_study_measures_probes_and_diagnostics(study, cache) -> None:
    m = study.measures
    probes = m[m["measure"] == "probe_accuracy"]
    assert sorted(probes["estimator"].unique()) == ["knn", "linear"]
    assert (probes["n"] == 1000).all() and probes["value"].between(0.3, 1.0).all()
    gaps = m[m["measure"] == "gen_gap_accuracy"].set_index("model")
    assert set(gaps.index) == set(MEMBERS) and (gaps["estimator"] == "own").all()
    for spec in MEMBERS:  # own heads on own training images: the members' recorded gaps
        metrics = load_minizoo_model(spec.split(":")[1], cache_dir=cache).metrics
        recorded = metrics["train_accuracy"] - metrics["test_accuracy"]
        assert gaps.loc[spec, "value"] == pytest.approx(recorded, abs=1e-9)
    linear = probes[probes["estimator"] == "linear"].set_index("model")["value"]
    models = study.models.set_index("model")
    assert np.allclose(models.loc[linear.index, "accuracy"], linear)
    source = "linear probe test accuracy on builtin:mnist"
    assert models["accuracy_source"].str.startswith(source).all()


@pytest.mark.slow
def test_study_correlates_each_diagnostic_with_the_gap(study) -> None:
    stats = study.statistics
    rows = stats[stats["y"] == "gen_gap_accuracy@own"]
    assert set(rows["x"]) == {
        "gen_lid@mle@k=20",
        "gen_w1@exact",
        "gen_lipschitz@own",
        "gen_lipschitz_w1@own",
    }
    assert (rows["n_models"] == len(MEMBERS)).all()
    assert rows["pearson_r"].between(-1, 1).all()
    html = study.report.read_text()
    assert 'id="generalization"' in html and "generalization-table" in html
    assert any("Generalization_diagnostics" in p.name for p in (study.output / "figures").iterdir())
