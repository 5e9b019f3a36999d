"""Cross-validated ridge kernel: one eigendecomposition per fold serves every penalty and target.

Notation for one fold (rows already split): ``Xc`` is the fold's training design centred with
the fold's training mean, ``Yc`` the training targets centred the same way (the intercept), and
the validation rows are centred with the *training* means. Ridge with penalty ``a`` is
``beta_a = W diag(1 / (lam + a)) D`` in a basis where

* primal (``P <= n_train``): ``Xcᵀ Xc = W diag(lam) Wᵀ``, ``D = Wᵀ Xcᵀ Yc``;
* dual (``P > n_train``): ``Xc Xcᵀ = U diag(lam) Uᵀ``, ``D = Uᵀ Yc`` and ``W = Xcᵀ U``.

Validation predictions are ``A diag(g_a) D`` with ``A = X_val W`` and ``g_a = 1 / (lam + a)``,
so with ``G = AᵀA`` and ``C = Aᵀ Y_val`` the validation error of every penalty and target is

``SSE(a, v) = ||y_v||² - 2 Σ_k g_ak C_kv D_kv + (g_a∘d_v)ᵀ G (g_a∘d_v)``,

built from ``r × V`` products only; no prediction matrix is ever formed per penalty. The
eigendecomposition of the Gram matrix replaces an SVD of ``Xc`` (same singular vectors,
``lam = s²``); the solution needs no division by ``s``, so rank-deficient designs are safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import KFold

from repscope._backend import available_memory, to_numpy, to_tensor

__all__ = [
    "FoldBasis",
    "RidgeCVSolver",
    "constant_columns",
    "fit_batches",
    "target_batch_size",
]

# CPU batches beyond ~1 GiB of working set buy no speed and only cost memory.
_CPU_BUDGET_CAP = 1 << 30


def target_batch_size(n_rows: int, n_basis: int, n_folds: int, n_alphas: int, device: Any) -> int:
    """Targets per batch so that one batch's working set fits in a share of free memory."""
    per_target = 8 * (3 * n_rows + (3 * n_folds + 6) * n_basis + 3 * n_alphas + 16)
    free = available_memory(device)
    budget = free // 2 if device.type == "cuda" else min(free // 4, _CPU_BUDGET_CAP)
    return max(1, int(budget // per_target))


def _eigh(M: Any) -> tuple[Any, Any]:
    """Symmetric eigendecomposition; LAPACK through NumPy on the CPU (torch's is ~4x slower)."""
    if M.device.type == "cpu":
        import torch

        lam, vecs = np.linalg.eigh(M.numpy())
        return torch.from_numpy(lam), torch.from_numpy(vecs)
    import torch

    return torch.linalg.eigh(M)


@dataclass(frozen=True)
class FoldBasis:
    """Penalty-independent factors of one fold (tensors on the solver's device)."""

    train: Any  # (n_tr,) long indices into the solver's rows
    val: Any  # (n_val,) long indices
    mean: Any  # (P,) training mean of X on this fold
    lam: Any  # (r,) eigenvalues, clipped at 0
    vecs: Any  # eigenvectors: primal (P, r), dual (n_tr, r)
    W: Any  # (P, r) coefficient basis: beta_a = W diag(1 / (lam + a)) D
    A: Any  # (n_val, r) centred validation design in the basis
    G: Any  # (r, r) AᵀA
    dual: bool


class RidgeCVSolver:
    """Ridge with per-target penalty chosen by K-fold CV, on a fixed design.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training design, float64, already standardized (or not) by the caller.
    alphas : ndarray of shape (n_alphas,)
        Positive penalties.
    folds : list of (train, val) integer index arrays into the rows of ``X``.
    device : torch.device
    """

    def __init__(self, X: np.ndarray, alphas: np.ndarray, folds: list, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.dtype = torch.float64
        self.X = to_tensor(X, device, self.dtype)
        self.alphas = to_tensor(np.asarray(alphas, dtype=np.float64), device, self.dtype)
        self.folds = [self._fold(tr, val) for tr, val in folds]
        self.full = self._fold(np.arange(X.shape[0]), np.arange(0))

    # -- decompositions ---------------------------------------------------------------------
    def _fold(self, train: np.ndarray, val: np.ndarray) -> FoldBasis:
        torch = self.torch
        tr = torch.as_tensor(np.asarray(train), dtype=torch.long, device=self.device)
        va = torch.as_tensor(np.asarray(val), dtype=torch.long, device=self.device)
        Xtr = self.X[tr]
        mean = Xtr.mean(0)
        Xc = Xtr - mean
        n_tr, p = Xc.shape
        dual = p > n_tr
        lam, vecs = _eigh(Xc @ Xc.T if dual else Xc.T @ Xc)
        # Eigenvalues of a Gram matrix are >= 0; clip rounding noise so 1/(lam+a) stays bounded.
        lam = lam.clamp_min(0.0)
        W = Xc.T @ vecs if dual else vecs
        A = (self.X[va] - mean) @ W
        return FoldBasis(tr, va, mean, lam, vecs, W, A, A.T @ A, dual)

    def _projections(self, fold: FoldBasis, Y: Any, XtY: Any, ysum: Any) -> tuple[Any, Any, Any]:
        """``D = basisᵀ (centred train targets)``, the fold-train target mean and ``Y[val]``."""
        has_val = len(fold.val) > 0
        Yv = Y[fold.val] if has_val else None
        if fold.dual:
            Ytr = Y[fold.train]
            ybar = Ytr.sum(0) / Ytr.shape[0]
            D = fold.vecs.T @ Ytr - fold.vecs.sum(0)[:, None] * ybar[None, :]
            return D, ybar, Yv
        # Xcᵀ Yc = Xcᵀ Y_tr = X_trᵀ Y_tr - mean ⊗ Σ y_tr (the centred train rows sum to zero),
        # with X_trᵀ Y_tr = XᵀY - X_valᵀ Y_val, so the big product is done once per batch.
        XtrY, ytr_sum = XtY, ysum
        if has_val:
            XtrY = XtY - self.X[fold.val].T @ Yv
            ytr_sum = ysum - Yv.sum(0)
        ybar = ytr_sum / len(fold.train)
        D = fold.vecs.T @ (XtrY - fold.mean[:, None] * ytr_sum[None, :])
        return D, ybar, Yv

    # -- public kernels ---------------------------------------------------------------------
    def cv_errors(self, Y: Any) -> tuple[Any, Any]:
        """Summed validation SSE per penalty and target, and ``XᵀY`` for reuse.

        Parameters
        ----------
        Y : tensor of shape (n_samples, n_targets)

        Returns
        -------
        sse : tensor of shape (n_alphas, n_targets)
        XtY : tensor of shape (n_features, n_targets) or None
            None when every fold (and the full fit) uses the dual form.
        """
        # XᵀY serves only the primal folds; dual folds project Y on their own eigenvectors
        XtY = self.X.T @ Y if not all(f.dual for f in (*self.folds, self.full)) else None
        ysum = Y.sum(0)
        sse = Y.new_zeros((len(self.alphas), Y.shape[1]))
        for fold in self.folds:
            D, ybar, Yv = self._projections(fold, Y, XtY, ysum)
            Yval = Yv - ybar[None, :]
            C = fold.A.T @ Yval
            g = 1.0 / (fold.lam[None, :] + self.alphas[:, None])  # (n_alphas, r)
            sse += (Yval * Yval).sum(0)[None, :] - 2.0 * (g @ (C * D))
            # ||A z||² through the cheaper side: A itself when n_val < r (always for dual folds)
            use_A = fold.A.shape[0] < fold.A.shape[1]
            for i in range(len(self.alphas)):
                Z = g[i][:, None] * D
                if use_A:
                    AZ = fold.A @ Z
                    sse[i] += (AZ * AZ).sum(0)
                else:
                    sse[i] += (Z * (fold.G @ Z)).sum(0)
        return sse, XtY

    def refit(self, Y: Any, alpha: Any, XtY: Any | None = None) -> tuple[Any, Any]:
        """Ridge on all rows with one penalty per target.

        Parameters
        ----------
        Y : tensor of shape (n_samples, n_targets)
        alpha : tensor of shape (n_targets,)
        XtY : tensor of shape (n_features, n_targets), optional
            ``XᵀY`` from :meth:`cv_errors`, reused in the primal case.

        Returns
        -------
        coef : tensor of shape (n_features, n_targets)
            Coefficients for the design centred with its own mean.
        y_mean : tensor of shape (n_targets,)
        """
        fold = self.full
        if XtY is None and not fold.dual:
            XtY = self.X.T @ Y
        D, ybar, _ = self._projections(fold, Y, XtY, Y.sum(0))
        g = 1.0 / (fold.lam[:, None] + alpha[None, :])
        return fold.W @ (g * D), ybar


def constant_columns(Y: np.ndarray) -> np.ndarray:
    """Columns with zero variance (all values equal to the first row's)."""
    return (Y == Y[0]).all(0)


def fit_batches(
    X: np.ndarray,
    Y: np.ndarray,
    rows: np.ndarray,
    *,
    alphas: np.ndarray,
    cv: int,
    seed: int,
    per_target: bool,
    device: Any,
) -> Iterator[tuple[slice, np.ndarray, Any, Any]]:
    """Fit ridge-CV of ``Y[rows]`` on the (standardized) design ``X``; yield per target batch.

    Only one batch of targets is copied at a time, so memory beyond the inputs stays bounded.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    Y : ndarray of shape (n_samples, n_targets)
    rows : ndarray of shape (n_rows,)
        Rows of ``Y`` that pair with the rows of ``X``.

    Yields
    ------
    ``(batch_slice, alpha (Vb,), coef (P, Vb) tensor, y_mean (Vb,) tensor)``; the coefficients
    act on ``X`` centred with its own mean; ``alpha`` is NaN for targets constant on ``rows``.
    """
    n, p = X.shape
    folds = list(KFold(n_splits=cv, shuffle=True, random_state=seed).split(np.arange(n)))
    solver = RidgeCVSolver(X, alphas, folds, device)
    batch_size = target_batch_size(n, min(p, n), cv, len(alphas), device)
    n_targets = Y.shape[1]
    batches = [slice(s, min(s + batch_size, n_targets)) for s in range(0, n_targets, batch_size)]

    def load(b: slice) -> tuple[Any, np.ndarray, np.ndarray]:
        Yb = Y[rows, b]  # a fresh copy, so centring in place leaves Y alone
        const = constant_columns(Yb)
        y_mean = Yb.mean(0)
        # centre with the train mean first: the rank-one corrections in the kernel then stay small
        Yb -= y_mean
        return to_tensor(Yb, device, solver.dtype), y_mean, const

    shared = None
    if not per_target:
        total = np.zeros(len(alphas))
        for b in batches:
            Yb, _, const = load(b)
            sse, _ = solver.cv_errors(Yb)
            total += to_numpy(sse[:, ~const].sum(1))
        shared = alphas[int(np.argmin(total))]
    for b in batches:
        Yb, y_mean, const = load(b)
        if per_target:
            sse, XtY = solver.cv_errors(Yb)
            alpha = alphas[to_numpy(sse.argmin(0))]
        else:
            XtY = None
            alpha = np.full(b.stop - b.start, shared)
        coef, ybar = solver.refit(Yb, to_tensor(alpha, device, solver.dtype), XtY)
        alpha = np.where(const, np.nan, alpha)
        yield b, alpha, coef, ybar + to_tensor(y_mean, device, solver.dtype)
