"""Spectral stability and sharing of weight matrices (METHOD.md §10), against closed forms and
SciPy's principal angles."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from scipy.stats import ks_2samp, ortho_group
from torch import nn

from cli_helpers import assert_one_line_error, invoke
from repscope._validation import InputError
from repscope.weightspace import spectral_sharing, spectral_stability
from repscope.weightspace.matrices import extract_matrices, module_kinds
from repscope.weightspace.sharing import _null_overlaps


def _orthogonal(d: int, seed: int) -> np.ndarray:
    return ortho_group.rvs(d, random_state=seed)


def _linear(weight: np.ndarray) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
    return layer


def _pair(W: np.ndarray, W2: np.ndarray, ranks=(1, 2, 4, 8), **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return spectral_stability(_linear(W), _linear(W2), ranks, device="cpu", **kw)


def _top(W: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    U, _, Vt = np.linalg.svd(W, full_matrices=False)
    return U[:, :r], Vt[:r].T


@pytest.fixture(scope="module")
def gaussian() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((40, 30))


# ---- closed forms ----------------------------------------------------------------------------


def test_row_space_rotation_keeps_column_space(gaussian: np.ndarray) -> None:
    """W → W R (R orthogonal on the input side): left subspaces unchanged, right rotated."""
    rotated = gaussian @ _orthogonal(30, 1)
    layers = _pair(gaussian, rotated).layers
    np.testing.assert_allclose(layers["overlap_left"], 1.0, atol=1e-10)
    np.testing.assert_allclose(layers["sigma_change"], 0.0, atol=1e-12)
    assert (layers["overlap_right"] < 0.9).all()


def test_overlap_equals_scipy_principal_angles(gaussian: np.ndarray) -> None:
    """Independent oracle: mean cos² of scipy.linalg.subspace_angles, rtol 1e-10."""
    tuned = gaussian + 0.3 * np.random.default_rng(2).standard_normal(gaussian.shape)
    layers = _pair(gaussian, tuned).layers.set_index("r")
    for r in (1, 2, 4, 8):
        Ub, Vb = _top(gaussian, r)
        Ut, Vt = _top(tuned, r)
        left = np.mean(np.cos(subspace_angles(Ub, Ut)) ** 2)
        right = np.mean(np.cos(subspace_angles(Vb, Vt)) ** 2)
        assert layers.loc[r, "overlap_left"] == pytest.approx(left, rel=1e-10)
        assert layers.loc[r, "overlap_right"] == pytest.approx(right, rel=1e-10)
        P = Ub @ Ub.T @ (tuned - gaussian) @ Vb @ Vb.T
        share = np.sum(P**2) / np.sum((tuned - gaussian) ** 2)
        assert layers.loc[r, "update_share"] == pytest.approx(share, rel=1e-10)
        assert layers.loc[r, "baseline_left"] == r / 40
        assert layers.loc[r, "baseline_right"] == r / 30


def test_update_inside_top_r_has_share_one_and_orthogonal_zero(gaussian: np.ndarray) -> None:
    r = 4
    U, V = _top(gaussian, r)
    rng = np.random.default_rng(3)
    inside = U @ rng.standard_normal((r, r)) @ V.T
    layers = _pair(gaussian, gaussian + 0.1 * inside).layers.set_index("r")
    assert layers.loc[4, "update_share"] == pytest.approx(1.0, abs=1e-12)
    assert layers.loc[8, "update_share"] == pytest.approx(1.0, abs=1e-12)
    assert layers.loc[2, "update_share"] < 1.0
    outside = (np.eye(40) - U @ U.T) @ rng.standard_normal((40, 30))
    layers = _pair(gaussian, gaussian + 0.1 * outside).layers.set_index("r")
    assert layers.loc[4, "update_share"] == pytest.approx(0.0, abs=1e-12)


def test_random_matrices_overlap_r_over_d() -> None:
    """Independent Gaussian layers: the mean overlap over 20 layers is r/d within 4 standard
    errors of the exact null (drawn by explicit Haar rotations in the next test)."""
    rng = np.random.default_rng(4)
    d_out, d_in, r, n = 96, 64, 8, 20
    base = nn.Sequential(*(nn.Linear(d_in, d_out, bias=False) for _ in range(n)))
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        for layer in tuned:
            layer.weight.copy_(torch.from_numpy(rng.standard_normal((d_out, d_in))))
    summary = spectral_stability(base, tuned, (r,), device="cpu").summary(r)
    null = _null_overlaps(d_out, r, 4000, np.random.default_rng(5))
    tolerance = 4 * null.std() / math.sqrt(n)
    assert abs(summary["overlap_left"] - r / d_out) < tolerance
    null_right = _null_overlaps(d_in, r, 4000, np.random.default_rng(6))
    assert abs(summary["overlap_right"] - r / d_in) < 4 * null_right.std() / math.sqrt(n)


@pytest.mark.parametrize(("d", "r"), [(40, 4), (12, 8), (20, 3)])
def test_null_matches_explicit_haar_rotations(d: int, r: int) -> None:
    """The O(r³) null equals ‖E_rᵀ R E_r‖²/r for R from scipy's ortho_group (KS p > 0.001)."""
    fast = _null_overlaps(d, r, 3000, np.random.default_rng(7))
    rotations = ortho_group.rvs(d, size=3000, random_state=8)
    explicit = (rotations[:, :r, :r] ** 2).sum(axis=(1, 2)) / r
    assert ks_2samp(fast, explicit).pvalue > 1e-3
    assert fast.mean() == pytest.approx(r / d, abs=4 * fast.std() / math.sqrt(3000))


