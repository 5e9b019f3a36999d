"""Lipschitz bound and estimate of a head: oracles, bracketing, known constants, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from repscope._validation import InputError
from repscope.generalization.lipschitz import (
    LipschitzBound,
    lipschitz_estimate,
    lipschitz_upper_bound,
)
from repscope.zoo._members import MINIZOO, build_minizoo_module

# every estimate is a secant of f computed in float64, so it may exceed the bound only by
# round-off: |f| ~ 10 with a step of 1e-3 leaves ~1e-12 relative, far below this margin
BRACKET_RTOL = 1e-9


def _linear(n_in: int, n_out: int, seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out)


def _gaussian(n: int, d: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal((n, d))


# ---------------------------------------------------------------- 1. single linear layer


@pytest.mark.parametrize(("n_in", "n_out"), [(8, 4), (5, 1), (40, 30)])
def test_linear_bound_is_spectral_norm_and_estimate_reaches_it(n_in: int, n_out: int) -> None:
    head = _linear(n_in, n_out, seed=n_in)
    W = head.weight.detach().double().numpy()
    sigma = np.linalg.norm(W, 2)
    bound = lipschitz_upper_bound(head)
    # both are LAPACK SVDs in float64: they agree to a few ulps
    assert bound.value == pytest.approx(sigma, rel=1e-10)
    assert bound.layers == (("layer 0", "Linear", bound.value),)
    # the Jacobian direction is the top right-singular vector, and for a linear map the
    # finite difference along it is ε·σ up to float64 cancellation (~1e-13 at ε = 1e-3)
    estimate = lipschitz_estimate(head, _gaussian(50, n_in, seed=1))
    assert estimate == pytest.approx(sigma, rel=1e-6)
    assert estimate <= bound.value * (1 + BRACKET_RTOL)


def test_matrix_head_accepts_numpy_tensor_and_one_matrix() -> None:
    W = np.random.default_rng(0).standard_normal((3, 6))
    sigma = np.linalg.norm(W, 2)
    # the float32 copy rounds W by ~6e-8 relative, which moves σ by as much
    for head in (W, [W], (torch.from_numpy(W),), torch.from_numpy(W).float()):
        assert lipschitz_upper_bound(head).value == pytest.approx(sigma, rel=1e-6)
    X = torch.from_numpy(_gaussian(30, 6, seed=2))
    # rank 3 <= the 3-vector power block: the direction is exact, the step ~1e-13 off
    assert lipschitz_estimate([W], X) == pytest.approx(sigma, rel=1e-9)


# ---------------------------------------------------------------- 2. bound >= estimate


def _random_head(seed: int) -> tuple[nn.Sequential, int]:
    """A random MLP head built from the supported layers, and its input width."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    width = n_in = int(rng.integers(2, 10))
    layers: list[nn.Module] = []
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(2, 12))
        layers.append(nn.Linear(width, out))
        width = out
        kind = rng.choice(["relu", "gelu", "tanh", "silu", "leaky", "bn", "dropout", "sigmoid"])
        if kind == "bn":
            bn = nn.BatchNorm1d(width)
            bn.running_mean.copy_(torch.from_numpy(rng.normal(size=width)))
            bn.running_var.copy_(torch.from_numpy(rng.uniform(0.05, 2.0, size=width)))
            bn.weight.data.copy_(torch.from_numpy(rng.normal(scale=2.0, size=width)))
            layers.append(bn)
        else:
            layers.append(
                {
                    "relu": nn.ReLU(),
                    "gelu": nn.GELU(approximate=str(rng.choice(["none", "tanh"]))),
                    "tanh": nn.Tanh(),
                    "silu": nn.SiLU(),
                    "leaky": nn.LeakyReLU(float(rng.uniform(0.01, 2.0))),
                    "dropout": nn.Dropout(0.5),
                    "sigmoid": nn.Sigmoid(),
                }[str(kind)]
            )
    head = nn.Sequential(*layers, nn.Linear(width, int(rng.integers(1, 6))))
    # training mode must give the same (eval-mode) numbers and leave the module as it was
    head.train(bool(rng.integers(2)))
    return head, n_in


@pytest.mark.parametrize("seed", range(25))
def test_bound_brackets_estimate_on_random_heads(seed: int) -> None:
    head, n_in = _random_head(seed)
    before = {k: v.clone() for k, v in head.state_dict().items()}
    training = head.training
    scale = [0.1, 1.0, 10.0][seed % 3]
    X = _gaussian(40, n_in, seed=seed + 100, scale=scale)
    bound = lipschitz_upper_bound(head)
    estimate = lipschitz_estimate(head, X, n_directions=8, max_points=24, random_state=seed)
    assert 0 < estimate <= bound.value * (1 + BRACKET_RTOL)
    assert bound.value == pytest.approx(math.prod(f for *_, f in bound.layers), rel=1e-15)
    # the user's module keeps its dtype, mode and weights
    assert head.training == training
    for key, value in head.state_dict().items():
        assert value.dtype == before[key].dtype
        assert torch.equal(value, before[key])
    head.eval()
    assert lipschitz_upper_bound(head) == bound


