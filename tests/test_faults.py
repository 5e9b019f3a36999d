"""Faults a long study survives: a worker killed mid-task, the whole run SIGKILLed during
extraction and during analysis, damaged cache files, a full disk.

Each test compares the tables a faulted run ends with against those of one clean run of the
same config, byte for byte (Parquet files), and checks that nothing half-written is left where
a reader would take it for a result.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from repscope.experiment.config import load_config
from repscope.experiment.run import TABLES, run_study
from repscope.io.atomic import TEMP_PREFIX, sha256_file
from test_experiment_run import CONFIG

pytestmark = pytest.mark.slow

#: The tiny study plus one real network, so that extraction takes long enough to be killed in:
#: MobileNetV2 (offline torchvision weights) in batches of 8, each saved as it finishes.
FAULT_CONFIG = CONFIG.replace(
    "[models]\nspecs = [", '[models]\nspecs = ["torchvision:mobilenet_v2.IMAGENET1K_V1", '
).replace("[stimuli]", "[embedding]\nbatch_size = 8\n\n[stimuli]")
REPSCOPE = str(Path(sys.executable).with_name("repscope"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}


def _table_bytes(output: Path) -> dict[str, bytes]:
    return {name: (output / f"{name}.parquet").read_bytes() for name in TABLES}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One clean in-process run: its config file, cache, output and table bytes."""
    folder = tmp_path_factory.mktemp("reference")
    config_path = folder / "study.toml"
    config_path.write_text(FAULT_CONFIG)
    result = run_study(load_config(config_path), progress=False, cache_dir=folder / "cache")
    return {
        "config": config_path,
        "cache": folder / "cache",
        "output": result.output,
        "tables": _table_bytes(result.output),
    }


def _start(config: Path, output: Path, cache: Path) -> subprocess.Popen:
    command = ["run", str(config), "--output", str(output), "--cache-dir", str(cache)]
    return subprocess.Popen(
        [REPSCOPE, *command, "--no-progress"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 300) -> None:
    """SIGKILL ``proc`` as soon as ``condition()`` holds; fail if it finished first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if condition():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"


def _finish(config: Path, output: Path, cache: Path) -> None:
    proc = _start(config, output, cache)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]


def _assert_cache_intact(cache: Path) -> None:
    """Every entry that claims to be complete has the content its meta.json hashed."""
    for meta in cache.glob("embeddings/*/*/meta.json"):
        recorded = json.loads(meta.read_text())["sha256"]
        assert sha256_file(meta.parent / "embedding.npz") == recorded, meta.parent.name


def _assert_no_result_left(output: Path) -> None:
    """No final table, report or run.json: a killed run never looks finished."""
    for name in (*(f"{t}.parquet" for t in TABLES), "report.html", "run.json"):
        assert not (output / name).exists(), name


def _assert_parts_intact(output: Path) -> None:
    """Every part with a sidecar matches it (a part without one is computed again)."""
    for part in (output / "parts").glob("*.parquet"):
        sidecar = part.with_name(part.name + ".sha256")
        if sidecar.exists():
            assert sha256_file(part) == sidecar.read_text().strip(), part.name


def test_sigkill_during_extraction_then_resume(reference, tmp_path: Path) -> None:
    cache, output = tmp_path / "cache", tmp_path / "out"
    proc = _start(reference["config"], output, cache)
    _kill_when(proc, lambda: any(cache.glob("embeddings/*/*/partial/rows-*.npz")))
    _assert_cache_intact(cache)
    _assert_no_result_left(output)
    _finish(reference["config"], output, cache)
    _assert_cache_intact(cache)
    assert not list(cache.glob("embeddings/*/*/partial"))  # finished batches were folded in
    assert _table_bytes(output) == reference["tables"]


def test_sigkill_during_analysis_then_resume(reference, tmp_path: Path) -> None:
    cache, output = tmp_path / "cache", tmp_path / "out"
    shutil.copytree(reference["cache"], cache)
    proc = _start(reference["config"], output, cache)
    _kill_when(proc, lambda: any((output / "parts").glob("alignment-*.parquet.sha256")))
    _assert_no_result_left(output)
    _assert_parts_intact(output)
    finished_parts = len(list((output / "parts").glob("*.sha256")))
    assert finished_parts > 0
    _finish(reference["config"], output, cache)
    run = json.loads((output / "run.json").read_text())
    assert run["stages_reused"] >= finished_parts  # resumed, not restarted
    assert _table_bytes(output) == reference["tables"]


def test_damaged_cache_files_are_detected_and_recomputed(reference, tmp_path: Path) -> None:
    """A truncated and a bit-flipped embedding and truncated mini-zoo weights, in a copy of the
    cache, rerun in the reference's own output folder (its stimulus file is what the cache keys
    name) with its parts removed: the damage is found by hash, recomputed, same tables."""
    cache, output = tmp_path / "cache", reference["output"]
    shutil.copytree(reference["cache"], cache)
    entries = [
        meta.parent / "embedding.npz"
        for meta in sorted(cache.glob("embeddings/*/*/meta.json"))
        if json.loads(meta.read_text())["key"]["model"].startswith("minizoo:")
    ]
    truncated, flipped = entries[0], entries[1]
    truncated.write_bytes(truncated.read_bytes()[:100])
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    weights = sorted(cache.glob("minizoo/*/weights.pt"))[0]
    weights.write_bytes(weights.read_bytes()[:-10])
    shutil.rmtree(output / "parts")
    _finish(reference["config"], output, cache)
    _assert_cache_intact(cache)
    assert truncated.is_file() and flipped.is_file()  # recomputed under the same keys
    assert _table_bytes(output) == reference["tables"]


def test_worker_killed_mid_task_is_retried(reference, tmp_path: Path) -> None:
    """A LocalCluster worker SIGKILLed while it extracts: its task reruns on a restarted
    worker and the tables are those of the clean serial run."""
    from repscope.experiment.executor import dask_executor

    cache, output = tmp_path / "cache", tmp_path / "out"
    config = load_config(reference["config"])
    config = config.model_copy(update={"study": config.study.model_copy(update={"output": output})})
    executor = dask_executor(workers=2)
    client = executor.client
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy and any(cache.glob("embeddings/*/*/partial/rows-*.npz")):
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_a_busy_worker, daemon=True)
    try:
        watcher.start()
        result = run_study(config, progress=False, cache_dir=cache, executor=executor)
        watcher.join()
        after = set(client.run(os.getpid).values())
    finally:
        executor.close()
    assert killed and killed[0] not in after  # a worker died and the nanny replaced it
    assert result.stages_reused == 0
    _assert_cache_intact(cache)
    assert _table_bytes(output) == reference["tables"]


def _unshare_available() -> bool:
    probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
    return shutil.which("unshare") is not None and subprocess.run(probe).returncode == 0


_FULL_DISK_SCRIPT = r"""
import json, subprocess, sys
from pathlib import Path
repscope, config, mount, cache = sys.argv[1:5]
out = Path(mount) / "out"
proc = subprocess.run([repscope, "run", config, "--output", str(out), "--cache-dir", cache,
                       "--no-progress"], capture_output=True, text=True)
