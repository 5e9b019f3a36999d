"""The mini zoo: split, networks, seeded training, cache reuse and repair, loading, CLI.

Only two tiny members are trained (well under a second each); the default members' timings
and accuracies are measured by hand (``repscope zoo train``).
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from repscope._validation import InputError
from repscope.io.atomic import sha256_file
from repscope.zoo import (
    MINIZOO,
    MiniZooConfig,
    _mnist,
    _train,
    build_minizoo_module,
    count_parameters,
    load_minizoo_model,
    minizoo_test_split,
    train_minizoo,
)
from repscope.zoo.cli import zoo_app

TINY = (
    MiniZooConfig("t-mlp-w32-d1-n500", "mlp", 32, 1, 500, epochs=3, seed=1),
    MiniZooConfig("t-cnn-w4-d1-n500", "cnn", 4, 1, 500, epochs=1, seed=2),
)
runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """Both tiny members trained once into a module-wide cache: (cache_dir, result table)."""
    cache = tmp_path_factory.mktemp("cache")
    table = train_minizoo(TINY, cache_dir=cache, progress=False)
    print("\n" + table[["name", "n_params", "test_accuracy", "seconds"]].to_string())
    return cache, table


def _state(cache: Path, name: str) -> dict[str, torch.Tensor]:
    return torch.load(cache / "minizoo" / name / "weights.pt", weights_only=True)


# ---- split and members


def test_test_split_is_fixed_balanced_and_held_out() -> None:
    indices, images, labels = minizoo_test_split()
    assert indices.shape == (1000,) and images.shape == (1000, 28, 28)
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    assert np.all(np.diff(indices) > 0)
    assert np.bincount(labels).tolist() == [100] * 10
    pool, _, _ = _mnist.training_subset(_mnist.N_POOL)
    assert len(np.intersect1d(pool, indices)) == 0
    assert len(np.union1d(pool, indices)) == 5000
    np.testing.assert_array_equal(indices, minizoo_test_split()[0])


def test_training_subsets_are_nested_and_balanced() -> None:
    small, _, small_labels = _mnist.training_subset(500)
    large, _, _ = _mnist.training_subset(2000)
    np.testing.assert_array_equal(small, large[:500])
    assert np.bincount(small_labels).tolist() == [50] * 10


def test_default_members() -> None:
    assert 8 <= len(MINIZOO) <= 12
    names = [c.name for c in MINIZOO]
    assert len(set(names)) == len(names)
    for c in MINIZOO:
        assert c.name == f"{c.family}-w{c.width}-d{c.depth}-n{c.n_train}"
    assert {c.family for c in MINIZOO} == {"cnn", "mlp"}
    assert len({c.n_train for c in MINIZOO}) >= 3
    assert len({c.width for c in MINIZOO}) >= 3 and len({c.depth for c in MINIZOO}) >= 3


@pytest.mark.parametrize("config", [*MINIZOO, *TINY], ids=lambda c: c.name)
def test_module_shapes_and_classifier_last(config: MiniZooConfig) -> None:
    module = build_minizoo_module(config)
    last = list(module.children())[-1]
    assert isinstance(last, torch.nn.Linear) and last.out_features == 10
    assert module(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    n_params = sum(p.numel() for p in module.parameters())
    if config in MINIZOO:
        assert count_parameters(f"minizoo:{config.name}") == n_params


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "Bad Name"}, "not a safe folder name"),
        ({"family": "vit"}, "family='vit' is not known"),
        ({"n_train": 4001}, r"n_train=4001 must be an integer in \[1, 4000\]"),
        ({"family": "cnn", "depth": 4}, r"depth=4 must be an integer in \[1, 3\]"),
        ({"learning_rate": 2}, "learning_rate=2 must be a float"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    base = {"name": "x", "family": "mlp", "width": 8, "depth": 1, "n_train": 10, "epochs": 1}
    with pytest.raises(InputError, match=match):
        MiniZooConfig(**{**base, **kwargs})


# ---- training, determinism, cache


def test_training_scores_members(trained) -> None:
    _, table = trained
    assert table["name"].tolist() == [c.name for c in TINY]
    assert not table["cached"].any()
    assert (table["seconds"] > 0).all()
    accuracy = table["test_accuracy"].to_numpy()
    assert accuracy.max() > 0.5  # chance is 0.1
    assert abs(accuracy[0] - accuracy[1]) > 0.01  # members genuinely differ
    assert (table["train_accuracy"] >= table["test_accuracy"] - 0.05).all()


def test_same_seed_same_weights(trained, tmp_path: Path) -> None:
    cache, _ = trained
    train_minizoo(TINY, cache_dir=tmp_path, progress=False)
    for config in TINY:
        first, second = _state(cache, config.name), _state(tmp_path, config.name)
        assert first.keys() == second.keys()
        assert all(torch.equal(first[k], second[k]) for k in first)


def test_other_seed_other_weights(tmp_path: Path) -> None:
    config = TINY[0]
    other = replace(config, name="t-other-seed", seed=99)
    train_minizoo([config, other], cache_dir=tmp_path, progress=False)
    first, second = _state(tmp_path, config.name), _state(tmp_path, other.name)
    assert not torch.equal(first["1.weight"], second["1.weight"])


def test_second_call_reuses_cache(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, table = trained

    def no_training(*args, **kwargs):
        raise AssertionError("train_minizoo retrained a cached member")

    monkeypatch.setattr(_train, "fit", no_training)
    again = train_minizoo(TINY, cache_dir=cache, progress=True)
    assert again["cached"].all()
    columns = ["test_accuracy", "train_loss", "seconds", "n_params"]
    assert again[columns].equals(table[columns])


def test_corrupted_weights_are_retrained(trained, tmp_path: Path) -> None:
    cache, table = trained
    shutil.copytree(cache, tmp_path, dirs_exist_ok=True)
    weights = tmp_path / "minizoo" / TINY[0].name / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"corrupted weights .*run `repscope zoo train"):
        load_minizoo_model(TINY[0].name, tmp_path)
    again = train_minizoo(TINY, cache_dir=tmp_path, progress=False)
    assert again["cached"].tolist() == [False, True]
    assert again.loc[0, "test_accuracy"] == table.loc[0, "test_accuracy"]
    sidecar = json.loads((weights.parent / "minizoo.json").read_text())
    assert sidecar["weights"]["sha256"] == sha256_file(weights)


def test_changed_config_is_retrained(trained, tmp_path: Path) -> None:
    cache, _ = trained
    shutil.copytree(cache, tmp_path, dirs_exist_ok=True)
    longer = replace(TINY[1], epochs=2)
    again = train_minizoo([longer], cache_dir=tmp_path, progress=True)
    assert not again.loc[0, "cached"]


def test_sidecar_records_provenance(trained) -> None:
    cache, _ = trained
    sidecar = json.loads((cache / "minizoo" / TINY[0].name / "minizoo.json").read_text())
    assert sidecar["config"]["seed"] == sidecar["seed"] == 1
    assert {"torch", "numpy", "mlxtend", "python"} <= sidecar["versions"].keys()
    assert {"train_accuracy", "test_accuracy", "train_loss", "test_loss", "seconds"} <= (
        sidecar["metrics"].keys()
    )
    assert re.fullmatch(r"[0-9a-f]{64}", sidecar["weights"]["sha256"])
    assert sidecar["data"]["n_test"] == 1000


# ---- loading and preprocessing


def test_load_model(trained) -> None:
    cache, table = trained
    model = load_minizoo_model(TINY[1].name, cache)
    assert not model.module.training
    assert model.input_size == (1, 28, 28)
    assert model.metrics["test_accuracy"] == table.loc[1, "test_accuracy"]
    json.dumps(model.preprocessing)
    _, images, labels = minizoo_test_split()
    batch = torch.stack([model.transform(Image.fromarray(img)) for img in images])
    with torch.no_grad():
        accuracy = (model.module(batch).argmax(1).numpy() == labels).mean()
    assert accuracy == pytest.approx(model.metrics["test_accuracy"])


def test_transform_reproduces_training_normalisation(trained) -> None:
    cache, _ = trained
    model = load_minizoo_model(TINY[0].name, cache)
    _, train_images, _ = _mnist.training_subset(TINY[0].n_train)
    mean, std = _mnist.pixel_statistics(train_images)
    assert (model.preprocessing["mean"], model.preprocessing["std"]) == (mean, std)
    _, images, _ = minizoo_test_split()
    expected = _mnist.normalise(images[:20], mean, std)
    got = np.stack([model.transform(Image.fromarray(img)).numpy() for img in images[:20]])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    restored = pickle.loads(pickle.dumps(model.transform))
    np.testing.assert_array_equal(restored(Image.fromarray(images[0])).numpy(), expected[0])


def test_transform_converts_and_resizes() -> None:
    transform = _mnist.MnistTransform(0.1, 0.3)
    rgb = Image.fromarray(np.full((56, 40, 3), 255, np.uint8))
    out = transform(rgb)
    assert out.shape == (1, 28, 28) and out.dtype == torch.float32
    assert torch.allclose(out, torch.full((1, 28, 28), (1 - 0.1) / 0.3))


def test_load_errors(tmp_path: Path) -> None:
    name = MINIZOO[0].name
    with pytest.raises(InputError, match=rf"minizoo model {name} is not trained in .*zoo train"):
        load_minizoo_model(name, tmp_path)
    with pytest.raises(InputError, match=r"'cnn-w16-d2-n400' is not known; did you mean .*n4000"):
        load_minizoo_model("cnn-w16-d2-n400", tmp_path)


def test_unknown_name_in_train(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"did you mean .*mlp-w64-d1-n500"):
        train_minizoo(["mlp-w64-d1-n50"], cache_dir=tmp_path, progress=False)


# ---- CLI


def test_cli_train_json_then_cached_table(tmp_path: Path) -> None:
    name = "mlp-w64-d1-n500"  # the cheapest default member: well under a second
    result = runner.invoke(zoo_app, ["train", name, "--cache-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["models"]
    assert row["name"] == name and row["cached"] is False and row["test_accuracy"] > 0.5
    result = runner.invoke(zoo_app, ["train", name, "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert name in result.stdout and "yes" in result.stdout


def test_cli_train_unknown_name(tmp_path: Path) -> None:
    result = runner.invoke(zoo_app, ["train", "cnn-w99", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert re.fullmatch(r"error: minizoo model 'cnn-w99' is not known; .*\n", result.stderr)