def test_minizoo_head_after_first_layer() -> None:
    config = next(c for c in MINIZOO if c.family == "mlp" and c.depth == 2)
    torch.manual_seed(0)
    module = build_minizoo_module(config)
    with torch.no_grad():
        hidden = module[:2](torch.rand(64, 1, 28, 28))  # first hidden pre-activations
    head = module[2:]  # ReLU, Linear, ReLU, Linear
    bound = lipschitz_upper_bound(head)
    linears = [m.weight.detach().double().numpy() for m in head if isinstance(m, nn.Linear)]
    assert bound.value == pytest.approx(math.prod(np.linalg.norm(W, 2) for W in linears), rel=1e-12)
    assert [kind for _, kind, _ in bound.layers] == ["ReLU", "Linear", "ReLU", "Linear"]
    estimate = lipschitz_estimate(head, hidden, n_directions=8, max_points=32)
    assert 0 < estimate <= bound.value * (1 + BRACKET_RTOL)


def test_diagonal_heads_are_estimated_exactly() -> None:
    # eval-mode BatchNorm1d and LeakyReLU have diagonal Jacobians whose largest entry the
    # Jacobian direction finds; the finite difference along it is exact to ~1e-13
    # values exact in float32, so the float64 oracle sees the stored numbers
    var, gamma = [0.5, 2.0, 0.125, 1.0, 3.0], [1.0, -2.5, 0.5, 0.25, 1.0]
    bn = nn.BatchNorm1d(5).eval()
    bn.running_var.copy_(torch.tensor(var))
    bn.weight.data.copy_(torch.tensor(gamma))
    expected = max(abs(g) / math.sqrt(v + bn.eps) for g, v in zip(gamma, var, strict=True))
    assert lipschitz_upper_bound(bn).value == pytest.approx(expected, rel=1e-12)
    X = _gaussian(30, 5, seed=3)
    assert lipschitz_estimate(bn, X) == pytest.approx(expected, rel=1e-9)
    leaky = nn.LeakyReLU(negative_slope=-3.0)
    assert lipschitz_upper_bound(leaky).value == 3.0
    assert lipschitz_estimate(leaky, X) == pytest.approx(3.0, rel=1e-9)


def test_estimate_is_seeded_and_subsamples() -> None:
    head, n_in = _random_head(7)
    X = _gaussian(500, n_in, seed=4)
    kwargs = {"n_directions": 4, "max_points": 16}
    first = lipschitz_estimate(head, X, random_state=3, **kwargs)
    assert lipschitz_estimate(head, X, random_state=3, **kwargs) == first
    assert lipschitz_estimate(head, X, random_state=np.random.default_rng(3), **kwargs) == first


# ---------------------------------------------------------------- 3. products


def test_product_of_layers_and_matrix_list_agree() -> None:
    torch.manual_seed(1)
    head = nn.Sequential(nn.Sequential(nn.Linear(6, 9), nn.ReLU()), nn.Linear(9, 4))
    W1, W2 = (head[0][0].weight.detach().double(), head[1].weight.detach().double())
    manual = np.linalg.norm(W1.numpy(), 2) * np.linalg.norm(W2.numpy(), 2)
    bound = lipschitz_upper_bound(head)
    assert bound.value == pytest.approx(manual, rel=1e-12)
    assert [(name, kind) for name, kind, _ in bound.layers] == [
        ("0.0", "Linear"),
        ("0.1", "ReLU"),
        ("1", "Linear"),
    ]
    from_matrices = lipschitz_upper_bound([W1.numpy(), W2])
    assert isinstance(from_matrices, LipschitzBound)
    assert from_matrices.value == pytest.approx(bound.value, rel=1e-12)
    assert [name for name, *_ in from_matrices.layers] == ["layer 0", "layer 1"]


def test_softmax_and_identity_factors() -> None:
    torch.manual_seed(2)
    lin = nn.Linear(3, 3)
    sigma = np.linalg.norm(lin.weight.detach().double().numpy(), 2)
    head = nn.Sequential(nn.Identity(), nn.Flatten(), lin, nn.Hardtanh(), nn.Softmax(dim=-1))
    assert lipschitz_upper_bound(head).value == pytest.approx(sigma, rel=1e-12)
    assert lipschitz_upper_bound(nn.Sequential()).value == 1.0


# ---------------------------------------------------------------- 4. activation constants


