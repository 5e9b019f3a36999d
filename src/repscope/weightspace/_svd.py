"""The leading singular triplets of one weight matrix, exact or randomized, with their error.

Exact: ``torch.linalg.svd`` in float64 on the chosen device. Matrices whose smaller dimension
exceeds ``exact_max`` (default 4096, beyond every vision model's layers) use
``torch.svd_lowrank`` with ``q = top + 10`` and 6 power iterations; every factorisation carries
its measured residual max_i ‖W v_i − σ_i u_i‖₂ / σ_1 over the kept triplets, so the error of
the randomized one is stated, not assumed.

On the CPU the factorisations run on one thread (:func:`svd_threads`): LAPACK's SVD of a few
hundred columns gains nothing from a second thread and loses up to 20× when the cores are
shared, and one thread makes the results identical on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from repscope._threads import pinned_threads

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["EXACT_MAX", "TopSVD", "svd_threads", "top_svd"]

#: Smaller-dimension limit of the exact SVD; beyond it the randomized one is used.
EXACT_MAX = 4096
_OVERSAMPLE = 10
_POWER_ITERATIONS = 6


@dataclass(frozen=True)
class TopSVD:
    """The ``k`` leading singular triplets of W (out × in), float64.

    Attributes
    ----------
    U : torch.Tensor of shape (out, k)
    S : torch.Tensor of shape (k,), descending
    V : torch.Tensor of shape (in, k)
    method : {"exact", "randomized"}
    residual : float
        max_i ‖W v_i − σ_i u_i‖₂ / σ_1 (≈ 1e-15 exact).
    """

    U: torch.Tensor
    S: torch.Tensor
    V: torch.Tensor
    method: Literal["exact", "randomized"]
    residual: float


def top_svd(W: torch.Tensor, k: int, *, exact_max: int = EXACT_MAX) -> TopSVD:
    """The ``k`` leading singular triplets of ``W`` (already float64 on its device).

    Parameters
    ----------
    W : torch.Tensor of shape (out, in)
    k : int
        Triplets to keep, at most ``min(out, in)``.
    exact_max : int
        Above this smaller dimension, the randomized SVD.
    """
    import torch

    k = min(k, *W.shape)
    if min(W.shape) <= exact_max:
        U, S, Vh = torch.linalg.svd(W, full_matrices=False)
        U, S, V, method = U[:, :k], S[:k], Vh[:k].T, "exact"
    else:
        U, S, V = torch.svd_lowrank(W, q=min(k + _OVERSAMPLE, *W.shape), niter=_POWER_ITERATIONS)
        U, S, V, method = U[:, :k], S[:k], V[:, :k], "randomized"
    top = float(S[0]) if k else 0.0
    if top == 0.0:
        return TopSVD(U, S, V, method, 0.0)
    residual = torch.linalg.vector_norm(W @ V - U * S, dim=0).max() / top
    return TopSVD(U.contiguous(), S, V.contiguous(), method, float(residual))


@contextmanager
def svd_threads(device: Any) -> Iterator[None]:
    """One BLAS/torch thread for the block on the CPU; nothing changes on a GPU."""
    with pinned_threads(1) if getattr(device, "type", str(device)) == "cpu" else nullcontext():
        yield
