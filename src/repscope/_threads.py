"""A fixed number of compute threads for a block of work, so its floating-point results do not
depend on the machine's core count or on how many tasks share a process.

BLAS (through threadpoolctl) and torch's intra-op pool both split reductions by thread count,
which changes the last bits of sums, matrix products and convolutions. Pinning both to the
same count in the main process and in every Dask task makes a study's tables identical bit for
bit whatever runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["pinned_threads"]


@contextmanager
def pinned_threads(n_threads: int) -> Iterator[None]:
    """Run the block with ``n_threads`` BLAS/OpenMP threads and torch intra-op threads.

    Parameters
    ----------
    n_threads : int
        Threads for the block (>= 1); the previous settings are restored after it.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        torch.set_num_threads(before)