@pytest.mark.parametrize(
    "activation",
    [nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(), nn.Sigmoid(), nn.Tanh(), nn.ReLU()],
    ids=["gelu", "gelu-tanh", "silu", "sigmoid", "tanh", "relu"],
)
def test_activation_constant_is_max_slope_on_dense_grid(activation: nn.Module) -> None:
    # slope on a grid of step 1e-5: near the maximum the slope falls off as δ², so the grid
    # maximum is within ~1e-10 of the true one; the constant may not sit below it
    x = torch.arange(-8.0, 8.0, 1e-5, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(activation(x).sum(), x)
    grid_max = float(slope.abs().max())
    value = lipschitz_upper_bound(activation).value
    assert value == pytest.approx(grid_max, abs=1e-6)
    assert grid_max <= value + 1e-12


def test_gelu_and_silu_constants_known_values() -> None:
    gelu = lipschitz_upper_bound(nn.GELU()).value
    # x Φ(x) peaks in slope at x = √2: Φ(√2) + √2 φ(√2)
    assert gelu == pytest.approx((1 + math.erf(1)) / 2 + 1 / (math.e * math.sqrt(math.pi)))
    assert gelu == pytest.approx(1.1289, abs=1e-4)
    assert lipschitz_upper_bound(nn.SiLU()).value == pytest.approx(1.0998, abs=1e-4)


# ---------------------------------------------------------------- 5. bad input


class _TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class _DoubledReLU(nn.ReLU):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


def _nan_linear() -> nn.Linear:
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    return lin


@pytest.mark.parametrize(
    ("head", "match"),
    [
        (nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)), r"'1' is a LayerNorm.*no useful global"),
        (_TwoLayers(), r"_TwoLayers with its own forward.*nn\.Sequential\(\*layers\)"),
        (nn.Sequential(_DoubledReLU()), r"_DoubledReLU with its own forward"),
        (nn.ELU(), r"ELU, which has no Lipschitz rule here; use only Linear"),
        (nn.Sequential(_nan_linear()), r"'0' has NaN or infinite weights"),
        (nn.BatchNorm1d(3, track_running_stats=False), r"without running statistics"),
        (nn.Softmax(dim=0), r"Softmax\(dim=0\), which mixes samples"),
        (np.zeros((2, 3, 4)), r"shape \(2, 3, 4\); each must be 2-D"),
        ([np.ones((3, 4)), np.zeros((2, 3, 4))], r"weight matrix 1 has shape \(2, 3, 4\)"),
        ([np.ones(4)], r"shape \(4,\); each must be 2-D.*reshape\(1, -1\)"),
        ([np.ones((3, 4)), np.ones((2, 5))], r"5 inputs but matrix 0 gives 3 outputs"),
        ([np.array([[1.0, np.inf]])], r"weight matrix 0 has NaN or infinite"),
        ([], r"empty list of weight matrices"),
        ("W", r"head of type str is not understood"),
    ],
)
def test_upper_bound_refuses(head: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        lipschitz_upper_bound(head)


@pytest.mark.parametrize(
    ("head", "X", "kwargs", "match"),
    [
        (nn.Linear(4, 2), np.ones((5, 5)), {}, r"cannot be applied to X with 5 features"),
        ([np.ones((2, 4))], np.ones((5, 3)), {}, r"cannot be applied to X with 3 features"),
        (nn.Linear(4, 2), np.ones((5, 4, 1)), {}, r"X must be 2-D"),
        (_nan_linear(), np.ones((5, 3)), {}, r"head has NaN or infinite weights"),
        ([np.ones((3, 4)), np.ones((2, 3))], np.ones((5, 4)), {}, r"activations between them"),
        (nn.BatchNorm1d(4, track_running_stats=False), np.ones((5, 4)), {}, r"running stat"),
        (nn.Linear(4, 2), np.ones((5, 4)), {"n_directions": -1}, r"n_directions=-1 must be"),
        (nn.Linear(4, 2), np.ones((5, 4)), {"max_points": 0}, r"max_points=0 must be"),
        (nn.Linear(4, 2), np.ones((5, 4)), {"epsilon": 0.0}, r"epsilon=0.0 must be a positive"),
        (nn.Linear(4, 2), np.ones((5, 4)), {"random_state": "a"}, r"random_state='a'"),
    ],
)
def test_estimate_refuses(head: object, X: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        lipschitz_estimate(head, X, **kwargs)


def test_estimate_works_where_no_global_bound_exists() -> None:
    # LayerNorm has no useful global bound, but its local slope near data is finite
    torch.manual_seed(3)
    head = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 2))
    assert 0 < lipschitz_estimate(head, _gaussian(20, 4, seed=5), n_directions=4) < math.inf


# ---------------------------------------------------------------- device


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_head_matches_cpu() -> None:
    head, n_in = _random_head(11)
    X = _gaussian(40, n_in, seed=6)
    cpu = (lipschitz_upper_bound(head).value, lipschitz_estimate(head, X))
    head.cuda()
    cuda = (lipschitz_upper_bound(head).value, lipschitz_estimate(head, X))
    assert cuda == pytest.approx(cpu, rel=1e-9)
    assert next(head.parameters()).device.type == "cuda"
