"""Finite-difference and Jacobian lower estimate of a head's Lipschitz constant.

The code behind :func:`~repscope.generalization.lipschitz.lipschitz_estimate`. The head is
turned into a float64, eval-mode function of ``(n, in)`` tensors (a deep copy of a module, or
one weight matrix), and the estimate is the largest of three families of secants near the data:
pairs of rows, finite differences along random unit directions, and finite differences along
the top right-singular vector of each row's Jacobian (subspace power iteration on autograd
Jacobian products). Perturbed copies of the rows are batched in blocks of at most
``_BLOCK_ELEMENTS`` floats.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from repscope._validation import InputError, check_embedding
from repscope.generalization.lipschitz import _batch_dependent, _spectral_norm, _weight_matrices

if TYPE_CHECKING:  # pragma: no cover
    import torch

# floats per working block (32 MiB in float64) when perturbed copies of the rows are batched
_BLOCK_ELEMENTS = 1 << 22
# subspace size, iteration cap and stopping tolerance of the Jacobian power iteration
_POWER_BLOCK = 16
_POWER_MAX_STEPS = 8
_POWER_RTOL = 1e-10


def estimate(
    head: Any,
    X: Any,
    *,
    n_directions: int,
    epsilon: float,
    max_points: int,
    rng: np.random.Generator,
) -> float:
    """Largest secant ratio of ``head`` near the rows of ``X``, settings already checked.

    Parameters
    ----------
    head : torch.nn.Module or array-like of shape (out, in)
        As in :func:`~repscope.generalization.lipschitz.lipschitz_estimate`.
    X : array-like of shape (n_samples, in_features)
        Embeddings the head reads; checked here (2-D, finite, at least one row).
    n_directions : int
        Random directions per row, >= 0.
    epsilon : float
        Positive finite step, in input units; also the smallest pair distance used.
    max_points : int
        Rows used at most, >= 1.
    rng : numpy Generator
        Draws the rows, the directions and the power-iteration start, in that order.

    Returns
    -------
    float
        Largest ratio found, logit units per embedding unit.
    """
    import torch

    f, device = _float64_function(head)
    X = check_embedding(X, min_samples=1)
    rows = np.arange(len(X))
    if len(X) > max_points:
        rows = np.sort(rng.choice(len(X), size=max_points, replace=False))
    P = torch.from_numpy(X[rows]).to(device)
    FP = _checked_forward(f, P)
    with torch.no_grad():
        best = _secant_ratio(P, FP, epsilon)
        if n_directions:
            best = max(best, _random_direction_ratio(f, P, FP, n_directions, epsilon, rng))
    V = _top_jacobian_directions(f, P, FP.shape[1], rng)
    with torch.no_grad():
        best = max(best, _direction_ratio(f, P, FP, V[:, None, :], epsilon))
    return float(best)


def _float64_function(head: Any) -> tuple[Callable[[torch.Tensor], torch.Tensor], Any]:
    """The head as a float64, eval-mode function of (n, in) tensors, and its device."""
    import torch

    if not isinstance(head, torch.nn.Module):
        mats = _weight_matrices(head)
        if len(mats) > 1:
            raise InputError(
                f"head has {len(mats)} weight matrices and the activations between them are "
                "unknown; pass an nn.Sequential with its real activations."
            )
        _spectral_norm(mats[0], "weight matrix 0")  # finite check
        W = mats[0]
        W = W if isinstance(W, torch.Tensor) else torch.from_numpy(np.array(W, dtype=np.float64))
        W = W.detach().double()
        return (lambda x: x @ W.T), W.device
    for name, module in head.named_modules():
        if isinstance(module, torch.nn.BatchNorm1d) and module.running_var is None:
            raise _batch_dependent(name or "layer 0")
    tensors = [*head.parameters(), *head.buffers()]
    for t in tensors:
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise InputError("head has NaN or infinite weights; fix or retrain the head first.")
    module = copy.deepcopy(head).double().eval().requires_grad_(False)
    device = tensors[0].device if tensors else torch.device("cpu")
    return (lambda x: module(x).reshape(len(x), -1)), device


def _checked_forward(f: Callable[[Any], Any], P: torch.Tensor) -> torch.Tensor:
    """f(P) without gradients, with the head's shape errors turned into one InputError line."""
    import torch

    try:
        with torch.no_grad():
            FP = f(P)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"head cannot be applied to X with {P.shape[1]} features ({reason}); pass X of "
            "shape (n_samples, in_features) from the layer the head reads."
        ) from None
    if not torch.isfinite(FP).all():
        raise InputError("head output has NaN or infinite values on X; check X's scale.")
    return FP


def _direction_ratio(
    f: Callable[[Any], Any], P: torch.Tensor, FP: torch.Tensor, U: torch.Tensor, epsilon: float
) -> float:
    """max ||f(x + εu) - f(x)|| / ||(x + εu) - x|| over rows x of P and their directions U."""
    import torch

    m, k, d = U.shape
    Q = P[:, None, :] + epsilon * U
    # divide by the step as rounded, so each ratio is an exact secant of f
    step = (Q - P[:, None, :]).norm(dim=-1)
    FQ = f(Q.reshape(m * k, d)).reshape(m, k, -1)
    change = (FQ - FP[:, None, :]).norm(dim=-1)
    # a step lost to rounding (huge |x|) says nothing
    return float(torch.where(step > 0, change / step.clamp_min(1e-300), 0.0).max())


