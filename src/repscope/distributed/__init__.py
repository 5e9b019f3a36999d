"""Analyses spread over Dask workers, for embeddings too large for one process.

Dask is imported only when a function here runs, so ``import repscope.distributed`` is cheap.
"""

from repscope.distributed.knn import distributed_knn, distributed_local_dimension

__all__ = ["distributed_knn", "distributed_local_dimension"]
