"""``repscope zoo``: train the mini zoo and show the paper's zoo table.

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
    help="Model zoos: train the offline mini zoo, list the paper's timm zoo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

_TRAIN_HEADER = ("name", "params", "n_train", "train acc", "test acc", "sec", "cached")
_LIST_HEADER = ("spec", "params (M)", "training data", "res", "top-1")


@zoo_app.command("train")
def train(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Members to train (default: all), e.g. cnn-w16-d2-n4000."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Cache root (default: $REPSCOPE_CACHE or ~/.cache/repscope)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Retrain even when cached.")] = False,
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
