"""Fine-tuning: task splits, model inputs, head replacement, the training loop, the fine-tuned
zoo's cache (reuse, repair, reproducibility), loading, and the ``repscope zoo finetune`` CLI.

Bases are two tiny mini-zoo members trained into a temporary cache (about a second); one
MobileNetV2 run (64 images, 1 epoch, 64 px) checks the ImageNet path end to end. The default
budgets' timings and accuracies are measured by hand (``repscope zoo finetune``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli_helpers import assert_one_line_error, invoke
from repscope._validation import InputError
from repscope.finetune import tasks as tasks_module
from repscope.finetune import train as train_module
from repscope.finetune.tasks import TASKS, model_inputs, task_data
from repscope.finetune.train import TaskInputs, fine_tune, replace_head, score
from repscope.io._builtin_images import load_builtin
from repscope.io.atomic import sha256_file
from repscope.zoo import (
    FINETUNE_BASES,
    FinetuneConfig,
    MiniZooConfig,
    build_minizoo_module,
    finetune_zoo,
    finetuned_name,
    load_finetuned,
    train_minizoo,
)
from repscope.zoo._mnist import MnistTransform

MEMBERS = (
    MiniZooConfig("t-mlp-w32-d1-n500", "mlp", 32, 1, 500, epochs=3, seed=1),
    MiniZooConfig("t-cnn-w4-d1-n500", "cnn", 4, 1, 500, epochs=1, seed=2),
)
BASES = tuple(f"minizoo:{m.name}" for m in MEMBERS)
BUDGET = {"n_train": 300, "n_test": 200, "epochs": 8}
MOBILENET = FINETUNE_BASES[0]
IMAGENET_PREP = {
    "input_size": [3, 224, 224],
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}
needs_fashion = pytest.mark.skipif(
    not tasks_module.fashion_mnist_installed(), reason="Debian dataset-fashion-mnist missing"
)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory):
    """Both members trained, then fine-tuned on digits: (cache_dir, result table)."""
    cache = tmp_path_factory.mktemp("cache")
    train_minizoo(MEMBERS, cache_dir=cache, progress=False)
    table = finetune_zoo(BASES, "digits", cache_dir=cache, progress=False, **BUDGET)
    print("\n" + table[["name", "n_trainable", "test_accuracy", "seconds"]].to_string())
    return cache, table


def _copy(cache: Path, tmp_path: Path) -> Path:
    shutil.copytree(cache, tmp_path, dirs_exist_ok=True)
    return tmp_path


# ---- tasks


@pytest.mark.parametrize("task", ["digits", "mnist"])
def test_split_is_disjoint_stratified_and_seeded(task: str) -> None:
    data = task_data(task, 400, 200, seed=3)
    source = load_builtin(task)
    assert data.images_train.shape[0] == 400 and data.images_test.shape[0] == 200
    assert data.images_train.dtype == np.uint8 and data.labels_train.dtype == np.int64
    assert len(np.intersect1d(data.positions_train, data.positions_test)) == 0
    np.testing.assert_array_equal(data.labels_train, source.labels[data.positions_train])
    np.testing.assert_array_equal(data.images_test, np.asarray(source.images)[data.positions_test])
    assert data.ids_test[0] == source.ids[data.positions_test[0]]
    share = np.bincount(source.labels) / len(source.labels)
    for labels in (data.labels_train, data.labels_test):
        counts = np.bincount(labels, minlength=10)
        assert np.all(np.abs(counts - share * len(labels)) < 1 + 1e-9), counts
    again, other = task_data(task, 400, 200, seed=3), task_data(task, 400, 200, seed=4)
    np.testing.assert_array_equal(again.positions_train, data.positions_train)
    assert not np.array_equal(other.positions_train, data.positions_train)
    assert data.describe() == again.describe() != other.describe()
    json.dumps(data.describe())


@needs_fashion
def test_fashion_split_uses_train_and_t10k_parts() -> None:
    data = task_data("fashion-mnist", 500, 300)
    assert data.positions_train.max() < 60_000 <= data.positions_test.min()
    assert all(i.startswith("train-") for i in data.ids_train)
    assert all(i.startswith("test-") for i in data.ids_test)
    assert np.bincount(data.labels_train).tolist() == [50] * 10  # its parts are balanced
    with pytest.raises(InputError, match=r"n_test=10001 .* t10k images; pass n_test <= 10000"):
        task_data("fashion-mnist", 100, 10_001)


def test_task_errors() -> None:
    assert TASKS == ("fashion-mnist", "mnist", "digits")
    with pytest.raises(InputError, match=r"task 'digit' is not known \(did you mean 'digits'"):
        task_data("digit")
    with pytest.raises(InputError, match=r"digits's 1797 images; pass n_train <= 1297"):
        task_data("digits", 1500, 500)
    with pytest.raises(InputError, match=r"n_train=0"):
        task_data("mnist", 0, 10)


# ---- model inputs


def _pil_input(image: np.ndarray, side: int, mean: list[float], std: list[float]) -> np.ndarray:
    """The reference: PIL bilinear resize of the uint8 image, scale, replicate, normalise."""
    pil = Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR)
    grey = np.asarray(pil, dtype=np.float32) / 255.0
    return np.stack([(grey - m) / s for m, s in zip(mean, std, strict=True)])


@pytest.mark.parametrize("task", ["digits", "mnist"])
def test_model_inputs_match_pil_for_imagenet_models(task: str) -> None:
    images = task_data(task, 20, 10).images_train[:6]
    got = model_inputs(images, IMAGENET_PREP, image_size=64).numpy()
    assert got.shape == (6, 3, 64, 64) and got.dtype == np.float32
    mean, std = IMAGENET_PREP["mean"], IMAGENET_PREP["std"]
    expected = np.stack([_pil_input(im, 64, mean, std) for im in images])
    # one grey level (1/255 on the [0, 1] scale, then / std): PIL and torch round differently
    one_level = 1 / 255 / min(std) + 1e-5
    assert np.abs(got - expected).max() <= one_level
    assert np.mean(got != expected) < 0.1
    default = model_inputs(images[:2], IMAGENET_PREP)
    assert default.shape == (2, 3, tasks_module.DEFAULT_IMAGE_SIZE, 96)


def test_model_inputs_match_minizoo_transform() -> None:
    prep = {"input_size": [1, 28, 28], "mean": 0.13, "std": 0.31}
    transform = MnistTransform(prep["mean"], prep["std"])
    mnist = task_data("mnist", 20, 10).images_test[:5]  # 28x28: bit-identical to training's
    expected = np.stack([transform(Image.fromarray(im)).numpy() for im in mnist])
    np.testing.assert_array_equal(model_inputs(mnist, prep).numpy(), expected)
    digits = task_data("digits", 20, 10).images_test[:5]  # resized: within one grey level
    expected = np.stack([transform(Image.fromarray(im)).numpy() for im in digits])
    got = model_inputs(digits, prep, image_size=28).numpy()
    assert got.shape == (5, 1, 28, 28)
    assert np.abs(got - expected).max() <= 1 / 255 / prep["std"] + 1e-5
    with pytest.raises(InputError, match=r"image_size=64 does not fit .* mini-zoo"):
        model_inputs(digits, prep, image_size=64)


# ---- head and training loop


@pytest.mark.parametrize(
    ("spec", "head"),
    [(MOBILENET, "classifier.1"), ("efficientnet_lite:efficientnet-lite0", "_fc")],
)
def test_replace_head_of_imagenet_models(spec: str, head: str) -> None:
    from repscope.io.models import load_model

    module = load_model(spec, pretrained=False).module
    before = {k: v.clone() for k, v in module.state_dict().items() if not k.startswith(head)}
    assert replace_head(module, 7, seed=5) == head
    layer = module.get_submodule(head)
    assert layer.out_features == 7 and layer.weight.requires_grad
    assert module.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 7)
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_replace_head_of_minizoo_member_is_seeded() -> None:
    module = build_minizoo_module(MEMBERS[1])
    assert replace_head(module, 4, seed=1) == str(len(module) - 1)
    first = module[-1].weight.clone()
    replace_head(module, 4, seed=1)
    assert torch.equal(module[-1].weight, first)
    replace_head(module, 4, seed=2)
    assert not torch.equal(module[-1].weight, first)
    with pytest.raises(InputError, match=r"no nn\.Linear"):
        replace_head(torch.nn.Sequential(torch.nn.ReLU()), 4)


def _digits_inputs(n_train: int = 300) -> TaskInputs:
    prep = {"input_size": [1, 28, 28], "mean": 0.1, "std": 0.3}
    return TaskInputs.from_task(task_data("digits", n_train, 200), prep)


def test_fine_tune_trains_only_trainable_parameters() -> None:
    torch.manual_seed(0)
    module = build_minizoo_module(MEMBERS[1])
    module.requires_grad_(False)
    replace_head(module, 10)
    module[4].weight.requires_grad_(True)  # the hidden layer's weight, not its bias
    frozen = {k: v.clone() for k, v in module.state_dict().items()}
    steps: list[int] = []
    result = fine_tune(
        module, _digits_inputs(), epochs=2, learning_rate=1e-3, batch_size=64, on_step=steps.append
    )
    after = module.state_dict()
    changed = {k for k in frozen if not torch.equal(frozen[k], after[k])}
    assert changed == {"4.weight", "6.weight", "6.bias"}
    assert result.n_trainable == sum(after[k].numel() for k in changed)
    assert result.steps == len(steps) == 2 * 5 and sum(steps) == 2 * 300
    assert not module.training and result.epochs == 2 and result.seconds > 0
    with pytest.raises(InputError, match="no parameter of the module has requires_grad=True"):
        fine_tune(module.requires_grad_(False), _digits_inputs(), epochs=1, learning_rate=1e-3)


def test_fine_tune_checks_outputs_and_budget() -> None:
    module = build_minizoo_module(MEMBERS[0])
    replace_head(module, 3)
    with pytest.raises(InputError, match=r"3 outputs but the task has 10 .*replace_head"):
        fine_tune(module, _digits_inputs(), epochs=1, learning_rate=1e-3)
    with pytest.raises(InputError, match="learning_rate=2"):
        fine_tune(module, _digits_inputs(), epochs=1, learning_rate=2)


def test_fine_tune_improves_over_chance(zoo) -> None:
    _, table = zoo
    assert table["base"].tolist() == list(BASES) and not table["cached"].any()
    assert (table["test_accuracy"] > 0.5).all()  # chance is 0.1
    assert (table["n_trainable"] > 0).all() and (table["seconds"] > 0).all()


# ---- configs and names


def test_config_defaults_and_names() -> None:
    imagenet = FinetuneConfig(MOBILENET, "digits")
    assert (imagenet.epochs, imagenet.learning_rate, imagenet.image_size) == (2, 3e-4, 96)
    assert finetuned_name(imagenet) == "mobilenet_v2.imagenet1k_v1--digits"
    member = FinetuneConfig("minizoo:cnn-w8-d1-n500", "mnist")
    assert (member.epochs, member.learning_rate, member.image_size) == (10, 1e-3, 28)
    assert finetuned_name(member) == "minizoo-cnn-w8-d1-n500--mnist"
    lite = FinetuneConfig("efficientnet_lite:efficientnet-lite0", "digits", epochs=3)
    other = replace(lite, epochs=4)
    assert finetuned_name(lite).startswith("efficientnet-lite0--digits-")
    names = {finetuned_name(c) for c in (lite, other, replace(lite, epochs=2))}
    assert len(names) == 3
    assert FinetuneConfig(**asdict(lite)) == lite


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "cifar"}, r"task 'cifar' is not known"),
        ({"base": "torchvison:mobilenet_v2"}, r"unknown model source 'torchvison'"),
        ({"learning_rate": 2.0}, r"learning_rate=2.0 must be a number in \(0, 1\)"),
        ({"epochs": 0}, r"epochs=0 must be an integer in \[1, 1000\]"),
        ({"base": "minizoo:x", "image_size": 64}, r"image_size=64 does not fit minizoo:x"),
        ({"method": "lora"}, r"method='lora' is not known"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        FinetuneConfig(**{"base": MOBILENET, "task": "digits", **kwargs})


# ---- cache


def test_sidecar_records_provenance(zoo) -> None:
    cache, table = zoo
    folder = cache / "finetuned" / table.loc[0, "name"]
    sidecar = json.loads((folder / "finetune.json").read_text())
    assert sidecar["config"]["method"] == "full" and sidecar["config"]["n_train"] == 300
    assert sidecar["base"]["spec"] == BASES[0] and len(sidecar["base"]["weights_hash"]) == 64
    assert sidecar["head"] == {
        "name": "3",
        "in_features": 32,
        "out_features": 10,
        "weight_shape": [10, 32],
        "bias_shape": [10],
    }
    assert sidecar["data"]["n_test"] == 200 and sidecar["data"]["source"] == "builtin:digits"
    assert {"torch", "safetensors", "scikit-learn", "python"} <= sidecar["versions"].keys()
    assert sidecar["weights"]["sha256"] == sha256_file(folder / "weights.safetensors")
    assert table.loc[0, "weights"] == str(folder / "weights.safetensors")


def test_second_call_reuses_cache(zoo, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, table = zoo

    def no_training(*args, **kwargs):
        raise AssertionError("finetune_zoo retrained a cached model")

    monkeypatch.setattr(train_module, "fine_tune", no_training)
    again = finetune_zoo(BASES, ["digits"], cache_dir=cache, progress=True, **BUDGET)
    assert again["cached"].all()
    columns = ["name", "test_accuracy", "seconds", "n_trainable", "weights"]
    assert again[columns].equals(table[columns])


def test_missing_sidecar_retrains_identically(zoo, tmp_path: Path) -> None:
    cache, table = zoo
    root = _copy(cache, tmp_path)
    folder = root / "finetuned" / table.loc[0, "name"]
    before = sha256_file(folder / "weights.safetensors")
    (folder / "finetune.json").unlink()  # weights without a sidecar: an incomplete entry
    again = finetune_zoo(BASES, "digits", cache_dir=root, progress=False, **BUDGET)
    assert again["cached"].tolist() == [False, True]
    assert sha256_file(folder / "weights.safetensors") == before  # seeded: bitwise identical
    assert again.loc[0, "test_accuracy"] == table.loc[0, "test_accuracy"]


def test_force_retrains_bitwise_identically(zoo, tmp_path: Path) -> None:
    cache, table = zoo
    root = _copy(cache, tmp_path)
    again = finetune_zoo(BASES[1], "digits", cache_dir=root, progress=False, force=True, **BUDGET)
    assert not again.loc[0, "cached"]
    assert sha256_file(again.loc[0, "weights"]) == sha256_file(table.loc[1, "weights"])


def test_corrupted_weights_are_refused_then_retrained(zoo, tmp_path: Path) -> None:
    cache, table = zoo
    root = _copy(cache, tmp_path)
    name = table.loc[1, "name"]
    weights = root / "finetuned" / name / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"corrupted weights .*run `repscope zoo finetune minizoo"):
        load_finetuned(name, root)
    again = finetune_zoo(BASES, "digits", cache_dir=root, progress=False, **BUDGET)
    assert again["cached"].tolist() == [True, False]
    assert sha256_file(weights) == sha256_file(table.loc[1, "weights"])


def test_changed_base_or_config_is_retrained(zoo, tmp_path: Path) -> None:
    cache, table = zoo
    root = _copy(cache, tmp_path)
    sidecar_path = root / "finetuned" / table.loc[0, "name"] / "finetune.json"
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["base"]["weights_hash"] = "0" * 64  # as if the base had been retrained
    sidecar_path.write_text(json.dumps(sidecar))
    again = finetune_zoo(BASES[0], "digits", cache_dir=root, progress=False, **BUDGET)
    assert not again.loc[0, "cached"]
    budget = {**BUDGET, "epochs": 1}
    longer = finetune_zoo(BASES[0], "digits", cache_dir=root, progress=False, **budget)
    assert not longer.loc[0, "cached"] and longer.loc[0, "name"] != table.loc[0, "name"]


# ---- loading


def test_load_round_trip(zoo) -> None:
    cache, table = zoo
    model = load_finetuned(table.loc[1, "name"], cache)
    assert not model.module.training and model.head == "6"
    assert not any(p.requires_grad for p in model.module.parameters())
    assert model.weights == Path(table.loc[1, "weights"])
    data = task_data("digits", BUDGET["n_train"], BUDGET["n_test"], model.config.seed)
    x = model.inputs(data.images_test)
    loss, accuracy = score(model.module, x, torch.from_numpy(data.labels_test.copy()))
    assert accuracy == model.metrics["test_accuracy"] == table.loc[1, "test_accuracy"]
    assert loss == pytest.approx(model.metrics["test_loss"], rel=1e-5)
    by_config = load_finetuned(model.config, cache)
    with torch.no_grad():
        assert torch.equal(by_config.module(x), model.module(x))


def test_load_errors(zoo, tmp_path: Path) -> None:
    cache, _ = zoo
    config = FinetuneConfig(BASES[0], "mnist")
    with pytest.raises(
        InputError, match=r"not trained in .*run `repscope zoo finetune minizoo:t-mlp"
    ):
        load_finetuned(config, cache)
    with pytest.raises(InputError, match=r"did you mean minizoo-t-mlp-w32-d1-n500--digits-"):
        load_finetuned("minizoo-t-mlp-w32-d1-n500--digit", cache)
    with pytest.raises(InputError, match=r"is not in .*repscope zoo finetune BASE --task TASK"):
        load_finetuned("../evil", tmp_path)


def test_untrained_minizoo_base_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"minizoo model cnn-w8-d1-n500 is not trained .*zoo train"
    ):
        finetune_zoo("minizoo:cnn-w8-d1-n500", "digits", cache_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match=r"unknown budget option 'lr'"):
        finetune_zoo(BASES, "digits", cache_dir=tmp_path, lr=0.1)


def test_mobilenet_fine_tunes_end_to_end(tmp_path: Path) -> None:
    budget = {"n_train": 64, "n_test": 50, "epochs": 1, "image_size": 64}
    table = finetune_zoo(MOBILENET, "digits", cache_dir=tmp_path, progress=False, **budget)
    row = table.iloc[0]
    assert row["name"].startswith("mobilenet_v2.imagenet1k_v1--digits-")
    assert row["n_trainable"] == 2_236_682  # every parameter, with a 10-class head
    model = load_finetuned(row["name"], tmp_path)
    assert model.head == "classifier.1" and model.sidecar["head"]["weight_shape"] == [10, 1280]
    data = task_data("digits", 64, 50)
    x = model.inputs(data.images_test)
    assert x.shape == (50, 3, 64, 64)
    _, accuracy = score(model.module, x, torch.from_numpy(data.labels_test.copy()))
    assert accuracy == row["test_accuracy"]


# ---- CLI


def test_cli_json_then_cached_table(zoo, tmp_path: Path) -> None:
    root = _copy(zoo[0], tmp_path)
    args = ["zoo", "finetune", BASES[0], "--task", "digits", "--task", "mnist", "--cache-dir", root]
    budget = ["--n-train", 300, "--n-test", 200, "--epochs", 8]
    result = invoke(*args, *budget, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["models"]
    assert [(r["base"], r["task"], r["cached"]) for r in rows] == [
        (BASES[0], "digits", True),
        (BASES[0], "mnist", False),
    ]
    assert rows[1]["test_accuracy"] > 0.5 and Path(rows[1]["weights"]).is_file()
    result = invoke(*args, *budget)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("yes") == 2  # every row cached; names may fold across lines


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--task", "digts"], r"task 'digts' is not known \(did you mean 'digits'"),
        (["nosuch:model", "--task", "digits"], r"unknown model source 'nosuch'"),
        (["--task", "digits", "--n-train", "5000"], r"pass n_train <= 1297"),
        (["minizoo:t-nope", "--task", "digits"], r"minizoo model 't-nope' is not known"),
    ],
)
def test_cli_bad_input(zoo, args: list[str], match: str) -> None:
    bases = [] if ":" in args[0] else [BASES[0]]
    result = invoke("zoo", "finetune", *bases, *args, "--cache-dir", zoo[0])
    assert_one_line_error(result, match)


def test_cli_base_and_task_defaults(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from repscope.zoo import MINIZOO
    from repscope.zoo import cli as zoo_cli

    members = [f"minizoo:{c.name}" for c in MINIZOO]
    assert zoo_cli._finetune_bases(None, False, FINETUNE_BASES) == list(FINETUNE_BASES)
    assert zoo_cli._finetune_bases(None, True, FINETUNE_BASES) == members
    assert zoo_cli._finetune_bases([MOBILENET], True, FINETUNE_BASES) == [MOBILENET, *members]
    monkeypatch.setattr(tasks_module, "fashion_mnist_installed", lambda: False)
    assert zoo_cli._default_tasks() == ["mnist", "digits"]
    (note,) = capsys.readouterr().err.splitlines()
    assert note.startswith("note: Fashion-MNIST is not installed")
    monkeypatch.setattr(tasks_module, "fashion_mnist_installed", lambda: True)
    assert zoo_cli._default_tasks() == list(TASKS)