def test_identical_models_overlap_one_and_zero_update_reported() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16))
    result = spectral_stability(model, copy.deepcopy(model), (1, 4, 8), device="cpu")
    layers = result.layers
    assert (
        not layers.drop(columns=["index_alignment_left", "index_alignment_right"])
        .isna()
        .any(axis=None)
    )
    np.testing.assert_allclose(layers[["overlap_left", "overlap_right"]], 1.0, atol=1e-12)
    assert (layers["update_norm"] == 0).all() and not layers["changed"].any()
    assert (layers["update_share"] == 1.0).all() and (layers["sigma_change"] == 0).all()
    summary = result.summary(4)
    assert summary["n_changed"] == 0 and summary["overlap"] == pytest.approx(1.0)
    assert all(v is None or math.isfinite(v) for v in summary.values())


def test_index_alignment_only_where_gap_is_large() -> None:
    """σ = (10, 5, 5, 2, 1): vectors 2 and 3 share a singular value, so only 1, 4 and 5 count."""
    rng = np.random.default_rng(9)
    U = _orthogonal(12, 10)[:, :5]
    V = _orthogonal(9, 11)[:, :5]
    W = U @ np.diag([10.0, 5.0, 5.0, 2.0, 1.0]) @ V.T
    result = _pair(W, W + 1e-3 * rng.standard_normal(W.shape), ranks=(1, 2, 4, 5))
    indices = result.indices.set_index("index")
    assert indices["well_defined"].tolist() == [True, False, False, True, True]
    assert indices.loc[1, "relative_gap"] == pytest.approx(0.5)
    assert result.layers.set_index("r").loc[4, "n_well_defined"] == 2
    assert indices.loc[1, "alignment_left"] > 0.999


def test_conv_reshape_and_attention_split() -> None:
    conv = nn.Conv2d(4, 16, 3)
    attention = nn.MultiheadAttention(16, 2)
    model = nn.ModuleDict({"conv": conv, "attn": attention})
    matrices, _ = extract_matrices(model.state_dict(), module_kinds(model))
    by_name = {m.name: m for m in matrices}
    np.testing.assert_array_equal(
        by_name["conv.weight"].matrix.numpy(), conv.weight.detach().numpy().reshape(16, 36)
    )
    q = by_name["attn.in_proj_weight[q]"]
    assert q.kind == "attention" and q.dims == (16, 16)
    np.testing.assert_array_equal(q.matrix.numpy(), attention.in_proj_weight.detach()[:16])
    assert by_name["attn.out_proj.weight"].kind == "attention"


def test_small_layers_skipped_and_listed() -> None:
    model = nn.Sequential(nn.Linear(3, 32), nn.Linear(32, 16))
    result = spectral_stability(model, copy.deepcopy(model), (2,), device="cpu")
    assert ("0.weight", "smaller dimension 3 < 8") in result.skipped
    assert result.layers["layer"].tolist() == ["1.weight"]


def test_new_head_is_skipped_and_named() -> None:
    base = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 100))
    tuned = copy.deepcopy(base)
    tuned[2] = nn.Linear(32, 10)
    result = spectral_stability(base, tuned, (2,), device="cpu")
    (_, reason), *_ = [s for s in result.skipped if s[0] == "2.weight"]
    assert "new head" in reason and "100×32" in reason and "10×32" in reason


def test_randomized_svd_error_is_stated_and_small() -> None:
    """A matrix with a decaying spectrum: randomized and exact agree to 1e-8 on the top 4."""
    rng = np.random.default_rng(12)
    U, V = _orthogonal(200, 13)[:, :100], _orthogonal(150, 14)[:, :100]
    W = U @ np.diag(0.8 ** np.arange(100)) @ V.T
    W2 = W + 1e-3 * rng.standard_normal(W.shape)
    exact = _pair(W, W2, ranks=(1, 4)).layers
    randomized = _pair(W, W2, ranks=(1, 4), exact_max=50).layers
    assert set(randomized["svd"]) == {"randomized"} and set(exact["svd"]) == {"exact"}
    assert (randomized["svd_residual"] < 1e-8).all()
    assert (exact["svd_residual"] < 1e-12).all()
    for column in ("overlap_left", "overlap_right", "update_share", "sigma_change"):
        np.testing.assert_allclose(randomized[column], exact[column], atol=1e-8)


