"""Lipschitz constant of a head, the map from embedding to prediction (METHOD.md section 6).

Two numbers bracket it: :func:`lipschitz_upper_bound`, a certified upper bound (the product of
per-layer constants, spectral norms for the linear layers), and :func:`lipschitz_estimate`, a
lower estimate from finite differences and secants near the data. All norms are Euclidean (L2
on the embedding, L2 on the logits).

Training mode: both functions use eval semantics (Dropout is the identity, BatchNorm1d uses its
running statistics), because that is the map that makes predictions; the user's module is never
changed (the estimate runs on a float64 deep copy).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope._validation import InputError, as_array, check_random_state

__all__ = ["LipschitzBound", "lipschitz_estimate", "lipschitz_upper_bound"]

_SUPPORTED = (
    "Linear, ReLU, LeakyReLU, GELU, SiLU, Sigmoid, Tanh, Hardtanh, Softmax, Identity, "
    "Flatten, Dropout, BatchNorm1d"
)


@dataclass(frozen=True)
class LipschitzBound:
    """Upper bound of a head's L2 -> L2 Lipschitz constant, with its per-layer factors.

    Attributes
    ----------
    value : float
        Product of the factors: ``||f(x) - f(y)|| <= value * ||x - y||`` for all x, y.
    layers : tuple of (str, str, float)
        ``(name, kind, factor)`` per layer in the order they run: the module's qualified name
        in the head (``"layer i"`` for a bare module or the i-th weight matrix), its class
        name (``"Linear"``, ``"ReLU"``, ...) and its Lipschitz factor.
    """

    value: float
    layers: tuple[tuple[str, str, float], ...]


def lipschitz_upper_bound(head: Any) -> LipschitzBound:
    """Certified upper bound of the Lipschitz constant of a head (embedding -> logits).

    The bound is the product of per-layer constants, each exact for its layer: ``Linear`` the
    spectral norm of its weight (biases do not matter); ``ReLU``, ``Identity``, ``Flatten``,
    ``Dropout``, ``Tanh``, ``Hardtanh`` (and ``ReLU6``) 1; ``LeakyReLU`` ``max(1, |slope|)``;
    ``Sigmoid`` 1/4; ``GELU`` and ``SiLU`` the maximum of their derivative, computed
    (1.1289… for the erf GELU, 1.0998… for SiLU); ``Softmax`` 1 (the Jacobian
    ``diag(p) - p pᵀ`` has norm <= 1/2 by Gershgorin, so 1 is loose by up to 2); ``BatchNorm1d``
    ``max |γ| / sqrt(running_var + eps)``. Dropout and BatchNorm1d use eval semantics even when
    the module is in training mode.

    Parameters
    ----------
    head : torch.nn.Module or sequence of array-like of shape (out, in)
        An ``nn.Linear``, a supported layer, or an ``nn.Sequential`` (nested allowed) of
        supported layers, run in order; or 2-D weight matrices (NumPy arrays or tensors; one
        matrix alone is accepted too) composed in order with 1-Lipschitz activations between
        them, e.g. ``[probe.coef_]`` for a linear probe.

    Returns
    -------
    LipschitzBound
        ``value`` (logit units per embedding unit) and the per-layer factors.

    Raises
    ------
    InputError
        A layer without a rule here (LayerNorm, a custom module whose forward order is unknown,
        ...), non-finite weights, a weight that is not 2-D, or matrices whose shapes do not
        chain.

    References
    ----------
    Szegedy et al. (2014), "Intriguing properties of neural networks", ICLR, section 4.3 (the
    product of per-layer operator norms); Virmaux & Scaman (2018), "Lipschitz regularity of
    deep neural networks: analysis and efficient estimation", NeurIPS (AutoLip).

    Examples
    --------
    >>> import numpy as np
    >>> lipschitz_upper_bound([np.diag([3.0, 1.0]), np.array([[0.5, 0.0]])]).value
    1.5
    """
    import torch

    if isinstance(head, torch.nn.Module):
        layers = [(name, *_module_factor(name, module)) for name, module in _leaves(head)]
    else:
        layers = [
            (f"layer {i}", "Linear", _spectral_norm(W, f"weight matrix {i}"))
            for i, W in enumerate(_weight_matrices(head))
        ]
    return LipschitzBound(value=float(math.prod(f for *_, f in layers)), layers=tuple(layers))


def lipschitz_estimate(
    head: Any,
    X: Any,
    *,
    n_directions: int = 32,
    epsilon: float = 1e-3,
    max_points: int = 256,
    random_state: int | np.random.Generator | None = 0,
) -> float:
    """Lower estimate of a head's Lipschitz constant near the data.

    For up to ``max_points`` rows of ``X`` (a seeded subset), the largest of: finite-difference
    ratios ``||f(x + εu) - f(x)|| / ||εu||`` along ``n_directions`` random unit directions and
    along the top right-singular vector of the local Jacobian (subspace power iteration on
    autograd Jacobian products); and secants ``||f(xᵢ) - f(xⱼ)|| / ||xᵢ - xⱼ||`` over all pairs
    of those rows at least ``epsilon`` apart. Every ratio is a secant of ``f`` (the step is
    measured after rounding), so the result never exceeds the true constant beyond float64
    round-off; for a linear head it equals the spectral norm. Runs in float64 on a deep copy in
    eval mode, on the device of the head's weights.

    Parameters
    ----------
    head : torch.nn.Module or array-like of shape (out, in)
        Any module that maps ``(n, in)`` rows independently in eval mode (its structure is not
        needed, so e.g. LayerNorm heads work), or one weight matrix (a sequence holding one).
        Several matrices are refused: the activation between them is unknown.
    X : array-like of shape (n_samples, in_features)
        Embeddings the head reads, in input units (NumPy or torch).
    n_directions : int
        Random directions per row (0 keeps only the Jacobian direction).
    epsilon : float
        Finite-difference step, in input units; also the smallest pair distance used.
    max_points : int
        Rows used at most (chosen without replacement when ``n_samples`` is larger).
    random_state : int, Generator or None
        Seeds the rows, the directions and the power-iteration start.

    Returns
    -------
    float
        Largest ratio found, logit units per embedding unit.

    Raises
    ------
    InputError
        Bad settings, X not 2-D/finite or with the wrong feature count, non-finite weights or
        outputs, more than one weight matrix.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((20, 2))
    >>> round(lipschitz_estimate([np.diag([3.0, 1.0])], X), 9)
    3.0
    """
    # imported here, not at the top: _lipschitz_estimate imports helpers from this module
    from repscope.generalization._lipschitz_estimate import estimate

    _check_count("n_directions", n_directions, 0)
    _check_count("max_points", max_points, 1)
    if not isinstance(epsilon, numbers.Real) or not 0 < epsilon < math.inf:
        raise InputError(f"epsilon={epsilon!r} must be a positive finite step; pass e.g. 1e-3.")
    epsilon = float(epsilon)
    rng = check_random_state(random_state)
    return estimate(
        head, X, n_directions=n_directions, epsilon=epsilon, max_points=max_points, rng=rng
    )


# ---------------------------------------------------------------- upper bound, per layer


def _leaves(head: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(qualified name, module)`` of the layers a plain ``nn.Sequential`` runs, in order."""
    from torch import nn

    if isinstance(head, nn.Sequential) and type(head).forward is nn.Sequential.forward:
        for name, child in head.named_children():
            yield from _leaves(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix or "layer 0", head


@functools.cache
def _rules() -> tuple[tuple[type, Callable[[str, Any], float]], ...]:
    """(layer class, factor rule), checked in order with ``isinstance``."""
    from torch import nn

    def one(name: str, module: Any) -> float:
        return 1.0

    return (
        (nn.Linear, lambda name, m: _spectral_norm(m.weight, f"head layer {name!r}")),
        (nn.BatchNorm1d, _batchnorm_factor),
        (nn.LeakyReLU, lambda name, m: max(1.0, abs(float(m.negative_slope)))),
        (nn.GELU, lambda name, m: _gelu_max_slope(m.approximate)),
        (nn.SiLU, lambda name, m: _silu_max_slope()),
        (nn.Sigmoid, lambda name, m: 0.25),
        (nn.Softmax, _softmax_factor),
        *((cls, one) for cls in (nn.ReLU, nn.Tanh, nn.Hardtanh, nn.Identity, nn.Flatten)),
        (nn.Dropout, one),
    )


def _module_factor(name: str, module: Any) -> tuple[str, float]:
    """``(kind, factor)`` of one layer, or a one-line InputError saying why there is none."""
    from torch import nn

    kind = type(module).__name__
    for cls, rule in _rules():
        # a subclass with its own forward may break the rule: it falls through to the errors
        if isinstance(module, cls) and type(module).forward is cls.forward:
            return kind, float(rule(name, module))
    if isinstance(module, nn.LayerNorm):
        raise InputError(
            f"head layer {name!r} is a LayerNorm, which has no useful global Lipschitz bound "
            "(its slope grows to about max|γ|/sqrt(eps) at inputs with equal features); use "
            "lipschitz_estimate for a local value, or bound the layers after it."
        )
    if any(True for _ in module.children()) or any(isinstance(module, c) for c, _ in _rules()):
        raise InputError(
            f"head layer {name!r} is a {kind} with its own forward, so its layer order and "
            "maths are unknown; pass nn.Sequential(*layers) with the layers in the order they run."
        )
    raise InputError(
        f"head layer {name!r} is a {kind}, which has no Lipschitz rule here; use only {_SUPPORTED}."
    )


def _spectral_norm(W: Any, where: str) -> float:
    """Largest singular value of a 2-D weight, in float64 on the weight's device."""
    import torch

    if not isinstance(W, torch.Tensor):
        W = torch.from_numpy(np.array(W, dtype=np.float64))  # a copy: W may be read-only
    W = W.detach()
    if not torch.isfinite(W).all():
        raise InputError(f"{where} has NaN or infinite weights; fix or retrain the head first.")
    return float(torch.linalg.matrix_norm(W.double(), ord=2))


def _batchnorm_factor(name: str, module: Any) -> float:
    """max |γ| / sqrt(running_var + eps): the eval-mode BatchNorm1d is a diagonal affine map."""
    import torch

    if module.running_var is None:
        raise _batch_dependent(name)
    var = module.running_var.detach().double()
    gamma = module.weight.detach().double() if module.weight is not None else torch.ones_like(var)
    scale = gamma.abs() / torch.sqrt(var + module.eps)
    if not torch.isfinite(scale).all():
        raise InputError(
            f"head layer {name!r} (BatchNorm1d) has NaN or infinite weights or statistics; "
            "fix or retrain the head first."
        )
    return float(scale.max())


def _batch_dependent(name: str) -> InputError:
    return InputError(
        f"head layer {name!r} is a BatchNorm1d without running statistics, so its output "
        "depends on the batch; build it with track_running_stats=True."
    )


def _softmax_factor(name: str, module: Any) -> float:
    """1 (Gao & Pavel 2017, Proposition 4); the Gershgorin value 1/2 is tighter."""
    if module.dim not in (None, 1, -1):
        raise InputError(
            f"head layer {name!r} is Softmax(dim={module.dim}), which mixes samples or features "
            "of different rows; use nn.Softmax(dim=-1)."
        )
    return 1.0


@functools.cache
def _gelu_max_slope(approximate: str = "none") -> float:
    """sup |GELU'(x)|, attained at x > 0 (GELU'(-x) = 1 - GELU'(x), so the minimum is smaller)."""
    if approximate == "none":
        # x Φ(x) has second derivative φ(x)(2 - x²): the maximum slope is at x = √2
        return (1.0 + math.erf(1.0)) / 2.0 + 1.0 / (math.e * math.sqrt(math.pi))
    from scipy.optimize import minimize_scalar

    c, a = math.sqrt(2.0 / math.pi), 0.044715

    def slope(x: float) -> float:
        t = math.tanh(c * (x + a * x**3))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * a * x * x)

    # the optimum lies near √2; Brent finds x to ~1e-8 and the slope is off by O(δ²) ~ 1e-16
    found = minimize_scalar(
        lambda x: -slope(x), bounds=(0.5, 3.0), method="bounded", options={"xatol": 1e-10}
    )
    return slope(float(found.x))


