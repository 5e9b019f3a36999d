"""``repscope extract`` and ``repscope layers``: embeddings from any model spec."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from repscope._cli_common import DeviceOpt, JsonOpt, _parse_choice, _print_json, _user_errors
from repscope._validation import InputError, check_writable_folder

SpecArg = Annotated[
    str,
    typer.Argument(
        help="Model spec: timm:NAME[.TAG], torchvision:NAME[.WEIGHTS], open_clip:ARCH/TAG, "
        "hf:ORG/NAME, local:PATH[?arch=TIMM_NAME], efficientnet_lite:efficientnet-lite0, "
        "minizoo:NAME.",
        show_default=False,
    ),
]
RandomOpt = Annotated[
    bool,
    typer.Option(
        "--random-weights", help="The architecture with seeded random weights (no download)."
    ),
]


def extract(
    spec: SpecArg,
    stimuli: Annotated[
        str,
        typer.Option(
            help="Image folder, .txt list of files, nsd_stimuli.hdf5, .npy image array, or "
            "builtin:NAME (photos, digits, mnist, lfw, fashion-mnist).",
            show_default=False,
        ),
    ],
    layer: Annotated[
        str, typer.Option(help="'penultimate' or a module name from 'repscope layers SPEC'.")
    ] = "penultimate",
    pooling: Annotated[str, typer.Option(help="Token outputs: mean or cls.")] = "mean",
    nsd_ids: Annotated[
        str | None,
        typer.Option(help="NSD hdf5 only: comma-separated 0-based nsdIds, or a .txt of them."),
    ] = None,
    batch_size: Annotated[str, typer.Option(help="Images per batch, or auto.")] = "auto",
    workers: Annotated[str, typer.Option(help="Image-decoding processes, or auto.")] = "auto",
    on_error: Annotated[
        str, typer.Option(help="Unreadable image: skip (count and report it) or raise.")
    ] = "skip",
    cache_dir: Annotated[
        Path | None, typer.Option(help="Cache root (default $REPSCOPE_CACHE or ~/.cache/repscope).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Also write the embedding here (.npz with X and ids)."),
    ] = None,
    random_weights: RandomOpt = False,
    device: DeviceOpt = "auto",
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Embed a stimulus set with one layer of a model; cached, resumable, one row per image."""
    from repscope.io.extract import extract_embeddings
    from repscope.io.stimuli import open_stimuli

    with _user_errors():
        pooling = _parse_choice("--pooling", pooling, ("mean", "cls"))
        on_error = _parse_choice("--on-error", on_error, ("skip", "raise"))
        if out is not None:
            _check_out(out)
        source = open_stimuli(stimuli, nsd_ids=_parse_ids(nsd_ids))
        result = extract_embeddings(
            spec,
            source,
            layer=layer,
            pooling=pooling,
            pretrained=not random_weights,
            batch_size=_parse_auto("--batch-size", batch_size, minimum=1),
            num_workers=_parse_auto("--workers", workers, minimum=0),
            device=device,
            cache_dir=cache_dir,
            on_error=on_error,
            progress=progress and not json_out,
        )
        if out is not None:
            _copy_out(result.path, out)
    summary = _summary(spec, layer, result, out)
    if json_out:
        _print_json(summary)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("field", "value", title=f"embedding of {summary['stimuli']}")
    for key, value in summary.items():
        if key != "skipped":
            table.add_row(key, str(value))
    Console().print(table)
    if result.skipped:
        typer.echo(
            f"warning: {len(result.skipped)} unreadable stimuli left out (first: "
            f"{result.skipped[0]}); their reasons are in the cache's meta.json.",
            err=True,
        )


def layers(
    spec: SpecArg,
    random_weights: RandomOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """List a model's layers (module names, types, output shapes) for --layer."""
    from repscope.io.models import list_layers, load_model

    with _user_errors():
        model = load_model(spec, pretrained=not random_weights)
        found = list_layers(model)
    rows = [
        {
            "name": info.name,
            "type": info.type,
            "output_shape": None if info.output_shape is None else list(info.output_shape),
        }
        for info in found
    ]
    if json_out:
        _print_json({"model": spec, "layers": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("layer", "type", "output shape (batch 1)", title=f"layers of {spec}")
    for row in rows:
        shape = "–" if row["output_shape"] is None else "×".join(map(str, row["output_shape"]))
        table.add_row(row["name"], row["type"], shape)
    Console().print(table)


def _parse_auto(option: str, text: str, *, minimum: int) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    if not (text.strip().isascii() and text.strip().isdigit()) or int(text) < minimum:
        raise InputError(f"{option} {text!r} must be 'auto' or an integer >= {minimum}.")
    return int(text)


def _parse_ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    if Path(text).suffix == ".txt":
        path = Path(text)
        if not path.is_file():
            raise InputError(f"--nsd-ids file {text!r} does not exist; pass a .txt of nsdIds.")
        text = ",".join(path.read_text().split())
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isascii() and p.isdigit() for p in parts):
        raise InputError(
            f"--nsd-ids {text[:40]!r} is not a list of whole numbers; pass e.g. --nsd-ids 0,1,2."
        )
    return [int(p) for p in parts]


def _check_out(out: Path) -> None:
    """Refuse a bad --out before extracting: not .npz, a folder, or in an unwritable place."""
    if out.suffix != ".npz":
        raise InputError(
            f"--out {str(out)!r} must end in .npz (it holds X and ids); pass e.g. --out emb.npz."
        )
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; pass a file name ending in .npz.")
    check_writable_folder(out.parent, "the folder of --out")


def _copy_out(path: Path | None, out: Path) -> None:
    from repscope.io.atomic import atomic_write

    _check_out(out)
    if path is None:  # pragma: no cover - the CLI always caches
        raise InputError("nothing to copy: the run was not cached.")
    with path.open("rb") as src, atomic_write(out) as dst:
        shutil.copyfileobj(src, dst)


def _summary(spec: str, layer: str, result: Any, out: Path | None) -> dict[str, Any]:
    meta = result.meta
    return {
        "model": spec,
        "layer": layer,
        "stimuli": _stimuli_label(meta.get("stimuli", {})),
        "shape": list(result.X.shape),
        "skipped": list(result.skipped),
        "n_skipped": len(result.skipped),
        "from_cache": result.from_cache,
        "images_per_second": meta.get("images_per_second"),
        "device": meta.get("device"),
        "cache_file": str(result.path),
        "out": None if out is None else str(out),
    }


def _stimuli_label(described: dict[str, Any]) -> str:
    if "location" in described:
        return str(described["location"])
    return f"{described.get('name', described.get('kind'))} ({described.get('n')} images)"
