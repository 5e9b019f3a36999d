"""Command-line interface: ``repscope lid``, ``spectrum``, ``align``, ``extract``, ``layers``…

A thin typer app over the library. ``--json`` prints exactly one JSON object on stdout and
nothing else there. Bad input prints one line ``error: <problem and fix>`` on stderr and exits
with status 2, without a traceback (:mod:`repscope._cli_common`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

import repscope
from repscope._cli_brain import brain_align, brain_lid, simulate_fmri
from repscope._cli_common import (
    DeviceOpt,
    JsonOpt,
    _fmt,
    _OneLineErrorGroup,
    _parse_choice,
    _parse_k,
    _parse_pca,
    _print_json,
    _user_errors,
)
from repscope._cli_models import extract, layers
from repscope._cli_run import demo, run
from repscope._cli_weights import weights
from repscope._validation import InputError
from repscope.io import load_embedding
from repscope.zoo.cli import zoo_app

app = typer.Typer(
    name="repscope",
    cls=_OneLineErrorGroup,
    help="Local intrinsic dimension and global spectra of representations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"repscope {repscope.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """repscope: local intrinsic dimension and global spectra of representations."""


FileArg = Annotated[
    Path,
    typer.Argument(
        help="Embedding: a .npy array (n_samples, n_features), or a .npz with 'X' (and 'ids').",
        show_default=False,
    ),
]


@app.command()
def lid(
    file: FileArg,
    k: Annotated[
        str | None,
        typer.Option(
            "--k",
            help="Comma-separated neighbourhood sizes, e.g. 5,10,20,50. "
            "Default: 5,10,20,50,100,200,500,1000 capped below the number of distinct points.",
            show_default=False,
        ),
    ] = None,
    estimator: Annotated[
        str,
        typer.Option(help="mle, mle-unbiased, twonn, mada, mom, tle or gride."),
    ] = "mle",
    aggregate: Annotated[
        str, typer.Option(help="How pointwise values become one number: mean, harmonic, median.")
    ] = "mean",
    pca: Annotated[
        str,
        typer.Option(
            help="Principal components kept first (fewer if the data has fewer), or 'none' to skip."
        ),
    ] = "300",
    duplicates: Annotated[
        str, typer.Option(help="Exact duplicate rows: 'drop' (and count them) or 'raise'.")
    ] = "drop",
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples of the points for a CI; 0 for none.")
    ] = 0,
    confidence: Annotated[float, typer.Option(help="Level of the bootstrap CI.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Local intrinsic dimension profile of an embedding over neighbourhood sizes K."""
    with _user_errors():
        ks = _parse_k(k)
        estimator = _parse_choice("--estimator", estimator, repscope.ESTIMATORS)
        aggregate = _parse_choice("--aggregate", aggregate, repscope.AGGREGATES)
        n_pca = _parse_pca(pca)
        duplicates = _parse_choice("--duplicates", duplicates, ("drop", "raise"))
        if bootstrap < 0:
            raise InputError(f"--bootstrap {bootstrap} is negative; pass 0 (no CI) or e.g. 200.")
        X, _ = load_embedding(file)
        result = repscope.local_dimension(
            X,
            k=ks,
            estimator=estimator,
            aggregate=aggregate,
            pca=n_pca,
            duplicates=duplicates,
            device=device,
            n_bootstrap=bootstrap,
            confidence=confidence,
            random_state=seed,
        )
    if json_out:
        _print_json(result.to_dict())
        return
    _print_lid_table(file, result, confidence)


def _print_lid_table(file: Path, result: Any, confidence: float) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    pca = "none" if result.pca is None else f"{result.pca} components"
    console.print(
        f"[bold]{escape(file.name)}[/]: {result.n_points} points "
        f"({result.duplicates_dropped} duplicates dropped), {result.n_features} features, "
        f"PCA {pca}; "
        f"estimator {result.estimator}, aggregate {result.aggregate}",
        highlight=False,
    )
    table = Table("K", "LID", title="local intrinsic dimension")
    table.columns[0].justify = table.columns[1].justify = "right"
    if result.ci is not None:
        table.add_column(f"{confidence * 100:g}% CI", justify="right")
    for kk in result.k:
        row = [str(kk), _fmt(result.profile[kk])]
        if result.ci is not None:
            low, high = result.ci[kk]
            row.append(escape(f"[{_fmt(low)}, {_fmt(high)}]"))
        table.add_row(*row)
    console.print(table)


