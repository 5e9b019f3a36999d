"""Memory preflight: estimates against measured peaks, clear refusals, N = 200 000 on 24 GB.

Measured peak of a call = the larger of
* the growth of the process's peak resident set (``VmHWM`` reset through
  ``/proc/self/clear_refs`` just before the call, minus ``VmRSS`` then), which sees NumPy,
  torch and LAPACK allocations alike, and
* ``tracemalloc``'s peak, which sees NumPy's arrays (NumPy reports them to it) even where
  pages are not touched.
Both run in a child process with ``MALLOC_MMAP_THRESHOLD_`` fixed, so large blocks are
mapped and unmapped (not recycled inside the heap, which would hide them from the resident
set), and each call runs twice with the second measured: libraries' one-time buffers (BLAS
thread buffers, oneDNN kernels) belong to the process, not to the stage.

Tolerance: ``measured <= estimate <= 3 × measured`` (observed 1.0–1.7 on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from importlib.resources import files

import numpy as np
import pytest

from repscope import _backend, _memory
from repscope._validation import InputError

TOLERANCE = 3.0

_MEASURE = r"""
import gc, json, sys, time, tracemalloc
import numpy as np

def status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

PEAK = [0]  # the process's own peak resident set, across the resets below


def measure(fn):
    gc.collect()
    PEAK[0] = max(PEAK[0], status("VmHWM"))
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current resident set
    base = status("VmRSS")
    tracemalloc.start()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    PEAK[0] = max(PEAK[0], status("VmHWM"))
    rss = status("VmHWM") - base
    return {"rss": rss, "traced": traced, "measured": max(rss, traced), "seconds": seconds}
"""

_CHILD = (
    _MEASURE
    + r"""
import warnings
warnings.simplefilter("ignore")
from repscope import _memory as M
from repscope import alignment_matrix, knn, local_dimension, permutation_null, rbf_cka, rsa
from repscope import spectrum
from repscope._backend import available_memory, resolve_device
from repscope.alignment._ridge_cv import target_batch_size
from repscope.alignment.brain import brain_alignment
from repscope.alignment.ridge import ridge_alignment
from repscope.io.responses import BrainResponses
from repscope.neighbors import _choose_block, _resolve_precision
from repscope.preprocessing import pca_reduce

cpu = resolve_device("cpu")
rng = np.random.default_rng(0)


def cloud(n, d, dtype=np.float64, latent=8):
    X = rng.standard_normal((n, latent)) @ rng.standard_normal((latent, d))
    X += 0.01 * rng.standard_normal((n, d))
    return X.astype(dtype)


def batch(n, p, n_test=None):
    n_tr = n - (int(np.ceil(0.2 * n)) if n_test is None else n_test)
    return target_batch_size(n_tr, min(p, n_tr), 5, 20, cpu)


