"""``repscope zoo``: train the mini zoo, fine-tune pretrained models, show the paper's zoo table.

A typer app the main CLI mounts as ``repscope zoo``. Like every repscope command, ``--json``
prints exactly one JSON object on stdout, and bad input prints one ``error:`` line on stderr
and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from repscope._cli_common import JsonOpt, _fmt, _print_json, _user_errors

zoo_app = typer.Typer(
    name="zoo",
    help="Model zoos: train the offline mini zoo, fine-tune offline models, list the paper's zoo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

CacheOpt = Annotated[
    Path | None, typer.Option(help="Cache root (default: $REPSCOPE_CACHE or ~/.cache/repscope).")
]
ForceOpt = Annotated[bool, typer.Option(help="Retrain even when cached.")]

_TRAIN_HEADER = ("name", "params", "n_train", "train acc", "test acc", "sec", "cached")
_LIST_HEADER = ("spec", "params (M)", "training data", "res", "top-1")
_FINETUNE_HEADER = (
    "name",
    "base",
    "task",
    "trainable",
    "train acc",
    "test acc",
    "sec",
    "cached",
)


@zoo_app.command("train")
def train(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Members to train (default: all), e.g. cnn-w16-d2-n4000."),
    ] = None,
    cache_dir: CacheOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train mini-zoo members on MNIST (CPU, seconds each), reusing the cache."""
    from repscope.zoo.minizoo import train_minizoo

    with _user_errors():
        table = train_minizoo(
            names or None, cache_dir=cache_dir, force=force, progress=not json_out
        )
    records = table.to_dict(orient="records")
    if json_out:
        _print_json({"models": records})
        return
    header = _TRAIN_HEADER
    _print_table(
        "mini zoo (MNIST, 1000 held-out images)",
        header,
        header[1:-1],
        [
            (
                r["name"],
                f"{r['n_params']:,}",
                str(r["n_train"]),
                _fmt(r["train_accuracy"], 4),
                _fmt(r["test_accuracy"], 4),
                _fmt(r["seconds"], 1),
                "yes" if r["cached"] else "no",
            )
            for r in records
        ],
    )


@zoo_app.command("finetune")
def finetune(
    bases: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model specs to fine-tune (default: the four offline ImageNet models), e.g. "
            "torchvision:mobilenet_v2.IMAGENET1K_V1 or minizoo:cnn-w8-d1-n500."
        ),
    ] = None,
    task: Annotated[
        list[str] | None,
        typer.Option(
            help="Task, repeatable: fashion-mnist, mnist, digits (default: all installed)."
        ),
    ] = None,
    minizoo: Annotated[
        bool,
        typer.Option(
            "--minizoo",
            help="Also fine-tune every mini-zoo member (trained first if missing); without "
            "BASES, only them.",
        ),
    ] = False,
    n_train: Annotated[int | None, typer.Option(help="Training images (default 1000).")] = None,
    n_test: Annotated[int | None, typer.Option(help="Test images (default 500).")] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs (default 2; mini-zoo members 10).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default 32).")] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="AdamW step size (default 3e-4; mini-zoo members 1e-3).")
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option(help="Input side for ImageNet models (default 96); mini-zoo: always 28."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of split, head, training.")] = None,
    cache_dir: CacheOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Fully fine-tune pretrained models on offline image tasks (CPU), reusing the cache."""
    from repscope.zoo.finetuned import FINETUNE_BASES, finetune_zoo

    budget = {
        "n_train": n_train,
        "n_test": n_test,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "image_size": image_size,
        "seed": seed,
    }
    with _user_errors():
        specs = _finetune_bases(bases, minizoo, FINETUNE_BASES)
        _train_minizoo_bases(specs, cache_dir, progress=not json_out)
        table = finetune_zoo(
            specs,
            task or _default_tasks(),
            cache_dir=cache_dir,
            force=force,
            progress=not json_out,
            **{k: v for k, v in budget.items() if v is not None},
        )
    records = table.to_dict(orient="records")
    if json_out:
        _print_json({"models": records})
        return
    _print_table(
        "fine-tuned zoo (full fine-tuning, held-out test images)",
        _FINETUNE_HEADER,
        _FINETUNE_HEADER[3:-1],
        [
            (
                r["name"],
                r["base"],
                r["task"],
                f"{r['n_trainable']:,}",
                _fmt(r["train_accuracy"], 4),
                _fmt(r["test_accuracy"], 4),
                _fmt(r["seconds"], 1),
                "yes" if r["cached"] else "no",
            )
            for r in records
        ],
    )


def _finetune_bases(bases: list[str] | None, minizoo: bool, defaults: tuple[str, ...]) -> list[str]:
    """The specs to fine-tune: BASES, plus the mini zoo with --minizoo; default the four."""
    from repscope.zoo.minizoo import MINIZOO

    specs = list(bases or ())
    if minizoo:
        specs += [f"minizoo:{c.name}" for c in MINIZOO]
    return list(dict.fromkeys(specs)) if specs else list(defaults)


def _train_minizoo_bases(specs: list[str], cache_dir: Path | None, progress: bool) -> None:
    """Train the default mini-zoo members among ``specs`` that the cache lacks."""
    from repscope.zoo._members import BY_NAME
    from repscope.zoo.minizoo import train_minizoo

    names = [s.partition(":")[2] for s in specs if s.startswith("minizoo:")]
    members = [n for n in names if n in BY_NAME]
    if members:
        train_minizoo(members, cache_dir=cache_dir, progress=progress)


def _default_tasks() -> list[str]:
    """All tasks when Fashion-MNIST is installed; else mnist and digits, with a note."""
    from repscope.finetune.tasks import TASKS, fashion_mnist_installed

    if fashion_mnist_installed():
        return list(TASKS)
    typer.echo(
        "note: Fashion-MNIST is not installed (sudo apt-get install -y dataset-fashion-mnist); "
        "fine-tuning on mnist and digits only.",
        err=True,
    )
    return [t for t in TASKS if t != "fashion-mnist"]


@zoo_app.command("list")
def list_models(
    extra: Annotated[
        Path | None,
        typer.Option(help="CSV whose rows extend or override the shipped table, by spec."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The paper's model zoo: timm specs, sizes, training data, published ImageNet top-1."""
    from repscope.zoo.metadata import load_zoo_table

    with _user_errors():
        table = load_zoo_table(extra)
    if json_out:
        _print_json({"models": table.to_dict(orient="records")})
        return
    _print_table(
        f"paper zoo ({len(table)} models; all columns: --json)",
        _LIST_HEADER,
        ("params (M)", "res", "top-1"),
        [_list_row(row) for row in table.to_dict(orient="records")],
    )


def _list_row(row: dict[str, Any]) -> tuple[str, ...]:
    data = " → ".join(d for d in (row["pretrain_data"], *row["finetune_data"].split("→")) if d)
    return (
        row["spec"],
        _fmt(row["params_m"], 2),
        data,
        _fmt(row["resolution"], 0),
        _fmt(row["imagenet_top1"], 3),
    )


def _print_table(
    title: str, header: tuple[str, ...], numeric: tuple[str, ...], rows: list[tuple[str, ...]]
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header, title=title)
    for column in table.columns:
        column.justify = "right" if column.header in numeric else "left"
    table.columns[0].overflow = "fold"
    for row in rows:
        table.add_row(*row)
    Console().print(table)
