"""Stimulus sets: folders, file lists, NSD HDF5, arrays and built-in image sets."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import skimage.data
from PIL import Image

from repscope._validation import InputError
from repscope.io import _builtin_images
from repscope.io.stimuli import (
    BUILTIN_SETS,
    Stimuli,
    StimulusReadError,
    open_stimuli,
)

CAMERA = skimage.data.camera()[200:232, 220:260]  # gray (32, 40)
CHELSEA = skimage.data.chelsea()[50:98, 100:164]  # RGB (48, 64, 3)
COFFEE = skimage.data.coffee()[100:140, 300:330]  # RGB (40, 30, 3)


def as_array(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Gray PNG at the top, JPEG and upper-case .PNG in a subfolder, plus non-images."""
    root = tmp_path / "images"
    (root / "cats").mkdir(parents=True)
    Image.fromarray(CAMERA).save(root / "a_camera.png")
    Image.fromarray(CHELSEA).save(root / "cats" / "001.jpg", quality=95)
    Image.fromarray(COFFEE).save(root / "cats" / "002.PNG")
    (root / "notes.txt").write_text("not an image")
    (root / "album.jpg").mkdir()  # a folder with an image-like name is not an image
    return root


@pytest.fixture
def nsd_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """NSD layout: ``imgBrick`` uint8 (20, 16, 16, 3), row = 0-based nsdId."""
    brick = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    path = tmp_path / "nsd_stimuli.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("imgBrick", data=brick)
    return path, brick


# --- image folders and file lists ---------------------------------------------------------


def test_folder_ids_order_and_pixels(image_folder: Path) -> None:
    stim = open_stimuli(image_folder)
    assert stim.kind == "folder"
    assert stim.ids == ("a_camera", "cats/001", "cats/002")
    assert stim.labels is None
    np.testing.assert_array_equal(as_array(stim.load(0)), np.repeat(CAMERA[..., None], 3, 2))
    np.testing.assert_array_equal(as_array(stim.load(2)), COFFEE)
    jpeg = as_array(stim.load(1)).astype(float)
    assert jpeg.shape == CHELSEA.shape
    assert np.abs(jpeg - CHELSEA).mean() < 4  # lossy at quality 95
    assert stim.describe() == {"kind": "folder", "location": str(image_folder), "n": 3}