@app.command()
def spectrum(file: FileArg, json_out: JsonOpt = False) -> None:
    """Global spectral measures: PCA90/95, participation ratio, effective rank, power-law alpha."""
    with _user_errors():
        X, _ = load_embedding(file)
        spec = repscope.spectrum(X)
    summary = {
        "pca90": spec.pca90,
        "pca95": spec.pca95,
        "participation_ratio": spec.participation_ratio,
        "effective_rank": spec.effective_rank,
        "alpha": spec.alpha,
    }
    if json_out:
        _print_json(summary)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{escape(file.name)}[/]: {X.shape[0]} samples, {X.shape[1]} features",
        highlight=False,
    )
    lo, hi = spec.alpha_range
    table = Table("measure", "value", title="global spectrum")
    table.columns[1].justify = "right"
    table.add_row("PCA components for 90% variance", str(spec.pca90))
    table.add_row("PCA components for 95% variance", str(spec.pca95))
    table.add_row("participation ratio", _fmt(spec.participation_ratio))
    table.add_row("effective rank", _fmt(spec.effective_rank))
    table.add_row(f"power-law alpha (ranks {lo}–{hi})", _fmt(spec.alpha, 3))
    console.print(table)


@app.command()
def align(
    file_x: Annotated[Path, typer.Argument(help="Source embedding X (.npy or .npz).")],
    file_y: Annotated[Path, typer.Argument(help="Target embedding Y (.npy or .npz).")],
    method: Annotated[
        str,
        typer.Option(
            help="ridge, cka, cka-debiased, cka-rbf, rsa, mutual-knn, cca, svcca, pwcca or "
            "procrustes."
        ),
    ] = "ridge",
    k: Annotated[int, typer.Option("--k", help="Neighbours for mutual-knn.")] = 10,
    test_size: Annotated[float, typer.Option(help="Held-out share for ridge.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the ridge split and folds.")] = 0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Alignment between two embeddings of the same stimuli (rows matched on ids if given)."""
    from repscope.alignment.methods import METHODS, align
    from repscope.io.arrays import match_rows

    with _user_errors():
        method = _parse_choice("--method", method, METHODS)
        X, ids_x = load_embedding(file_x)
        Y, ids_y = load_embedding(file_y)
        X, Y, _ = match_rows(X, ids_x, Y, ids_y)
        result = align(X, Y, method, k=k, test_size=test_size, random_state=seed, device=device)
    result["n_stimuli"] = len(X)
    if json_out:
        _print_json(result)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("field", "value", title=f"alignment of {file_x.name} with {file_y.name}")
    for key, value in result.items():
        table.add_row(key, _fmt(value, 4) if isinstance(value, float) else str(value))
    Console().print(table)


@app.command("dimension-demo")
def dimension_demo(
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """LID profiles and global measures of built-in offline data (manifolds, digits, MNIST)."""
    from rich.console import Console
    from rich.progress import Progress

    from repscope.demo import DEMO_K, demo_datasets, iter_demo

    sets = demo_datasets()
    rows = []
    with _user_errors():
        with Progress(console=Console(stderr=True), transient=True, disable=not progress) as bar:
            task = bar.add_task(f"measuring {sets[0].name}", total=len(sets))
            for i, row in enumerate(iter_demo(sets, device=device)):
                rows.append(row)
                following = f"measuring {sets[i + 1].name}" if i + 1 < len(sets) else "done"
                bar.update(task, advance=1, description=following)
    if json_out:
        _print_json({"k": list(DEMO_K), "datasets": [r.to_dict() for r in rows]})
        return
    _print_demo_table(rows, DEMO_K)


def _print_demo_table(rows: Sequence[Any], ks: Sequence[int]) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = [kk for kk in (10, 50, 200) if kk in ks] or list(ks)
    table = Table(title="repscope demo: local (MLE, mean) vs global dimension")
    table.add_column("dataset", no_wrap=True)
    table.add_column("true d", justify="right")
    for kk in shown:
        table.add_column(f"LID K={kk}", justify="right")
    for name in ("PCA90", "PR", "eff. rank"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(
            r.name,
            "–" if r.true_dim is None else str(r.true_dim),
            *(_fmt(r.profile.get(kk)) for kk in shown),
            str(r.pca90),
            _fmt(r.participation_ratio, 1),
            _fmt(r.effective_rank, 1),
        )
    console = Console()
    console.print(table)
    console.print(
        "LID: Levina–Bickel MLE averaged over points, after PCA to 300 components. "
        "PCA90: components for 90% of the variance. PR: participation ratio. "
        "Data sizes and every K: repscope demo --json.",
        highlight=False,
    )


app.command()(extract)
app.command()(layers)
app.command()(run)
app.command()(demo)
app.command("brain-align")(brain_align)
app.command("brain-lid")(brain_lid)
app.command("simulate-fmri")(simulate_fmri)
app.command()(weights)
app.add_typer(
    zoo_app, name="zoo", help="The paper's model zoo table and the mini zoo that trains here."
)


if __name__ == "__main__":  # pragma: no cover
    app()
