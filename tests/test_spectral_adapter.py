"""Spectral fine-tuning adapter: exactness at δ = 0, gradients, merging, an independent SVD
oracle, training, warnings and bad input."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from repscope._validation import InputError
from repscope.finetune import SpectralAdapter, spectral_adapter


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(), nn.Linear(24, 16)
    )


class _CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.strided = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.grouped = nn.Conv2d(16, 32, 3, padding=1, groups=4)
        self.conv1d = nn.Conv1d(32, 16, 3, padding=1)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        x = torch.relu(self.strided(x))
        x = torch.relu(self.depthwise(x))
        x = torch.relu(self.grouped(x))
        x = torch.relu(self.conv1d(x.flatten(2)))
        return self.head(x.mean(-1))


def _assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert torch.equal(a, b)  # the weight is bit-identical at δ = 0


def _randomise_deltas(adapter: SpectralAdapter, scale: float = 0.1, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter.model.parameters():
            if p.requires_grad:
                p.copy_(scale * torch.randn(p.shape, generator=gen))


# 1. δ = 0 is the original model --------------------------------------------------------------


def test_identity_mlp() -> None:
    model = _mlp()
    x = torch.randn(5, 12)
    adapter = spectral_adapter(model, rank=4)
    assert adapter.targets == ("0", "2", "4")
    _assert_same(adapter.model(x), model(x))


def test_identity_cnn_strided_depthwise_grouped() -> None:
    torch.manual_seed(0)
    model = _CNN().eval()
    x = torch.randn(2, 3, 12, 12)
    adapter = spectral_adapter(model, rank=4, min_dim=1)
    assert adapter.targets == ("conv", "strided", "depthwise", "grouped", "conv1d", "head")
    # depthwise kernel reshapes to 16 x 9, grouped to 32 x (4*9)
    assert adapter.ranks["depthwise"] == 4
    assert adapter.model.depthwise.parametrizations.weight[0].V_r.shape == (9, 4)
    assert adapter.model.grouped.parametrizations.weight[0].V_r.shape == (36, 4)
    _assert_same(adapter.model(x), model(x))


def test_identity_mobilenet_v2() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None, num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with pytest.warns(UserWarning, match="capped"):
        adapter = spectral_adapter(model, rank=16)
    # 1x1 projections from 16 channels etc. are targeted; depthwise kernels 32 x 9 are too
    assert "features.0.0" in adapter.targets and "classifier.1" in adapter.targets
    assert adapter.ranks["features.1.conv.0.0"] == 9  # depthwise 3x3: 32 x 9, capped
    with torch.no_grad():
        _assert_same(adapter.model(x), model(x))
    assert all(not parametrize.is_parametrized(m) for m in model.modules())


def test_identity_bert_query_value() -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=32,
    )
    model = transformers.BertForSequenceClassification(config).eval()
    adapter = spectral_adapter(model, rank=8, targets=["query", "value"], trainable=["classifier"])
    assert adapter.targets == tuple(
        f"bert.encoder.layer.{i}.attention.self.{p}" for i in range(2) for p in ("query", "value")
    )
    assert adapter.n_trainable == 4 * 8 + 32 * 2 + 2
    ids = torch.randint(0, 100, (3, 10))
    with torch.no_grad():
        _assert_same(adapter.model(ids).logits, model(ids).logits)


# 2. only δ receives gradients -----------------------------------------------------------------


def test_only_deltas_get_gradients() -> None:
    model = _mlp()
    adapter = spectral_adapter(model, rank=4)
    assert adapter.n_trainable == 12
    _randomise_deltas(adapter)
    adapter.model(torch.randn(8, 12)).pow(2).mean().backward()
    for name, p in adapter.model.named_parameters():
        if name.endswith(".delta"):
            assert p.requires_grad and p.grad is not None and p.shape == (4,)
        else:
            assert not p.requires_grad and p.grad is None, name
    trainable = sum(p.numel() for p in adapter.model.parameters() if p.requires_grad)
    assert adapter.n_trainable == trainable
    assert adapter.n_parameters == sum(p.numel() for p in model.parameters())
    assert adapter.trainable_fraction == pytest.approx(12 / adapter.n_parameters)
    assert {n for n, p in adapter.model.named_parameters() if p.grad is not None} == {
        f"{i}.parametrizations.weight.0.delta" for i in (0, 2, 4)
    }
    for name in adapter.targets:
        module = adapter.model.get_submodule(name)
        assert not module.parametrizations.weight.original.requires_grad


def test_trainable_head_gets_gradients() -> None:
    model = _mlp()
    adapter = spectral_adapter(model, rank=4, trainable=["4"])
    assert adapter.targets == ("0", "2")
    assert adapter.n_trainable == 8 + 24 * 16 + 16
    adapter.model(torch.randn(8, 12)).pow(2).mean().backward()
    with_grad = {n for n, p in adapter.model.named_parameters() if p.grad is not None}
    assert with_grad == {
        "0.parametrizations.weight.0.delta",
        "2.parametrizations.weight.0.delta",
        "4.weight",
        "4.bias",
    }
    assert adapter.n_trainable == sum(
        p.numel() for p in adapter.model.parameters() if p.requires_grad
    )


# 3. merge -------------------------------------------------------------------------------------


def test_merge_reproduces_adapted_outputs() -> None:
    torch.manual_seed(0)
    model = _CNN().eval()
    keys = list(model.state_dict())
    adapter = spectral_adapter(model, rank=4, min_dim=1)
    _randomise_deltas(adapter, scale=0.5)
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        adapted = adapter.model(x)
        assert not torch.allclose(adapted, model(x), atol=1e-3)
    deltas = adapter.deltas()
    merged = adapter.merge()
    assert merged is adapter.model and adapter.merged
    with torch.no_grad():
        torch.testing.assert_close(merged(x), adapted, atol=1e-5, rtol=0)
    assert not any(parametrize.is_parametrized(m) for m in merged.modules())
    assert list(merged.state_dict()) == keys
    assert all(type(p) is nn.Parameter and p.requires_grad for p in merged.parameters())
    assert all(torch.equal(deltas[k], v) for k, v in adapter.deltas().items())
    assert "merged" in repr(adapter)


# 4. independent oracle ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["linear", "grouped_conv"])
def test_merged_weight_matches_numpy_svd(kind: str) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(20, 12) if kind == "linear" else nn.Conv2d(8, 12, 3, groups=2)
    W = layer.weight.detach().double().numpy().reshape(12, -1)
    adapter = spectral_adapter(nn.Sequential(layer), rank=5)
    _randomise_deltas(adapter, scale=0.3)
    delta = adapter.deltas()["0"].double().numpy()
    merged_w = adapter.merge()[0].weight.detach().double().numpy().reshape(12, -1)

    # oracle: NumPy float64 SVD, U diag(σ + δ) Vᵀ with δ on the leading 5 coefficients
    U, S, Vt = np.linalg.svd(W, full_matrices=False)
    d = np.zeros_like(S)
    d[:5] = delta
    expected = (U * (S + d)) @ Vt
    np.testing.assert_allclose(merged_w, expected, rtol=1e-5, atol=1e-6 * np.abs(W).max())
    assert np.abs(merged_w - W).max() > 1e-2  # δ really moved the weight


def test_bare_layer_as_model() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(16, 12)
    adapter = spectral_adapter(layer, rank=3)
    assert adapter.targets == ("",) and adapter.ranks == {"": 3}
    x = torch.randn(4, 16)
    _assert_same(adapter.model(x), layer(x))
    merged = adapter.merge()
    assert type(merged) is nn.Linear and list(merged.state_dict()) == ["weight", "bias"]


def test_rank_all_minus_sigma_gives_zero() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 14))
    adapter = spectral_adapter(model, rank="all")
    assert adapter.ranks == {"0": 10}
    layer = adapter.model[0].parametrizations.weight[0]
    S = np.linalg.svd(model[0].weight.detach().double().numpy(), compute_uv=False)
    np.testing.assert_allclose(layer.sigma.double().numpy(), S, rtol=1e-6)
    with torch.no_grad():
        layer.delta.copy_(-layer.sigma)
    merged = adapter.merge()
    scale = model[0].weight.abs().max().item()
    assert merged[0].weight.abs().max().item() < 1e-5 * scale


# 5. training works ----------------------------------------------------------------------------


def test_training_reduces_loss() -> None:
    torch.manual_seed(0)
    model = _mlp()
    x = torch.randn(64, 12)
    teacher = copy.deepcopy(model)
    with torch.no_grad():  # a target reachable by changing singular values only
        for layer in (teacher[0], teacher[2], teacher[4]):
            U, S, Vh = torch.linalg.svd(layer.weight, full_matrices=False)
            layer.weight.copy_((U * (S * 1.5)) @ Vh)
        y = teacher(x)
    before = copy.deepcopy(model.state_dict())
    adapter = spectral_adapter(model, rank="all")
    params = [p for p in adapter.model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=0.05)

    def loss() -> torch.Tensor:
        return nn.functional.mse_loss(adapter.model(x), y)

    start = loss().item()
    for _ in range(40):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    assert loss().item() < 0.2 * start
    # the user's model was copied, not trained
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_copy_true_leaves_original_untouched() -> None:
    model = _mlp()
    before = copy.deepcopy(model.state_dict())
    adapter = spectral_adapter(model, rank=4)
    _randomise_deltas(adapter)
    adapter.merge()
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert all(p.requires_grad for p in model.parameters())


def test_copy_false_adapts_in_place() -> None:
    model = _mlp()
    adapter = spectral_adapter(model, rank=4, copy=False)
    assert adapter.model is model and parametrize.is_parametrized(model[0])
    assert adapter.merge() is model and not parametrize.is_parametrized(model[0])


# 6. warnings, skipping, bad input -------------------------------------------------------------


def test_rank_capping_warns_once() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(9, 10), nn.Linear(10, 12), nn.Linear(12, 40))
    with pytest.warns(UserWarning) as record:
        adapter = spectral_adapter(model, rank=16)
    assert len(record) == 1
    message = str(record[0].message)
    assert "capped" in message and "3 layers" in message and "0: 9" in message
    assert adapter.ranks == {"0": 9, "1": 10, "2": 12}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spectral_adapter(model, rank="all")
        spectral_adapter(model, rank=4)


def test_small_layers_skipped_and_listed() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.Linear(32, 3))
    adapter = spectral_adapter(model, rank=4)
    assert adapter.targets == ("0",)
    assert adapter.skipped[0][0] == "1" and "min_dim" in adapter.skipped[0][1]
    assert "1 targets" in repr(adapter) and "trainable 4" in repr(adapter)


def test_target_patterns() -> None:
    torch.manual_seed(0)
    model = _CNN()
    assert spectral_adapter(model, 2, ["conv*"], min_dim=1).targets == ("conv", "conv1d")
    assert spectral_adapter(model, 2, "head").targets == ("head",)
    nested = nn.Sequential(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 8)))
    assert spectral_adapter(nested, 2, ["0"]).targets == ("0.0", "0.2")  # container
    assert spectral_adapter(nested, 2, ["0.*"]).targets == ("0.0", "0.2")  # wildcard


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rank": 0}, r"rank=0 must be >= 1"),
        ({"rank": -3}, r"rank=-3 must be >= 1"),
        ({"rank": "x"}, r"rank='x' is not a positive integer or 'all'"),
        ({"rank": 2.5}, r"rank=2.5 is not a positive integer"),
        ({"rank": True}, r"rank=True is not a positive integer"),
        ({"targets": ["qurey"]}, r"matches no module name; near names"),
        ({"targets": []}, r"targets is empty"),
        ({"trainable": ["nothing_here"]}, r"trainable pattern 'nothing_here' matches no"),
        ({"targets": ["1"]}, r"'1' .* is a ReLU; only nn.Linear, nn.Conv1d"),
        ({"min_dim": 0}, r"min_dim=0 must be a positive integer"),
        ({"min_dim": 100}, r"no layer left to adapt"),
    ],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        spectral_adapter(_mlp(), **kwargs)


def test_bad_input_near_names() -> None:
    model = nn.Sequential()
    model.add_module("query", nn.Linear(8, 8))
    model.add_module("value", nn.Linear(8, 8))
    with pytest.raises(InputError, match=r"'quer' matches no module name; near names: 'query'"):
        spectral_adapter(model, targets=["quer"])


def test_layernorm_target_rejected() -> None:
    model = nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16))
    with pytest.raises(InputError, match=r"'1' .*is a LayerNorm; only nn.Linear"):
        spectral_adapter(model, targets=["1"])
    with pytest.raises(InputError, match=r"LayerNorm"):
        spectral_adapter(model, targets=["*1"])


def test_nan_weight_rejected() -> None:
    model = _mlp()
    with torch.no_grad():
        model[2].weight[3, 4] = float("nan")
    with pytest.raises(InputError, match=r"target '2' has a non-finite"):
        spectral_adapter(model)


def test_not_a_module_rejected() -> None:
    with pytest.raises(InputError, match=r"model is a list, not a torch.nn.Module"):
        spectral_adapter([nn.Linear(8, 8)])  # type: ignore[arg-type]


def test_second_merge_rejected() -> None:
    adapter = spectral_adapter(_mlp(), rank=2)
    adapter.merge()
    with pytest.raises(InputError, match=r"already merged"):
        adapter.merge()


def test_error_messages_are_one_line() -> None:
    for kwargs in ({"rank": 0}, {"targets": ["qurey"]}, {"targets": ["1"]}):
        with pytest.raises(InputError) as info:
            spectral_adapter(_mlp(), **kwargs)
        assert "\n" not in str(info.value)