def test_folder_errors(tmp_path: Path, image_folder: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no images found in .*empty; add files with extensions"):
        open_stimuli(tmp_path / "empty")
    Image.fromarray(CAMERA).save(image_folder / "a_camera.bmp")
    with pytest.raises(InputError, match=r"'a_camera.bmp' and 'a_camera.png' .* id 'a_camera'"):
        open_stimuli(image_folder)


def test_corrupt_file_raises_stimulus_read_error(image_folder: Path) -> None:
    good = (image_folder / "cats" / "002.PNG").read_bytes()
    (image_folder / "cats" / "002.PNG").write_bytes(good[: len(good) // 2])
    stim = open_stimuli(image_folder)
    stim.load(0)
    with pytest.raises(StimulusReadError, match=r"cannot read stimulus 'cats/002' from .*002\.PNG"):
        stim.load(2)
    assert issubclass(StimulusReadError, InputError)


def test_file_list_and_txt(tmp_path: Path, image_folder: Path) -> None:
    paths = [image_folder / "cats" / "002.PNG", image_folder / "a_camera.png"]
    stim = open_stimuli(paths)
    assert (stim.kind, stim.ids) == ("files", ("002", "a_camera"))
    np.testing.assert_array_equal(as_array(stim.load(0)), COFFEE)
    named = open_stimuli(tuple(paths), ids=["coffee", "camera"])
    assert named.ids == ("coffee", "camera")

    listing = image_folder / "list.txt"
    listing.write_text("cats/002.PNG\n\n  a_camera.png  \n")
    from_txt = open_stimuli(listing)
    assert from_txt.ids == ("002", "a_camera")
    assert from_txt.paths == stim.paths
    assert from_txt.describe()["location"] == str(listing)


def test_file_list_errors(image_folder: Path) -> None:
    paths = [image_folder / "a_camera.png", image_folder / "missing.png"]
    with pytest.raises(InputError, match=r"1 of 2 listed image files do not exist \(first: .*miss"):
        open_stimuli(paths)
    (image_folder / "a_camera.jpg").write_bytes(b"")
    with pytest.raises(InputError, match=r"share a file stem, so ids repeat; pass ids="):
        open_stimuli([image_folder / "a_camera.png", image_folder / "a_camera.jpg"])
    with pytest.raises(InputError, match=r"ids has 1 entries but the file list has 2"):
        open_stimuli([image_folder / "a_camera.png", image_folder / "a_camera.jpg"], ids=["x"])
    with pytest.raises(InputError, match=r"the list of image files is empty; list at least one"):
        open_stimuli([])


def test_file_fingerprint(image_folder: Path) -> None:
    stim = open_stimuli(image_folder)
    fp = stim.fingerprint()
    assert len(fp) == 64 and fp == open_stimuli(image_folder).fingerprint()
    assert pickle.loads(pickle.dumps(stim)).fingerprint() == fp

    target = image_folder / "cats" / "002.PNG"
    mtime = target.stat().st_mtime_ns
    Image.fromarray(CHELSEA).save(target)  # new content, other size, same mtime
    os.utime(target, ns=(mtime, mtime))
    content_changed = stim.fingerprint()
    assert content_changed != fp
    os.utime(target, ns=(mtime + 10**9, mtime + 10**9))
    assert stim.fingerprint() not in (fp, content_changed)

    paths = list(stim.paths)
    assert (
        open_stimuli(paths).fingerprint() != open_stimuli(paths, ids=["x", "y", "z"]).fingerprint()
    )


# --- NSD HDF5 -----------------------------------------------------------------------------


def test_nsd_selected_ids_and_pixels(nsd_file: tuple[Path, np.ndarray]) -> None:
    path, brick = nsd_file
    stim = open_stimuli(path, nsd_ids=[3, 0, 17])
    assert stim.kind == "nsd"
    assert stim.ids == ("nsd-00003", "nsd-00000", "nsd-00017")
    for i, nsd_id in enumerate([3, 0, 17]):
        np.testing.assert_array_equal(as_array(stim.load(i)), brick[nsd_id])
    assert len(open_stimuli(path)) == 20
    sub = stim.select(["nsd-00017", "nsd-00003"])
    np.testing.assert_array_equal(as_array(sub.load(0)), brick[17])
    assert sub.fingerprint() != stim.fingerprint()
    assert json.loads(json.dumps(stim.describe())) == {
        "kind": "nsd",
        "location": str(path.resolve()),
        "n": 3,
    }


def test_nsd_pickle_after_load(nsd_file: tuple[Path, np.ndarray]) -> None:
    path, brick = nsd_file
    stim = open_stimuli(path, nsd_ids=[5, 6])
    stim.load(0)  # opens the HDF5 file in this process
    clone = pickle.loads(pickle.dumps(stim))
    np.testing.assert_array_equal(as_array(clone.load(0)), brick[5])
    assert clone.fingerprint() == stim.fingerprint()


def _load_first(stim: Stimuli) -> np.ndarray:
    return np.asarray(stim.load(0))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_nsd_forked_worker_opens_its_own_file(nsd_file: tuple[Path, np.ndarray]) -> None:
    path, brick = nsd_file
    stim = open_stimuli(path, nsd_ids=[9])
    stim.load(0)  # the parent's handle is inherited by fork, as in a DataLoader worker
    with multiprocessing.get_context("fork").Pool(1) as pool:
        (img,) = pool.map(_load_first, [stim])
    np.testing.assert_array_equal(img, brick[9])


def test_nsd_errors(tmp_path: Path, nsd_file: tuple[Path, np.ndarray]) -> None:
    path, _ = nsd_file
    with pytest.raises(InputError, match=r"2 nsd_ids are outside 0\.\.19 .* \(first: 20\)"):
        open_stimuli(path, nsd_ids=[20, 0, -1])
    with pytest.raises(InputError, match=r"nsd_ids repeat"):
        open_stimuli(path, nsd_ids=[1, 1])
    with pytest.raises(InputError, match=r"nsd_ids must be a non-empty 1-D sequence of integers"):
        open_stimuli(path, nsd_ids=[1.5])
    with pytest.raises(InputError, match=r"ids= does not apply to NSD file"):
        open_stimuli(path, ids=["a"])
    other = tmp_path / "betas.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("betas", data=np.zeros((2, 3), dtype=np.int16))
    with pytest.raises(InputError, match=r"no dataset 'imgBrick' \(found: betas\)"):
        open_stimuli(other)
    flat = tmp_path / "flat.h5"
    with h5py.File(flat, "w") as f:
        f.create_dataset("imgBrick", data=np.zeros((2, 4, 4), dtype=np.uint8))
    with pytest.raises(InputError, match=r"imgBrick in .* has shape \(2, 4, 4\)"):
        open_stimuli(flat)
    fake = tmp_path / "fake.hdf5"
    fake.write_text("not hdf5")
    with pytest.raises(InputError, match=r"fake.hdf5 cannot be opened as HDF5"):
        open_stimuli(fake)


# --- arrays -------------------------------------------------------------------------------


def test_array_sources_round_trip(tmp_path: Path) -> None:
    rgb = np.stack([CHELSEA[:16, :20], COFFEE[:16, :20]])
    gray = rgb[..., 1].copy()
    from_rgb = open_stimuli(rgb)
    assert (from_rgb.kind, from_rgb.ids) == ("array", ("0", "1"))
    np.testing.assert_array_equal(as_array(from_rgb.load(1)), rgb[1])
    np.testing.assert_array_equal(as_array(open_stimuli(gray).load(0))[..., 2], gray[0])
    channels_first = open_stimuli(rgb.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(as_array(channels_first.load(1)), rgb[1])
    assert channels_first.fingerprint() == from_rgb.fingerprint()
    floats = open_stimuli(rgb / 255.0)
    np.testing.assert_array_equal(as_array(floats.load(0)), rgb[0])
    np.save(tmp_path / "imgs.npy", rgb)
    from_npy = open_stimuli(tmp_path / "imgs.npy", ids=["chelsea", "coffee"])
    assert from_npy.ids == ("chelsea", "coffee")
    np.testing.assert_array_equal(as_array(from_npy.select(["coffee"]).load(0)), rgb[1])
    assert from_npy.describe()["location"] == str(tmp_path / "imgs.npy")


def test_array_fingerprint() -> None:
    imgs = np.zeros((3, 4, 4), dtype=np.uint8)
    fp = open_stimuli(imgs).fingerprint()
    assert pickle.loads(pickle.dumps(open_stimuli(imgs))).fingerprint() == fp
    assert open_stimuli(imgs, ids=["a", "b", "c"]).fingerprint() != fp
    changed = imgs.copy()
    changed[2, 3, 3] = 1
    assert open_stimuli(changed).fingerprint() != fp


def test_array_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"has 1 float values outside \[0, 1\] or NaN"):
        open_stimuli(np.array([[[0.5, 1.5]]]))
    with pytest.raises(InputError, match=r"has 1 float values outside \[0, 1\] or NaN"):
        open_stimuli(np.array([[[0.5, np.nan]]]))
    with pytest.raises(InputError, match=r"dtype int64; pass uint8 \(0\.\.255\) or float"):
        open_stimuli(np.zeros((2, 3, 3), dtype=np.int64))
    with pytest.raises(InputError, match=r"has shape \(2, 3\); pass images of shape"):
        open_stimuli(np.zeros((2, 3), dtype=np.uint8))
    with pytest.raises(InputError, match=r"ids has 3 entries but the image array has 2"):
        open_stimuli(np.zeros((2, 3, 3), dtype=np.uint8), ids=["a", "b", "c"])
    with pytest.raises(InputError, match=r"ids must be unique but 'a' repeats"):
        open_stimuli(np.zeros((2, 3, 3), dtype=np.uint8), ids=["a", "a"])
    (tmp_path / "bad.npy").write_text("text")
    with pytest.raises(InputError, match=r"bad\.npy is not a readable \.npy array"):
        open_stimuli(tmp_path / "bad.npy")


# --- built-in sets ------------------------------------------------------------------------


def test_builtin_photos() -> None:
    stim = open_stimuli("builtin:photos")
    assert (stim.kind, len(stim), stim.labels) == ("builtin", 22, None)
    for sid in ("skimage-chelsea", "sklearn-china", "sklearn-flower", "matplotlib-grace_hopper"):
        assert sid in stim.ids
    assert "skimage-cat" not in stim.ids  # the same photo as chelsea
    chelsea = stim.select(["skimage-chelsea", "skimage-camera"])
    np.testing.assert_array_equal(as_array(chelsea.load(0)), skimage.data.chelsea())
    np.testing.assert_array_equal(as_array(chelsea.load(1))[..., 0], skimage.data.camera())
    assert stim.describe() == {"kind": "builtin", "name": "builtin:photos", "n": 22}


def test_builtin_digits_mnist_lfw() -> None:
    from sklearn.datasets import load_digits

    digits = open_stimuli("builtin:digits")
    bunch = load_digits()
    assert (len(digits), digits.ids[0], digits.ids[-1]) == (1797, "digits-0000", "digits-1796")
    np.testing.assert_array_equal(digits.labels, bunch.target)
    expected = np.round(bunch.images[7] * 255 / 16).astype(np.uint8)
    np.testing.assert_array_equal(as_array(digits.load(7))[..., 0], expected)
    assert as_array(digits.load(7)).max() <= 255 and expected.max() > 200

    mnist = open_stimuli("builtin:mnist")
    assert (len(mnist), mnist.ids[4999]) == (5000, "mnist-4999")
    np.testing.assert_array_equal(np.bincount(mnist.labels), np.full(10, 500))
    assert mnist.load(0).size == (28, 28)

    lfw = open_stimuli("builtin:lfw")
    assert len(lfw) == 200 and lfw.load(0).size == (25, 25)
    np.testing.assert_array_equal(lfw.labels, np.repeat([1, 0], 100))


def test_builtin_select_and_pickle() -> None:
    digits = open_stimuli("builtin:digits")
    sub = digits.select(["digits-0010", "digits-0003"])
    assert sub.ids == ("digits-0010", "digits-0003")
    np.testing.assert_array_equal(sub.labels, digits.labels[[10, 3]])
    clone = pickle.loads(pickle.dumps(sub))
    np.testing.assert_array_equal(as_array(clone.load(1)), as_array(digits.load(3)))
    assert clone.fingerprint() == sub.fingerprint() != digits.fingerprint()


def _write_idx(path: Path, header: bytes, values: np.ndarray) -> None:
    with gzip.open(path, "wb") as f:
        f.write(header + values.astype(np.uint8).tobytes())


def test_builtin_fashion_mnist_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    train, test = rng.integers(0, 256, (3, 28, 28)), rng.integers(0, 256, (2, 28, 28))
    for prefix, imgs, labels in (("train", train, [4, 1, 9]), ("t10k", test, [7, 0])):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", bytes(16), imgs)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", bytes(8), np.array(labels))
    monkeypatch.setattr(_builtin_images, "FASHION_MNIST_DIR", tmp_path)
    _builtin_images.load_builtin.cache_clear()
    try:
        stim = open_stimuli("builtin:fashion-mnist")
        assert stim.ids == ("train-00000", "train-00001", "train-00002", "test-00000", "test-00001")
        np.testing.assert_array_equal(stim.labels, [4, 1, 9, 7, 0])
        np.testing.assert_array_equal(as_array(stim.load(3))[..., 1], test[0])
        (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
        _builtin_images.load_builtin.cache_clear()
        with pytest.raises(InputError, match=r"t10k-labels.*apt-get install -y dataset-fashion"):
            open_stimuli("builtin:fashion-mnist")
    finally:
        _builtin_images.load_builtin.cache_clear()


@pytest.mark.skipif(
    not _builtin_images.FASHION_MNIST_DIR.is_dir(), reason="Debian dataset-fashion-mnist missing"
)
def test_builtin_fashion_mnist_installed() -> None:
    stim = open_stimuli("builtin:fashion-mnist")
    assert (len(stim), stim.ids[59999], stim.ids[60000]) == (70000, "train-59999", "test-00000")
    np.testing.assert_array_equal(np.bincount(stim.labels), np.full(10, 7000))


def test_builtin_unknown_name() -> None:
    assert BUILTIN_SETS == ("photos", "digits", "mnist", "lfw", "fashion-mnist")
    with pytest.raises(InputError, match=r"'digit'; did you mean 'builtin:digits'\? available: "):
        open_stimuli("builtin:digit")
    with pytest.raises(InputError, match=r"unknown built-in stimulus set 'zzz'; available: bui"):
        open_stimuli("builtin:zzz")


# --- select, dispatch, import cost --------------------------------------------------------


def test_select_order_and_errors() -> None:
    stim = open_stimuli(np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2), ids=list("abcde"))
    sub = stim.select(["e", "a", "c"])
    assert sub.ids == ("e", "a", "c")
    np.testing.assert_array_equal(as_array(sub.load(0))[..., 0], [[16, 17], [18, 19]])
    with pytest.raises(
        InputError,
        match=r"2 requested id\(s\) are not in this array stimulus "
        r"set \(e\.g\. 'x', 'y'\); pass ids from stimuli\.ids",
    ):
        stim.select(["a", "x", "y"])


def test_dispatch(tmp_path: Path, image_folder: Path) -> None:
    stim = open_stimuli(np.zeros((1, 2, 2), dtype=np.uint8))
    assert open_stimuli(stim) is stim
    with pytest.raises(InputError, match=r"ids= does not apply to an existing Stimuli; .*select"):
        open_stimuli(stim, ids=["a"])
    with pytest.raises(InputError, match=r"cannot open stimuli from a int; pass an image folder"):
        open_stimuli(42)
    with pytest.raises(InputError, match=r"stimulus source .*nowhere does not exist"):
        open_stimuli(tmp_path / "nowhere")
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(InputError, match=r"x\.csv \(extension '\.csv'\); pass an image folder"):
        open_stimuli(tmp_path / "x.csv")
    with pytest.raises(InputError, match=r"ids= does not apply to image folder"):
        open_stimuli(image_folder, ids=["a"])
    with pytest.raises(InputError, match=r"nsd_ids= does not apply to a ndarray source"):
        open_stimuli(np.zeros((1, 2, 2), dtype=np.uint8), nsd_ids=[0])
    for source in (image_folder, "builtin:lfw", np.zeros((1, 2, 2), dtype=np.uint8)):
        assert json.loads(json.dumps(open_stimuli(source).describe()))["n"] >= 1


def test_import_is_cheap() -> None:
    code = (
        "import sys, repscope.io.stimuli; "
        "print(sorted(m for m in ('PIL', 'h5py', 'skimage', 'sklearn', 'mlxtend') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
