"""NSD loader: wall time and peak memory of ``load_nsd`` on a full-size synthetic subject.

Data: one subject written with :mod:`repscope.io.nsd_layout`'s writers in NSD's formats:
10 000 images × 3 repeats = 30 000 trials in 40 sessions of 750 (``betas_sessionNN.nii.gz``,
int16, gzip level 1; with ``--hdf5`` also ``betas_sessionNN.hdf5``), a 36×44×36 volume
(57 024 voxels) whose ~30 000-voxel brain holds a compact 10 000-voxel ``nsdgeneral`` ROI,
and ``nsd_expdesign.mat`` with NSD's 1-based index arrays. Betas are Gaussian noise × 300 (as
incompressible as real betas); non-brain voxels are 0. ``--quick``: 1 000 images, 4 sessions.

Compared in separate child processes, each after its imports:

* **load_nsd**: ``load_nsd(root, 1, ["nsdgeneral"], fmt=...)``: one session at a time, only the
  ROI's bounding box read, float32 accumulators;
* **naive**: what a notebook does: every session's whole volume read (``np.asanyarray(
  img.dataobj)``) and kept, then the ROI voxels z-scored per session into a float64
  trials × voxels matrix and averaged per image (its result is checked against load_nsd's).

Memory: the child's ``VmHWM`` (kernel high-water mark of resident memory, from
``/proc/self/status``), reset to the current RSS after imports by writing 5 to
``/proc/self/clear_refs``; the increase over that baseline is what the loader costs.
Usage: ``python benchmarks/nsd_loader.py [--quick] [--hdf5] [--root DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (36, 44, 36)
ROI_VOXELS = 10_000
TRIALS_PER_SESSION = 750
FULL = {"n_images": 10_000, "n_sessions": 40}
QUICK = {"n_images": 1_000, "n_sessions": 4}


def write_subject(root: Path, n_images: int, n_sessions: int, hdf5: bool, seed: int = 0) -> None:
    """Write subject 1's design, ROI, ncsnr and session betas (skipped if already complete)."""
    from repscope.io.nsd_layout import (
        NsdLayout,
        write_betas_session,
        write_ctab,
        write_expdesign,
        write_volume,
    )

    layout = NsdLayout(root)
    rng = np.random.default_rng(seed)
    columns = rng.permutation(np.repeat(np.arange(n_images), 3))
    assert columns.size == n_sessions * TRIALS_PER_SESSION
    subjectim = rng.choice(73_000, (1, n_images), replace=False)
    write_expdesign(layout.expdesign, columns + 1, subjectim + 1, subjectim[0, :1000] + 1)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij"))
    brain = (grid**2).sum(axis=0) <= 1.0
    # the ROI: the brain voxels nearest a posterior point, a compact blob like nsdgeneral
    distance = np.where(
        brain, ((grid - np.array([0.0, -0.6, 0.0])[:, None, None, None]) ** 2).sum(0), np.inf
    )
    roi = np.zeros(SHAPE, dtype=bool)
    roi.flat[np.argsort(distance, axis=None)[:ROI_VOXELS]] = True
    labels = np.where(brain, roi.astype(np.int16), np.int16(-1))
    write_volume(layout.roi_volume(1, "nsdgeneral"), labels)
    write_ctab(layout.ctab(1, "nsdgeneral"), {1: "nsdgeneral"})
    write_volume(layout.ncsnr(1), rng.uniform(0, 1, SHAPE).astype(np.float32))
    suffixes = (".nii.gz", ".hdf5") if hdf5 else (".nii.gz",)
    for session in range(1, n_sessions + 1):
        paths = [layout.betas_session(1, session, suffix=s) for s in suffixes]
        if all(p.is_file() for p in paths):
            continue
        noise = rng.standard_normal((*SHAPE, TRIALS_PER_SESSION), dtype=np.float32)
        offset = rng.normal(0, 2, SHAPE).astype(np.float32)[..., None]
        betas = np.where(brain[..., None], (offset + noise) * 300, 0).astype(np.int16)
        del noise
        for path in paths:
            write_betas_session(path, betas)
        print(f"  wrote session {session}/{n_sessions}", file=sys.stderr, end="\r")