def case(name):
    if name == "knn-candidates":
        n, d, k = 30000, 32, 20
        X = cloud(n, d)
        prec = _resolve_precision("auto", cpu)
        est = M.knn_bytes(n, d, k, precision=prec, block_size=_choose_block(n, cpu, None))
        return lambda: knn(X, k), est
    if name == "knn-exact":
        n, d, k = 6000, 64, 20
        X = cloud(n, d)
        est = M.knn_bytes(n, d, k, precision="float64", block_size=_choose_block(n, cpu, None))
        return lambda: knn(X, k, precision="float64"), est
    if name == "pca-svd":
        X = cloud(20000, 300)
        return lambda: pca_reduce(X, 100), M.pca_bytes(20000, 300, 100)
    if name == "pca-gram":
        X = cloud(20000, 1024)
        return lambda: pca_reduce(X, 300), M.pca_bytes(20000, 1024, 300)
    if name == "local-dimension":
        n, d = 10000, 1024
        X = cloud(n, d, np.float32)
        est = M.local_dimension_bytes(
            n, d, 20, pca=300, itemsize=4, n_scales=2,
            precision=_resolve_precision("auto", cpu), free=available_memory(cpu),
        )
        return lambda: local_dimension(X, k=[10, 20], pca=300), est
    if name == "ridge-primal":
        n, p, t = 20000, 256, 100
        X, Y = cloud(n, p, np.float32), cloud(n, t, np.float32)
        est = M.ridge_bytes(n, p, t, x_itemsize=4, y_itemsize=4, batch_targets=batch(n, p))
        return lambda: ridge_alignment(X, Y, device="cpu"), est
    if name == "ridge-dual":
        n, p, t = 2000, 4000, 200
        X, Y = cloud(n, p), cloud(n, t)
        est = M.ridge_bytes(n, p, t, batch_targets=batch(n, p))
        return lambda: ridge_alignment(X, Y, device="cpu"), est
    if name == "brain":
        n, d, v = 3000, 1024, 10000
        X = cloud(n, d, np.float32)
        ids = np.array([f"nsd-{i:05d}" for i in range(n)])
        Y = cloud(n, v, np.float32)
        subject = BrainResponses(
            subject=1, stimulus_ids=ids, responses=Y, n_repeats=np.full(n, 3),
            coordinates=np.zeros((v, 3), dtype=int), ncsnr=np.full(v, 2.0),
            roi_masks={"V1": np.arange(v) < v // 2, "EBA": np.arange(v) >= v // 2},
            shared=np.zeros(n, dtype=bool), space="func1pt8mm",
        )
        est = M.brain_alignment_bytes(n, d, v, pca=100, batch_targets=batch(n, 100))
        return lambda: brain_alignment(X, ids, subject, pca=100, device="cpu"), est
    if name == "spectrum":
        X = cloud(20000, 1024, np.float32)
        return lambda: spectrum(X), M.spectrum_bytes(20000, 1024, itemsize=4)
    n = 2000
    X, Y = cloud(n, 16), cloud(n, 16)
    if name == "rsa":
        return lambda: rsa(X, Y), M.pairwise_bytes(n, "rsa")
    if name == "cka-rbf":
        return lambda: rbf_cka(X, Y), M.pairwise_bytes(n, "cka-rbf")
    if name == "null-cka":
        fn = lambda: permutation_null(X, Y, "cka", n_permutations=2)
        return fn, M.pairwise_bytes(n, "null-cka")
    if name == "matrix-rsa":
        reps = [X, Y, cloud(n, 16)]
        fn = lambda: alignment_matrix(reps, "rsa")
        return fn, M.pairwise_bytes(n, "matrix-rsa", n_representations=3)
    raise ValueError(name)


results = {}
for name in json.loads(sys.argv[1]):
    fn, estimate = case(name)
    fn()  # warm up: one-time library buffers are the process's, not the stage's
    results[name] = {"estimate": estimate, **measure(fn)}
print(json.dumps(results))
"""
)

CASES = (
    "knn-candidates",
    "knn-exact",
    "pca-svd",
    "pca-gram",
    "local-dimension",
    "ridge-primal",
    "ridge-dual",
    "brain",
    "spectrum",
    "rsa",
    "cka-rbf",
    "null-cka",
    "matrix-rsa",
)


def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _child_env() -> dict[str, str]:
    # large blocks always mapped: a freed array leaves the resident set at once
    return {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, float]]:
    if not _can_reset_peak():
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak resident set")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(CASES)],
        capture_output=True,
        text=True,
        env=_child_env(),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", CASES)
def test_estimate_bounds_the_measured_peak(measured, name: str) -> None:
    r = measured[name]
    mb = {key: round(r[key] / 1e6, 1) for key in ("estimate", "measured", "rss", "traced")}
    assert r["measured"] <= r["estimate"] <= TOLERANCE * r["measured"], (name, mb)


# --------------------------------------------------------------------------- refusals


@pytest.fixture()
def little_memory(monkeypatch: pytest.MonkeyPatch) -> float:
    """Pretend 100 MB are free (every preflight reads ``_backend.available_memory``)."""
    free = 100e6
    monkeypatch.setattr(_backend, "available_memory", lambda device: int(free))
    return free


def _assert_refusal(exc: pytest.ExceptionInfo[InputError], *parts: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    assert "needs ~" in msg and " GB, 0.1 GB free; " in msg, msg
    for part in parts:
        assert part in msg, (part, msg)
    return msg


def test_check_memory_message_names_what_how_much_and_the_fix(little_memory, monkeypatch):
    monkeypatch.setattr(_backend, "available_memory", lambda device: int(9.8e9))
    with pytest.raises(InputError) as exc:
        _memory.check_memory(
            "dimension: kNN on 200000×4096 float64",
            14.2e9,
            "cpu",
            "pass pca=300 or use repscope.distributed.distributed_local_dimension.",
        )
    assert str(exc.value) == (
        "dimension: kNN on 200000×4096 float64 needs ~14.2 GB, 9.8 GB free; pass pca=300 or "
        "use repscope.distributed.distributed_local_dimension."
    )
    assert _memory.check_memory("small", 1e9, "cpu", "fine") == 9.8e9


def test_local_dimension_refuses_before_copying(little_memory):
    from repscope import local_dimension

    X = np.random.default_rng(0).standard_normal((20000, 512)).astype(np.float32)
    _backend.resolve_device("cpu")  # torch imported before the trace
    tracemalloc.start()
    with pytest.raises(InputError) as exc:
        local_dimension(X, k=[10, 20], pca=None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5e6  # refused before the 82 MB float64 copy
    _assert_refusal(exc, "dimension: kNN on 20000×512 float32 at K=20", "pass pca=300")
    with pytest.raises(InputError) as exc:
        local_dimension(X, k=[10, 20], pca=300)
    _assert_refusal(exc, "(PCA to 300)", "distributed_local_dimension")


def test_knn_ridge_and_spectrum_refuse(little_memory):
    from repscope import knn, spectrum
    from repscope.alignment.ridge import ridge_alignment

    rng = np.random.default_rng(0)
    X = rng.standard_normal((100000, 64)).astype(np.float32)
    with pytest.raises(InputError) as exc:
        knn(X, 20)
    _assert_refusal(exc, "knn: 100000×64 float32 at n_neighbors=20", "distributed_knn")
    with pytest.raises(InputError) as exc:
        ridge_alignment(X, X[:, :32], device="cpu")
    _assert_refusal(exc, "ridge: 100000×64 float32 to 32 targets", "fewer targets")
    with pytest.raises(InputError) as exc:
        spectrum(X)
    _assert_refusal(exc, "spectrum: singular values of 100000×64 float32", "subsample")


def test_n_by_n_methods_refuse_with_feature_space_alternatives(little_memory):
    from repscope import alignment_matrix, permutation_null, rbf_cka, rsa

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3000, 8)), rng.standard_normal((3000, 8))
    calls = {
        "rsa": lambda: rsa(X, Y),
        "rbf_cka": lambda: rbf_cka(X, Y),
        "permutation_null": lambda: permutation_null(X, Y, "cka", n_permutations=5),
        "alignment_matrix": lambda: alignment_matrix([X, Y], "rsa"),
    }
    for measure, call in calls.items():
        with pytest.raises(InputError) as exc:
            call()
        msg = _assert_refusal(exc, f"{measure}: N×N matrices of 3000 stimuli", "linear CKA")
        n_fit = int(msg.split("at most ")[1].split(" ")[0])
        assert 4 <= n_fit < 3000
    # feature-space measures need no N × N matrix: no refusal
    from repscope import linear_cka

    assert 0 <= linear_cka(X, Y) <= 1


def test_brain_alignment_refuses_naming_the_subject(little_memory):
    from repscope.alignment.brain import brain_alignment
    from repscope.io.responses import BrainResponses

    n, v = 2000, 20000
    rng = np.random.default_rng(0)
    ids = np.array([f"nsd-{i:05d}" for i in range(n)])
    subject = BrainResponses(
        subject=3,
        stimulus_ids=ids,
        responses=np.zeros((n, v), np.float32),
        n_repeats=np.full(n, 3),
        coordinates=np.zeros((v, 3), dtype=int),
        ncsnr=np.ones(v),
        roi_masks={"V1": np.ones(v, bool)},
        shared=np.zeros(n, bool),
        space="func1pt8mm",
    )
    X = rng.standard_normal((n, 256)).astype(np.float32)
    with pytest.raises(InputError) as exc:
        brain_alignment(X, ids, subject, device="cpu")
    _assert_refusal(
        exc, "brain alignment: subject 3, 2000 images × 20000 voxels from 2000×256", "fewer ROIs"
    )


def test_extraction_refuses_features_that_will_not_fit(tmp_path, monkeypatch):
    from repscope.io.extract import extract_embeddings
    from repscope.io.models import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_model("timm:convnext_atto", pretrained=False)
    images = np.zeros((12, 32, 32, 3), np.uint8)
    monkeypatch.setattr(_backend, "available_memory", lambda device: 10_000)
    with pytest.raises(InputError) as exc:
        extract_embeddings(model, images, cache_dir=tmp_path, progress=False)
    msg = str(exc.value)
    assert msg.startswith("extract: 12 stimuli × 320 float32 features needs ~0.0 GB, 0.0 GB")
    assert "fewer features" in msg and "\n" not in msg


def test_free_memory_respects_a_cgroup_limit(tmp_path, monkeypatch):
    (tmp_path / "memory.max").write_text("4000000000\n")
    (tmp_path / "memory.current").write_text("3000000000\n")
    (tmp_path / "memory.stat").write_text("anon 2500000000\ninactive_file 500000000\n")
    monkeypatch.setattr(_backend, "_cgroup_dirs", lambda: [str(tmp_path)])
    assert _backend._cgroup_available_bytes() == 1_500_000_000
    assert _backend._cpu_available_bytes() <= 1_500_000_000
    (tmp_path / "memory.max").write_text("max\n")
    assert _backend._cgroup_available_bytes() is None


# --------------------------------------------------------------------------- estimates


def test_knn_tile_stays_within_its_budget():
    """``_choose_block`` gives a tile (and the exact search's b × b float64 tile) within a
    small share of free memory, and the kNN estimate counts the n × K result arrays."""
    from repscope.neighbors import _choose_block

    cpu = _backend.resolve_device("cpu")
    for free in (0.5e9, 2e9, 8e9, 24e9, 200e9):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_backend, "available_memory", lambda device, f=free: int(f))
            b = _choose_block(10**6, cpu, None)
        assert b * min(b, 1024) * _memory._CANDIDATE_TILE_CELL <= free / 8
        assert b * b * _memory._EXACT_TILE_CELL <= free / 4
    n, k = 200_000, 1000
    small = _memory.knn_bytes(n, 8, 10)
    assert _memory.knn_bytes(n, 8, k) - small >= n * (k - 10) * 16  # result: float64 + int64


def test_estimates_grow_with_the_problem():
    base = _memory.local_dimension_bytes(20000, 512, 100, pca=300, itemsize=4)
    assert _memory.local_dimension_bytes(200_000, 512, 100, pca=300, itemsize=4) > 5 * base
    assert _memory.local_dimension_bytes(20000, 512, 100, pca=None, itemsize=4) > base / 2
    assert _memory.ridge_bytes(20000, 512, 5000) > _memory.ridge_bytes(20000, 512, 50)
    # the dual (n × n) ridge is chosen when features outnumber rows
    assert _memory.ridge_bytes(2000, 100_000, 10) > 2000 * 100_000 * 8
    assert _memory.pairwise_bytes(200_000, "rsa") > 1e12
    assert _memory.fit_pairwise_samples(_memory.pairwise_bytes(5000, "rsa"), "rsa") == 5000


def test_plan_study_memory_comes_from_the_estimators():
    from repscope.experiment.config import load_config
    from repscope.experiment.run import plan_study

    config = load_config(files("repscope.experiment") / "demo.toml")
    for n in (0, 600, 200_000):
        stages = plan_study(config, n)
        expected = _memory.study_stage_bytes(config, n)
        for stage in stages:
            if stage.kind in expected:
                assert stage.memory_bytes == expected[stage.kind]
            assert np.isfinite(stage.memory_bytes) and stage.memory_bytes >= 0
    big = {s.kind: s.memory_bytes for s in plan_study(config, 200_000)}
    small = {s.kind: s.memory_bytes for s in plan_study(config, 600)}
    for kind in ("extract", "dimension", "alignment", "brain", "brain-lid"):
        assert big[kind] > small[kind]
    # 200 000 images at the assumed width 2048 and pca=50: well within a 24 GB machine
    assert big["dimension"] < 24e9


# --------------------------------------------------------------------------- N = 200 000

_BIG = (
    _MEASURE
    + r"""
from repscope import _memory as M, local_dimension
from repscope._backend import available_memory, resolve_device
from repscope.alignment._ridge_cv import target_batch_size
from repscope.alignment.ridge import ridge_alignment
from repscope.neighbors import _resolve_precision

cpu = resolve_device("cpu")
n, d = 200_000, 64
rng = np.random.default_rng(0)
# a 5-dimensional cube embedded linearly in 64 features, slightly noisy, and 64 targets
X = rng.uniform(size=(n, 5)).astype(np.float32) @ rng.standard_normal((5, d)).astype(np.float32)
X += np.float32(1e-3) * rng.standard_normal((n, d), dtype=np.float32)
Y = X @ rng.standard_normal((d, d)).astype(np.float32)
Y += rng.standard_normal((n, d), dtype=np.float32)
out = {"baseline": status("VmRSS")}
lid = M.local_dimension_bytes(
    n, d, 20, pca=300, itemsize=4, n_scales=2,
    precision=_resolve_precision("auto", cpu), free=available_memory(cpu),
)
res = {}
out["lid"] = {"estimate": lid, **measure(lambda: res.update(lid=local_dimension(X, k=[10, 20])))}
batch = target_batch_size(n - n // 5, d, 5, 20, cpu)
ridge = M.ridge_bytes(n, d, d, x_itemsize=4, y_itemsize=4, batch_targets=batch)
fit = lambda: res.update(ridge=ridge_alignment(X, Y, device="cpu"))
out["ridge"] = {"estimate": ridge, **measure(fit)}
out["profile"] = res["lid"].profile
out["score"] = res["ridge"].score
out["process_peak"] = PEAK[0]
print(json.dumps(out))
"""
)


@pytest.mark.slow
def test_200k_points_on_24_gb_are_not_killed():
    """LID (MLE, K = 10, 20) and ridge at N = 200 000 in a child process: it exits 0, each
    stage's peak stays under the preflight's estimate, the whole process far under 24 GB."""
    if not _can_reset_peak():
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak resident set")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _BIG],
        capture_output=True,
        text=True,
        env=_child_env(),
        timeout=600,
    )
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])  # -9: OOM-killed
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for stage in ("lid", "ridge"):
        r = out[stage]
        assert r["measured"] <= r["estimate"] < 2e9, (stage, r)
    # the whole child (Python, torch, the data, each stage): far under 24 GB
    assert out["process_peak"] < 3e9, out
    assert 4.0 < out["profile"]["10"] < 6.5  # the cube's dimension, 5
    assert out["score"] > 0.5
    print(f"N=200000: {seconds:.0f} s; peaks {json.dumps(out)}")