def test_depth_summaries() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(*(nn.Linear(16, 16) for _ in range(6)))
    tuned = copy.deepcopy(model)
    with torch.no_grad():
        for i, layer in enumerate(tuned):  # later layers move more
            layer.weight.add_(0.05 * (i + 1) * torch.randn_like(layer.weight))
    result = spectral_stability(model, tuned, (2, 4), device="cpu")
    table = result.by_depth(4)
    assert table["depth_bin"].tolist() == ["early", "middle", "late"]
    assert table["n_layers"].tolist() == [2, 2, 2]
    assert table["overlap_left"].is_monotonic_decreasing
    assert set(result.by_depth(None)["rank"]) == {2, 4}


# ---- sources and bad input ----------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(2)
    base = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4, 32))
    for _ in range(6):
        base.append(nn.Linear(32, 32))
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.05 * torch.randn_like(p))
    paths = {
        "base_pt": folder / "base.pt",
        "tuned_st": folder / "tuned.safetensors",
        "nested": folder / "nested.pt",
        "pickle": folder / "module.pt",
    }
    torch.save(base.state_dict(), paths["base_pt"])
    save_file(tuned.state_dict(), str(paths["tuned_st"]))
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in tuned.state_dict().items()}}, paths["nested"]
    )
    torch.save(tuned, paths["pickle"])
    return {**paths, "base": base, "tuned": tuned}  # type: ignore[dict-item]


def test_files_and_modules_give_identical_results(checkpoints: dict) -> None:
    """safetensors (names stored sorted) and nested DDP checkpoints read in layer order."""
    from_modules = spectral_stability(checkpoints["base"], checkpoints["tuned"], (2, 4))
    from_files = spectral_stability(checkpoints["base_pt"], checkpoints["tuned_st"], (2, 4))
    nested = spectral_stability(checkpoints["base_pt"], checkpoints["nested"], (2, 4))
    for other in (from_files, nested):
        assert other.layers["layer"].tolist() == from_modules.layers["layer"].tolist()
        np.testing.assert_array_equal(
            other.layers["overlap_left"].to_numpy(), from_modules.layers["overlap_left"].to_numpy()
        )
    assert from_files.layers["layer"].iloc[-1] == "9.weight"  # natural order: 9 after 3


def test_pickled_module_refused(checkpoints: dict) -> None:
    with pytest.raises(InputError, match=r"Python objects besides tensors.*weights_only=True"):
        spectral_stability(checkpoints["base_pt"], checkpoints["pickle"])


def test_architecture_mismatch_names_layer_and_shapes() -> None:
    base = nn.Sequential(nn.Linear(16, 32), nn.Linear(32, 32), nn.Linear(32, 10))
    other = nn.Sequential(nn.Linear(16, 24), nn.Linear(24, 32), nn.Linear(32, 10))
    with pytest.raises(
        InputError, match=r"architectures differ: layer 0\.weight is 32×16 .* 24×16"
    ):
        spectral_stability(base, other)
    deeper = nn.Sequential(
        nn.Linear(16, 32), nn.Linear(32, 32), nn.Linear(32, 10), nn.Linear(10, 10)
    )
    with pytest.raises(InputError, match=r"layer 3\.weight .* missing"):
        spectral_stability(base, deeper)


def test_rank_capped_once_and_nonfinite_refused() -> None:
    model = nn.Sequential(nn.Linear(12, 10), nn.Linear(10, 9))
    with pytest.warns(UserWarning, match="capped per layer") as record:
        result = spectral_stability(model, copy.deepcopy(model), (4, 32), device="cpu")
    assert len([w for w in record if "capped" in str(w.message)]) == 1
    assert result.layers.query("rank == 32")["r"].tolist() == [10, 9]
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken[1].weight[0, 0] = float("nan")
    with pytest.raises(InputError, match=r"layer 1\.weight has non-finite weights"):
        spectral_stability(model, broken)


@pytest.mark.parametrize("ranks", [(), (0, 4), (2.5,), ("a",)])
def test_bad_ranks(ranks: tuple) -> None:
    model = nn.Linear(16, 16)
    with pytest.raises(InputError, match="must be positive integers"):
        spectral_stability(model, model, ranks)


# ---- sharing ---------------------------------------------------------------------------------