def naive_load(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """All sessions' whole volumes in memory, then mask, z-score, average: (ids, responses)."""
    import nibabel as nib
    from scipy.io import loadmat

    from repscope.io.nsd_layout import NsdLayout

    layout = NsdLayout(root)
    design = loadmat(layout.expdesign)
    subjectim = design["subjectim"].astype(np.int64)
    trial_ids = subjectim[0, design["masterordering"][0].astype(np.int64) - 1] - 1
    roi = np.asanyarray(nib.load(layout.roi_volume(1, "nsdgeneral")).dataobj) == 1
    paths = sorted(layout.betas_dir(1).glob("betas_session*.nii.gz"))
    sessions = [np.asanyarray(nib.load(p).dataobj) for p in paths]  # every session at once
    blocks = []
    for data in sessions:
        psc = data[roi].T / 300.0  # (trials, voxels) float64
        sd = psc.std(axis=0)
        blocks.append((psc - psc.mean(axis=0)) / np.where(sd > 0, sd, 1.0))
    trials = np.concatenate(blocks)
    ids = trial_ids[: trials.shape[0]]
    unique, rows = np.unique(ids, return_inverse=True)
    sums = np.zeros((unique.size, trials.shape[1]))
    np.add.at(sums, rows, trials)
    return unique, sums / np.bincount(rows)[:, None]


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(mode: str, root: Path) -> None:
    """Run one loader after imports; print JSON with seconds and memory."""
    import h5py  # noqa: F401
    import nibabel  # noqa: F401
    import scipy.io  # noqa: F401

    from repscope.io.nsd import load_nsd

    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    baseline = _status_kb("VmRSS")
    start = time.perf_counter()
    if mode == "naive":
        ids, responses = naive_load(root)
    else:
        data = load_nsd(root, 1, ["nsdgeneral"], fmt=mode)
        ids, responses = data.nsd_ids, data.responses
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    np.save(root / f"result_{mode}.npy", responses)
    out = {
        "mode": mode,
        "seconds": seconds,
        "baseline_mb": baseline / 1024,
        "peak_increase_mb": (peak - baseline) / 1024,
        "result_mb": responses.nbytes / 2**20,
        "shape": list(responses.shape),
        "ids_head": [int(i) for i in ids[:3]],
    }
    print(json.dumps(out))


def run_child(mode: str, root: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--root", str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 000 images, 4 sessions")
    parser.add_argument("--hdf5", action="store_true", help="also write and time .hdf5 sessions")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive loader")
    parser.add_argument("--root", type=Path, help="keep (and reuse) the synthetic tree here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.root)
        return
    size = QUICK if args.quick else FULL
    keep = contextlib.nullcontext(str(args.root)) if args.root else tempfile.TemporaryDirectory()
    with keep as folder:
        root = Path(folder)
        start = time.perf_counter()
        write_subject(root, size["n_images"], size["n_sessions"], args.hdf5)
        print(f"tree written/checked in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        modes = ["nifti", *(["hdf5"] if args.hdf5 else []), *([] if args.no_naive else ["naive"])]
        rows = [run_child(mode, root) for mode in modes]
        results = {m: np.load(root / f"result_{m}.npy") for m in modes}
    for mode in modes[1:]:
        np.testing.assert_allclose(results[mode], results["nifti"], rtol=1e-4, atol=1e-4)
    n_trials = size["n_sessions"] * TRIALS_PER_SESSION
    print(
        f"NSD loader, 1 subject: {size['n_images']} images, {n_trials} trials in "
        f"{size['n_sessions']} sessions, volume {SHAPE}, ROI {ROI_VOXELS} voxels"
    )
    print(f"{'loader':10s} {'seconds':>8s} {'s/session':>10s} {'peak +MB':>9s} {'result MB':>10s}")
    for r in rows:
        print(
            f"{r['mode']:10s} {r['seconds']:8.1f} {r['seconds'] / size['n_sessions']:10.2f} "
            f"{r['peak_increase_mb']:9.0f} {r['result_mb']:10.0f}"
        )
    session_mb = np.prod(SHAPE) * TRIALS_PER_SESSION * 2 / 2**20
    print(
        f"(one whole session: {session_mb:.0f} MB int16; peak = VmHWM over the RSS after imports)"
    )
    out = Path(__file__).resolve().parent / "results" / "nsd_loader.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"size": size, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
