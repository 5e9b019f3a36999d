"""One progress display for slow loops: a rich bar with a rate column, or nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["progress_bar"]


@contextlib.contextmanager
def progress_bar(
    total: int, description: str, *, unit: str = "items", enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Show a rich progress bar on stderr while the block runs; yield ``advance(n)``.

    stdout stays for results (tables, JSON), so a bar never mixes into piped output.

    Parameters
    ----------
    total : int
        Number of items the loop will process.
    description : str
        Text left of the bar.
    unit : str
        Name of an item in the rate column, e.g. ``"img"`` shows ``42.0 img/s``.
    enabled : bool
        False yields a no-op ``advance`` and draws nothing (library use, tests, logs).
    """
    if not enabled:
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:  # type: ignore[no-untyped-def]
            speed = task.finished_speed or task.speed
            return Text(
                "" if speed is None else f"{speed:7.1f} {unit}/s", style="progress.data.speed"
            )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
