"""``repscope weights BASE TUNED [TUNED ...]``: the spectral basis under fine-tuning, per layer.

For each fine-tune: :func:`repscope.weightspace.spectral_stability` against the base (per-layer
scores at ``--rank`` and the summary); with two or more fine-tunes also
:func:`repscope.weightspace.spectral_sharing`. A rich table by default, one JSON object with
``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from repscope._cli_common import JsonOpt, _fmt, _parse_k, _print_json, _user_errors

ModelArg = Annotated[
    str,
    typer.Argument(
        help="A model spec (torchvision:mobilenet_v2.IMAGENET1K_V1, minizoo:NAME, "
        "finetuned:NAME, ...) or a .safetensors/.pt state-dict file.",
        show_default=False,
    ),
]

# overlap of the left/right top-r subspaces, their random baselines r/d, the update's share
# inside them, the relative change of the top-r singular values and of the whole matrix
_LAYER_HEADER = ("layer", "kind", "shape", "ovl L", "ovl R", "r/d L", "r/d R", "share", "Δσ")
_LAYER_HEADER += ("ΔW",)


def weights(
    base: ModelArg,
    tuned: Annotated[
        list[str],
        typer.Argument(help="One or more fine-tunes of BASE (specs or files).", show_default=False),
    ],
    rank: Annotated[int, typer.Option(help="r of the per-layer table and the summary.")] = 16,
    ranks: Annotated[
        str, typer.Option(help="Comma-separated ranks for the curves (JSON's layer rows).")
    ] = "1,2,4,8,16,32,64",
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="Layer-name pattern to leave out (repeatable), e.g. 'classifier.*'."),
    ] = None,
    gap_tol: Annotated[
        float, typer.Option(help="Relative singular-value gap for index-wise alignment.")
    ] = 0.01,
    n_null: Annotated[int, typer.Option(help="Random rotations for the sharing null.")] = 1000,
    device: Annotated[str, typer.Option(help="Where the SVDs run: auto, cpu or cuda.")] = "auto",
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Cache root for minizoo:/finetuned: specs (default: $REPSCOPE_CACHE)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Stability of BASE's singular basis under fine-tuning, and sharing across fine-tunes."""
    from repscope.weightspace import spectral_sharing, spectral_stability

    with _user_errors():
        curve_ranks = tuple(sorted({*(_parse_k(ranks, "--ranks") or ()), rank}))
        options = {"exclude": exclude or (), "device": device, "cache_dir": cache_dir}
        results = [
            spectral_stability(base, t, curve_ranks, gap_tol=gap_tol, **options) for t in tuned
        ]
        sharing = (
            spectral_sharing(base, tuned, rank, n_null=n_null, **options)
            if len(tuned) > 1
            else None
        )
    if json_out:
        _print_json(
            {
                "base": results[0].base,
                "rank": rank,
                "models": [r.to_dict(rank) for r in results],
                "sharing": sharing.to_dict() if sharing is not None else None,
            }
        )
        return
    for result in results:
        _print_stability(result, rank)
    if sharing is not None:
        _print_sharing(sharing)


def _print_stability(result: Any, rank: int) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = result.layers[result.layers["rank"] == rank]
    table = Table(*_LAYER_HEADER, title=f"{result.base} → {result.tuned}, r = {rank}")
    for column in table.columns[3:]:
        column.justify = "right"
    table.columns[0].overflow = table.columns[2].overflow = "fold"
    for row in rows.to_dict(orient="records"):
        capped = " (capped)" if row["capped"] else ""
        table.add_row(
            row["layer"].removesuffix(".weight") + capped,
            row["kind"],
            row["shape"],
            *(_fmt(row[c], 3) for c in ("overlap_left", "overlap_right")),
            *(_fmt(row[c], 3) for c in ("baseline_left", "baseline_right")),
            _fmt(row["update_share"], 3),
            _fmt(row["sigma_change"], 3),
            _fmt(row["update_norm"], 3),
        )
    console = Console()
    console.print(table)
    s = result.summary(rank)
    # ΔW: ‖W′ − W‖_F / ‖W‖_F; Δσ: ‖σ′_{1:r} − σ_{1:r}‖ / ‖σ_{1:r}‖
    console.print(
        f"summary over {s['n_layers']} layers ({s['n_changed']} changed): overlap "
        f"{_fmt(s['overlap'], 3)} (left {_fmt(s['overlap_left'], 3)}, right "
        f"{_fmt(s['overlap_right'], 3)}; random {_fmt(s['baseline_left'], 3)} / "
        f"{_fmt(s['baseline_right'], 3)}), update share {_fmt(s['update_share'], 3)}, σ change "
        f"{_fmt(s['sigma_change'], 4)}, index-wise alignment {_fmt(s['index_alignment'], 3)}"
    )
    if result.skipped:
        console.print(f"skipped {len(result.skipped)} tensors (--json lists them and why)")


def _print_sharing(sharing: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    header = ("a", "b", "side", "layers", "overlap", "r/d", "null mean", "p")
    table = Table(*header, title=f"shared update directions, r = {sharing.rank}")
    for column in table.columns[3:]:
        column.justify = "right"
    table.columns[0].overflow = table.columns[1].overflow = "fold"
    for row in sharing.summary.to_dict(orient="records"):
        table.add_row(
            row["a"],
            row["b"],
            row["side"],
            str(row["n_layers"]),
            _fmt(row["overlap"], 3),
            _fmt(row["baseline"], 3),
            _fmt(row["null_mean"], 3),
            f"{row['p_value']:.3g}",
        )
    Console().print(table)