def _random_direction_ratio(
    f: Callable[[Any], Any],
    P: torch.Tensor,
    FP: torch.Tensor,
    n_directions: int,
    epsilon: float,
    rng: np.random.Generator,
) -> float:
    """Largest finite-difference ratio along random unit directions, in row blocks."""
    import torch

    m, d = P.shape
    chunk = max(1, _BLOCK_ELEMENTS // (n_directions * max(d, FP.shape[1])))
    best = 0.0
    for start in range(0, m, chunk):
        stop = min(m, start + chunk)
        U = torch.from_numpy(rng.standard_normal((stop - start, n_directions, d))).to(P.device)
        U = U / U.norm(dim=-1, keepdim=True)
        best = max(best, _direction_ratio(f, P[start:stop], FP[start:stop], U, epsilon))
    return best


def _secant_ratio(P: torch.Tensor, FP: torch.Tensor, epsilon: float) -> float:
    """max ||f(xᵢ) - f(xⱼ)|| / ||xᵢ - xⱼ|| over pairs of rows at least ``epsilon`` apart."""
    m = len(P)
    chunk = max(1, _BLOCK_ELEMENTS // (m * max(P.shape[1], FP.shape[1])))
    best = 0.0
    for start in range(0, m, chunk):
        dx = (P[start : start + chunk, None, :] - P[None, :, :]).norm(dim=-1)
        df = (FP[start : start + chunk, None, :] - FP[None, :, :]).norm(dim=-1)
        # pairs closer than the step would only amplify round-off in f
        far = dx >= epsilon
        if far.any():
            best = max(best, float((df[far] / dx[far]).max()))
    return best


def _orthonormal_rows(A: torch.Tensor) -> torch.Tensor:
    """Orthonormalise the r rows of each (r, d) slice of A (m, r, d), r <= d."""
    import torch

    return torch.linalg.qr(A.transpose(1, 2)).Q.transpose(1, 2)


def _jacobian_products(f: Callable[[Any], Any], rows: torch.Tensor) -> tuple[Callable, Callable]:
    """``(push, pull)``: t -> J t and u -> Jᵀ u at ``rows``, each row with its own Jacobian.

    J t comes from the double-backward trick (the gradient of w -> Jᵀ w) rather than forward
    mode: torch's first jvp call costs seconds of one-time set-up.
    """
    import torch

    x = rows.detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x)
        w = torch.zeros_like(y, requires_grad=True)
        (jtw,) = torch.autograd.grad(y, x, w, create_graph=True, materialize_grads=True)

    def push(t: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(jtw, w, t, retain_graph=True, materialize_grads=True)[0]

    def pull(u: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(y, x, u, retain_graph=True, materialize_grads=True)[0]

    return push, pull


def _top_jacobian_directions(
    f: Callable[[Any], Any], P: torch.Tensor, d_out: int, rng: np.random.Generator
) -> torch.Tensor:
    """Unit top right-singular vector of the Jacobian of f at each row of P, shape (m, d).

    Subspace iteration on JᵀJ with r = min(d, d_out, 16) vectors per row and a Rayleigh-Ritz
    step: exact once r reaches the Jacobian's rank, else converging as (σ_r+1 / σ_1)^2 per step.
    Rows are repeated r times, so one batched product serves every row and vector.
    """
    import torch

    m, d = P.shape
    r = min(d, d_out, _POWER_BLOCK)
    chunk = max(1, _BLOCK_ELEMENTS // (r * max(d, d_out)))
    out = []
    for start in range(0, m, chunk):
        block = P[start : start + chunk]
        n = len(block)
        push, pull = _jacobian_products(f, block.repeat_interleave(r, dim=0))
        Q = _orthonormal_rows(torch.from_numpy(rng.standard_normal((n, r, d))).to(P.device))
        JQ = push(Q.reshape(n * r, d)).reshape(n, r, -1)
        # Ritz values: eigenvalues of the small r x r Gram (JQ)(JQ)ᵀ, cheaper than an SVD
        ritz = torch.linalg.eigvalsh(JQ @ JQ.transpose(1, 2))[:, -1]
        for _ in range(_POWER_MAX_STEPS):
            Q = _orthonormal_rows(pull(JQ.reshape(n * r, -1)).reshape(n, r, d))
            JQ = push(Q.reshape(n * r, d)).reshape(n, r, -1)
            previous, ritz = ritz, torch.linalg.eigvalsh(JQ @ JQ.transpose(1, 2))[:, -1]
            if ((ritz - previous).abs() <= _POWER_RTOL * ritz.abs().max()).all():
                break
        # Rayleigh-Ritz: the unit combination y of the rows of Q that maximises ||(JQ)ᵀ y||
        y = torch.linalg.eigh(JQ @ JQ.transpose(1, 2)).eigenvectors[:, :, -1:]
        v = (y * Q).sum(dim=1)
        out.append(v / v.norm(dim=1, keepdim=True))
    return torch.cat(out)