files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
print(json.dumps({"rc": proc.returncode, "stderr": proc.stderr, "files": files}))
"""


@pytest.mark.parametrize("size_kb", [256, 7168])
def test_full_disk_is_one_line_and_leaves_no_result(reference, tmp_path: Path, size_kb) -> None:
    """The output on a tmpfs of 256 KB (full while the 5.8 MB simulated NSD tree is written) or
    7 MB (full while the figures are written, after the parts and tables): exit 2, one error
    line naming the disk and the fix, no temporary file, no final table."""
    if not _unshare_available():
        reason = "needs unshare (user and mount namespaces) to mount a small tmpfs"
        if os.environ.get("REPSCOPE_REQUIRE_TMPFS"):  # set by .ci/run: CI must run this test
            pytest.fail(f"REPSCOPE_REQUIRE_TMPFS is set but the test {reason}")
        pytest.skip(reason)
    mount = tmp_path / "small"
    mount.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(_FULL_DISK_SCRIPT)
    shell = (
        f"mount -t tmpfs -o size={size_kb}k tmpfs {mount} && {sys.executable} {script} "
        f"{REPSCOPE} {reference['config']} {mount} {reference['cache']}"
    )
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", shell],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    lines = seen["stderr"].strip().splitlines()
    assert seen["rc"] == 2, seen["stderr"][-2000:]
    assert len([ln for ln in lines if ln.startswith("error:")]) == 1
    assert "Traceback" not in seen["stderr"]
    assert "no space left on the disk holding" in lines[-1] and "larger disk" in lines[-1]
    assert not [f for f in seen["files"] if Path(f).name.startswith(TEMP_PREFIX)]
    finals = {f"{t}.parquet" for t in TABLES} | {"report.html", "run.json"}
    assert not finals & set(seen["files"])
