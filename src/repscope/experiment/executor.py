"""Where a study's per-model stages run: in this process, or on a Dask cluster.

An executor has three methods. ``share(obj)`` makes a large object available to every task once
(in process: the object itself; on Dask: a future of it scattered to every worker) and
``map(function, argument_tuples, advance=)`` runs ``function(*arguments)`` for each tuple and
returns the results in input order, calling ``advance()`` as each one finishes. Tasks are
module-level functions of plain arguments that write their own part files, so the results do
not depend on where or in which order they ran; only this module sees Dask. ``close()`` ends
the executor and the cluster it started, if any.

:func:`cluster_executor` builds the executor a config's ``[cluster]`` table asks for: a
LocalCluster, a running scheduler, or SLURM jobs through dask-jobqueue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DaskExecutor",
    "SerialExecutor",
    "cluster_executor",
    "dask_executor",
    "serial_executor",
    "slurm_cluster",
]


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

    def close(self) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class DaskExecutor:
    """Runs tasks on a ``distributed.Client``; a failed task is retried ``retries`` times.

    ``cluster`` is the cluster the executor started (LocalCluster, SLURMCluster), closed with
    it; None for a client or scheduler given from outside.
    """

    client: Any
    retries: int = 2
    cluster: Any = None

    def close(self) -> None:
        """Close the client, then the cluster this executor started (its workers stop)."""
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

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
        return DaskExecutor(_client(Client, cluster), cluster=cluster)
    return DaskExecutor(client)


def cluster_executor(cluster: Any) -> DaskExecutor:
    """The Dask executor a ``[cluster]`` table asks for; close it with ``close()``.

    Parameters
    ----------
    cluster : repscope.experiment.config.ClusterSection
        ``kind = "local"``: a LocalCluster of ``workers`` single-threaded processes;
        ``"scheduler"``: the scheduler at ``address``; ``"slurm"``: :func:`slurm_cluster`
        scaled to ``jobs`` SLURM jobs (submitted with ``sbatch``; the workers join as the jobs
        start, and tasks wait for them).

    Raises
    ------
    InputError
        ``kind = "slurm"`` where ``sbatch`` is not on the PATH or dask-jobqueue is missing.
    """
    import shutil

    from distributed import Client

    from repscope._validation import InputError

    if cluster.kind == "local":
        return dask_executor(workers=cluster.workers)
    if cluster.kind == "scheduler":
        return dask_executor(scheduler=cluster.address)
    if shutil.which("sbatch") is None:
        raise InputError(
            '[cluster] kind = "slurm" but sbatch is not on the PATH; run repscope on a SLURM '
            'login node, or use kind = "local" or --workers N here.'
        )
    slurm = slurm_cluster(cluster)
    try:
        slurm.scale(jobs=cluster.jobs)
    except BaseException:
        slurm.close()
        raise
    return DaskExecutor(_client(Client, slurm), cluster=slurm)


def slurm_cluster(cluster: Any) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` for a ``kind = "slurm"`` table, no job submitted yet.

    Each job books ``cores`` CPUs (``--cpus-per-task``) and ``memory`` and runs
    ``processes`` (default ``cores``) worker processes of one thread each: a task pins its own
    BLAS/torch thread count, which two tasks sharing a process would fight over. Its
    ``job_script()`` is the script ``sbatch`` gets; ``scale(jobs=N)`` submits N of them.
    """
    from repscope._validation import InputError

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise InputError(
            '[cluster] kind = "slurm" needs dask-jobqueue; install it with '
            "pip install dask-jobqueue."
        ) from None
    processes = cluster.worker_processes
    return SLURMCluster(
        # cores=processes makes one thread per worker; job_cpu books all the job's cores
        cores=processes,
        processes=processes,
        job_cpu=cluster.cores,
        memory=cluster.memory,
        queue=cluster.queue,
        account=cluster.account,
        walltime=cluster.walltime,
        # None, not [], so that unset lists fall back to jobqueue.yaml
        job_extra_directives=list(cluster.job_extra_directives) or None,
        job_script_prologue=list(cluster.job_script_prologue) or None,
        local_directory=cluster.local_directory,
        python=cluster.python,
        scheduler_options={"dashboard_address": ":0"},
    )


def _client(client_class: Any, cluster: Any) -> Any:
    """A client of ``cluster``; the cluster is closed if the client cannot start."""
    try:
        return client_class(cluster)
    except BaseException:
        cluster.close()
        raise