def test_sharing_shared_directions_are_significant(gaussian: np.ndarray) -> None:
    r = 3
    U, V = _top(gaussian, 8)
    rng = np.random.default_rng(15)
    # two tasks moving along the same r-dimensional directions, outside the base's top 8
    P = np.linalg.qr((np.eye(40) - U @ U.T) @ rng.standard_normal((40, r)))[0]
    Q = np.linalg.qr((np.eye(30) - V @ V.T) @ rng.standard_normal((30, r)))[0]
    tuned = [gaussian + P @ rng.standard_normal((r, r)) @ Q.T for _ in range(2)]
    independent = gaussian + 0.1 * rng.standard_normal(gaussian.shape)
    result = spectral_sharing(
        _linear(gaussian),
        [_linear(t) for t in (*tuned, independent)],
        r,
        labels=["a", "b", "c"],
        n_null=500,
    )
    summary = result.summary.set_index(["a", "b", "side"])
    assert summary.loc[("a", "b", "left"), "overlap"] == pytest.approx(1.0)
    assert summary.loc[("a", "b", "left"), "p_value"] == pytest.approx(1 / 501)
    assert summary.loc[("a", "base", "left"), "overlap"] < 1e-10  # orthogonal to top 8
    assert summary.loc[("a", "c", "right"), "p_value"] > 0.01
    assert summary.loc[("a", "b", "left"), "null_mean"] == pytest.approx(r / 40, abs=0.02)


def test_sharing_unchanged_layer_dropped_and_bad_input() -> None:
    torch.manual_seed(3)
    base = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 16))
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        tuned[1].weight.add_(0.1)
    result = spectral_sharing(base, [tuned], 2, n_null=50)
    assert ("0.weight", f"unchanged in {result.tuned[0]}") in result.skipped
    assert set(result.layers["layer"]) == {"1.weight"}
    with pytest.raises(InputError, match="one or more fine-tuned models"):
        spectral_sharing(base, [])
    with pytest.raises(InputError, match="n_null"):
        spectral_sharing(base, [tuned], n_null=0)


# ---- CLI ---------------------------------------------------------------------------------------


def test_cli_json_and_table(checkpoints: dict) -> None:
    import json

    result = invoke(
        "weights", checkpoints["base_pt"], checkpoints["tuned_st"], "--rank", "4", "--json"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    (model,) = payload["models"]
    assert model["summary"]["rank"] == 4 and payload["sharing"] is None
    assert {row["layer"] for row in model["layers"]} >= {"0.weight", "3.weight"}
    table = invoke(
        "weights", checkpoints["base_pt"], checkpoints["tuned_st"], checkpoints["nested"]
    )
    assert table.exit_code == 0, table.output
    assert "shared update directions" in table.stdout and "summary over" in table.stdout


def test_cli_bad_input(checkpoints: dict, tmp_path: Path) -> None:
    assert_one_line_error(
        invoke("weights", checkpoints["base_pt"], checkpoints["pickle"]),
        r"weights_only=True",
    )
    assert_one_line_error(
        invoke("weights", checkpoints["base_pt"], tmp_path / "missing.pt"),
        r"neither an existing checkpoint file nor a model spec",
    )
    other = tmp_path / "other.pt"
    torch.save(nn.Sequential(nn.Linear(5, 40), nn.Linear(40, 8)).state_dict(), other)
    assert_one_line_error(
        invoke("weights", checkpoints["base_pt"], other), r"architectures differ: layer"
    )
    assert_one_line_error(
        invoke("weights", checkpoints["base_pt"], checkpoints["tuned_st"], "--ranks", "4,x"),
        r"--ranks '4,x' is not a comma-separated list",
    )


def test_model_spec_against_its_own_fine_tune_with_a_new_head() -> None:
    """A real architecture by spec: only the perturbed layer moves, the new head is skipped."""
    from repscope.io.models import load_model

    spec = "torchvision:mobilenet_v2.IMAGENET1K_V1"
    tuned = copy.deepcopy(load_model(spec).module)
    tuned.classifier[1] = nn.Linear(1280, 10)
    with torch.no_grad():
        tuned.features[3].conv[1][0].weight.mul_(1.5)  # a 1×1 conv: σ scale, same vectors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = spectral_stability(spec, tuned, (4, 16))
    layers = result.layers.set_index(["layer", "rank"])
    moved = "features.3.conv.1.0.weight"
    assert layers.loc[(moved, 16), "sigma_change"] == pytest.approx(0.5, rel=1e-6)
    assert layers.loc[(moved, 16), "overlap_left"] == pytest.approx(1.0, abs=1e-9)
    others = result.layers[result.layers["layer"] != moved]
    assert (others["update_norm"] == 0).all()
    assert "new head" in dict(result.skipped)["classifier.1.weight"]
    assert result.base == spec and len(result.layers) == 2 * 52