@functools.cache
def _silu_max_slope() -> float:
    """sup |SiLU'(x)|: SiLU'' = σ(1 - σ)(2 + x(1 - 2σ)) vanishes where x tanh(x/2) = 2."""
    from scipy.optimize import brentq

    x = brentq(lambda x: x * math.tanh(x / 2.0) - 2.0, 1.0, 4.0, xtol=1e-15, rtol=1e-15)
    s = 1.0 / (1.0 + math.exp(-x))
    return s * (1.0 + x * (1.0 - s))


def _weight_matrices(head: Any) -> list[Any]:
    """The weight matrices of a matrix head, checked 2-D and chained (NumPy or torch)."""
    if isinstance(head, np.ndarray) or type(head).__module__.startswith("torch"):
        mats = [head]  # one matrix (a torch tensor or parameter, or a NumPy array)
    elif isinstance(head, str | bytes) or not hasattr(head, "__len__"):
        raise InputError(
            f"head of type {type(head).__name__} is not understood; pass a torch nn.Module or "
            "a list of 2-D weight matrices, e.g. [probe.coef_]."
        )
    else:
        mats = list(head)
    if not mats:
        raise InputError("head is an empty list of weight matrices; pass at least one.")
    out = []
    for i, W in enumerate(mats):
        W = W if type(W).__module__.startswith("torch") else as_array(W, f"weight matrix {i}")
        if W.ndim != 2 or 0 in W.shape:
            raise InputError(
                f"weight matrix {i} has shape {tuple(W.shape)}; each must be 2-D (out, in) and "
                "non-empty, e.g. W.reshape(1, -1) for one output."
            )
        if out and W.shape[1] != out[-1].shape[0]:
            raise InputError(
                f"weight matrix {i} has {W.shape[1]} inputs but matrix {i - 1} gives "
                f"{out[-1].shape[0]} outputs; pass the matrices in the order they are applied."
            )
        out.append(W)
    return out


# ---------------------------------------------------------------- lower estimate


def _check_count(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{name}={value!r} must be an integer >= {low}.")
