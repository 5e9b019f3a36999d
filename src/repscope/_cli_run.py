"""``repscope run CONFIG``: a whole study from one TOML file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from repscope._cli_common import JsonOpt, _print_json, _user_errors


def run(
    config: Annotated[Path, typer.Argument(help="Study config (TOML); see examples/.")],
    output: Annotated[
        Path | None, typer.Option(help="Output folder (overrides [study] output).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan with estimated time and memory.")
    ] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache root.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Run per-model stages on a local Dask cluster of N workers (overrides [cluster])."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Run per-model stages on this Dask scheduler address (overrides [cluster])."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress display on stderr.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Run a study: embeddings, dimension, alignment, brain, statistics, figures, report."""
    from repscope.experiment.config import load_config
    from repscope.experiment.run import plan_study, planned_images, run_study

    with _user_errors():
        cfg = _with_output(load_config(config), output)
        if dry_run:
            n = planned_images(cfg)
            stages = plan_study(cfg, n_images=n)
            _print_plan(stages, n, json_out)
            return
        with _executor(workers, scheduler, cfg.cluster) as executor:
            result = run_study(
                cfg, progress=progress and not json_out, cache_dir=cache_dir, executor=executor
            )
    _print_result(result, json_out)


@contextmanager
def _executor(workers: int | None, scheduler: str | None, cluster: Any) -> Iterator[Any]:
    """None (in process) without --workers, --scheduler or [cluster], else a Dask executor,
    closed after; --workers/--scheduler override the config's [cluster] table."""
    if workers is None and scheduler is None and cluster is None:
        yield None
        return
    from repscope.experiment.executor import cluster_executor, dask_executor

    if workers is not None or scheduler is not None:
        executor = dask_executor(workers=workers, scheduler=scheduler)
    else:
        executor = cluster_executor(cluster)
    try:
        yield executor
    finally:
        executor.close()


def demo(
    output: Annotated[
        Path, typer.Option(help="Folder for the demo's tables, figures and report.")
    ] = Path("repscope-demo"),
    cache_dir: Annotated[
        Path | None, typer.Option(help="Embedding and mini-zoo cache root.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress display on stderr.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """The whole study on the built-in demo, offline: mini zoo, MobileNetV2, EfficientNet-Lite0,
    scikit-learn's digits, simulated fMRI read through the NSD loader; prints the findings."""
    from importlib.resources import files

    from repscope.experiment.config import load_config
    from repscope.experiment.run import findings, run_study

    with _user_errors():
        cfg = _with_output(load_config(files("repscope.experiment") / "demo.toml"), output)
        result = run_study(cfg, progress=progress and not json_out, cache_dir=cache_dir)
    if not json_out:
        for line in findings(result.statistics, cfg):
            typer.echo(f"- {line}")
    _print_result(result, json_out)


def _print_result(result: Any, json_out: bool) -> None:
    summary = {
        "output": str(result.output),
        "report": None if result.report is None else str(result.report),
        "seconds": round(result.seconds, 1),
        "stages_reused": result.stages_reused,
        "files": {k: str(v) for k, v in result.files.items()},
    }
    if json_out:
        _print_json(summary)
        return
    typer.echo(f"study finished in {result.seconds:.0f} s; tables in {result.output}")
    if result.report is not None:
        typer.echo(f"report: {result.report}")


def _with_output(cfg: Any, output: Path | None) -> Any:
    if output is None:
        return cfg
    study = cfg.study.model_copy(update={"output": output.resolve()})
    return cfg.model_copy(update={"study": study})


def _print_plan(stages: list[Any], n_images: int, json_out: bool) -> None:
    rows = [
        {
            "stage": s.kind,
            "on": s.name,
            "seconds": round(s.seconds, 1),
            "memory_gb": round(s.memory_bytes / 1e9, 2),
        }
        for s in stages
    ]
    total = sum(s.seconds for s in stages)
    peak = max((s.memory_bytes for s in stages), default=0.0)
    if json_out:
        _print_json({"stages": rows, "seconds": round(total, 1), "peak_memory_gb": peak / 1e9})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("stage", "on", "est. seconds", "est. memory (GB)", title="study plan")
    for r in rows:
        table.add_row(r["stage"], r["on"], f"{r['seconds']:.1f}", f"{r['memory_gb']:.2f}")
    Console().print(table)
    note = (
        ""
        if n_images
        else " (image count unknown until the stimuli load: extraction not estimated)"
    )
    typer.echo(f"estimated total {total / 60:.1f} min, peak memory {peak / 1e9:.1f} GB{note}")
