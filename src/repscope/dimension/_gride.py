"""GRIDE (Denti et al. 2022): maximum-likelihood dimension from ratios of neighbour distances.

For ``mu = T_n2 / T_n1`` under a locally constant density in dimension d,
``f(mu | d) = d (mu^d - 1)^(n2-n1-1) / (mu^((n2-1) d + 1) B(n2-n1, n1))`` for mu > 1, and the
log-likelihood of independent ratios is concave in d, so its score has one root.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

__all__ = ["gride_root", "gride_unit_root"]

# brentq stops within 4 machine epsilons of the root (its tightest relative tolerance)
_RTOL = 4 * np.finfo(np.float64).eps


def gride_root(log_mu: np.ndarray, n1: int, n2: int) -> float:
    """Pooled GRIDE maximum-likelihood dimension of the ratios ``exp(log_mu)``.

    Solves ``n/d + (n2-n1-1) sum_i L_i / (1 - e^(-d L_i)) - (n2-1) sum_i L_i = 0``
    (``L_i = log mu_i``) by Brent's method to 4 machine epsilons, inside the closed-form
    bracket ``[n / (2 (n2-1) sum L), 2 (n2-n1) n / (n1 sum L)]``. A tie (``L_i = 0``) enters
    through the term's limit ``1/d``; all ties give ``inf``.

    Parameters
    ----------
    log_mu : ndarray of shape (n,)
        ``log(T_n2 / T_n1)`` per point, all >= 0.
    n1, n2 : int
        Neighbour orders, ``1 <= n1 < n2``.

    Returns
    -------
    float

    References
    ----------
    Denti, Doimo, Laio & Mira (2022), Sci. Rep. 12:20005, eqs. 4-5.
    """
    n, total = log_mu.size, float(log_mu.sum())
    if total == 0.0:
        return np.inf
    ties = log_mu == 0.0
    safe = np.where(ties, 1.0, log_mu)
    gap = n2 - n1 - 1

    def score(d: float) -> float:
        h = np.where(ties, 1.0 / d, safe / -np.expm1(-d * safe))
        return n / d + gap * float(h.sum()) - (n2 - 1) * total

    # score >= n/d - (n2-1) total > 0 at the lower end; x / (1 - e^-x) <= 1 + x gives
    # score <= (n2-n1) n/d - n1 total < 0 at the upper end
    low = 0.5 * n / ((n2 - 1) * total)
    high = 2.0 * (n2 - n1) * n / (n1 * total)
    return float(brentq(score, low, high, xtol=1e-300, rtol=_RTOL, maxiter=500))


def gride_unit_root(n1: int, n2: int) -> float:
    """The product ``t* = d log mu`` at the single-ratio GRIDE maximum.

    For one ratio the score ``1/d + (n2-n1-1) L / (1 - e^(-dL)) - (n2-1) L`` depends on d and
    ``L = log mu`` only through ``t = dL``, so the pointwise maximum-likelihood estimate is
    exactly ``t*(n1, n2) / log mu``: one scalar root per scale, none per point.
    ``t* = 1/n1`` when ``n2 = n1 + 1``, and ``t* -> log 2`` (MADA's constant) as
    ``n1 = n2/2`` grows.

    Parameters
    ----------
    n1, n2 : int
        Neighbour orders, ``1 <= n1 < n2``.

    Returns
    -------
    float
        ``t*``, to 4 machine epsilons.
    """
    return gride_root(np.ones(1), n1, n2)
