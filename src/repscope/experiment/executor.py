"""Where a study's per-model stages run: in this process, or on a Dask cluster.

An executor has two methods. ``share(obj)`` makes a large object available to every task once
(in process: the object itself; on Dask: a future of it scattered to every worker) and
``map(function, argument_tuples, advance=)`` runs ``function(*arguments)`` for each tuple and
returns the results in input order, calling ``advance()`` as each one finishes. Tasks are
module-level functions of plain arguments that write their own part files, so the results do
not depend on where or in which order they ran; only this module sees Dask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DaskExecutor", "SerialExecutor", "dask_executor", "serial_executor"]


@dataclass(frozen=True)
class SerialExecutor:
    """Runs every task in this process, in order."""

    def share(self, obj: Any) -> Any:
        """``obj`` itself."""
        return obj

    def map(
        self,
        function: Callable[..., Any],
        arguments: Sequence[tuple[Any, ...]],
        *,
        advance: Callable[[], None] = lambda: None,
    ) -> list[Any]:
        """``[function(*a) for a in arguments]``, advancing after each."""
        results = []
        for args in arguments:
            results.append(function(*args))
            advance()
        return results


@dataclass(frozen=True)
class DaskExecutor:
    """Runs tasks on a ``distributed.Client``; a failed task is retried ``retries`` times."""

    client: Any
    retries: int = 2

    def share(self, obj: Any) -> Any:
        """A future of ``obj`` held by every worker (scattered once, not per task)."""
        return self.client.scatter(obj, broadcast=True, hash=False)

    def map(
        self,
        function: Callable[..., Any],
        arguments: Sequence[tuple[Any, ...]],
        *,
        advance: Callable[[], None] = lambda: None,
    ) -> list[Any]:
        """Submit every task, advance as each completes, gather results in input order."""
        from distributed import as_completed

        futures = [
            self.client.submit(function, *args, pure=False, retries=self.retries)
            for args in arguments
        ]
        for _ in as_completed(futures):
            advance()
        return self.client.gather(futures)


def serial_executor() -> SerialExecutor:
    """The in-process executor (the default)."""
    return SerialExecutor()


def dask_executor(
    *, workers: int | None = None, scheduler: str | None = None, client: Any = None
) -> DaskExecutor:
    """A Dask executor on an existing client, a scheduler address, or a new LocalCluster.

    Parameters
    ----------
    workers : int, optional
        Start a ``LocalCluster`` of this many single-threaded worker processes.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``), e.g. one dask-jobqueue started.
    client : distributed.Client, optional
        Use this client as it is.
    """
    from distributed import Client, LocalCluster

    from repscope._validation import InputError

    given = sum(x is not None for x in (workers, scheduler, client))
    if given != 1:
        raise InputError("pass exactly one of workers=N, scheduler=ADDRESS or client=Client.")
    if client is None and scheduler is not None:
        client = Client(scheduler)
    elif client is None:
        if workers < 1:
            raise InputError(f"workers={workers} must be >= 1; pass e.g. --workers 2.")
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)
    return DaskExecutor(client)
