"""repscope against its peers, in one run, on the same data (``make bench``).

Data: ``benchmarks/data.py`` (clustered 20-d Gaussian mixture rotated into R^300, noise 0.01,
float32, seeded). Prints one table and writes it as JSON to ``benchmarks/results/latest.json``.
Timings use ``time.perf_counter``. Every tool first runs once on 2 000 points so one-time costs
(imports, thread pools) stay off the clock; a measured call under 5 s is then treated as its
own warm-up and repeated 3 times, and the minimum is reported; longer calls run once.

Usage: ``python benchmarks/run.py [--quick] [--sklearn-peak] [--no-dadapy]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from data import DESCRIPTION, gaussian_mixture  # noqa: E402

ORACLE_PYTHON = ROOT / ".venv-oracle" / "bin" / "python"
RESULTS = HERE / "results" / "latest.json"
K = 50
SCALES = (5, 10, 20, 50, 100, 200, 500, 1000)
N_MEMORY = 100_000
REPEAT_BELOW_S = 5.0
REPEATS = 3
GB = 1e9

TARGETS = {
    "speedup_vs_skdim": "≥ 4× faster than scikit-dimension MLE at N = 50 000",
    "profile_over_single": "8-scale profile ≤ 1.3× one scale (K = 1000)",
    "peak_memory": "peak memory < 1 GB at N = 100 000, D = 300, K = 50",
}


# --------------------------------------------------------------------------- timing helpers


def measure(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of one call; calls under REPEAT_BELOW_S are repeated and the minimum kept."""
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    if seconds < REPEAT_BELOW_S:
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        seconds = min(times)
    return seconds, out


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# --------------------------------------------------------------------------- the tools


def repscope_mle(X: np.ndarray, k: int | tuple[int, ...], device: str = "cpu") -> Any:
    import repscope

    return repscope.local_dimension(
        X, k=k, estimator="mle", aggregate="harmonic", pca=None, device=device
    )


def repscope_twonn(X: np.ndarray, device: str = "cpu") -> float:
    import repscope
    from repscope.dimension.local import twonn_global

    res = repscope.knn(X, 2, device=device)
    return twonn_global(res.distances, fit="linear", discard_fraction=0.1)


def skdim_mle(X: np.ndarray) -> float:
    import skdim

    # defaults = the plain Levina-Bickel (K-1)/sum log(T_K/T_j) per point (dnoise=None,
    # unbiased=False, neighborhood_based=True); comb="mle" = 1/mean(1/pointwise): harmonic mean
    return float(skdim.id.MLE().fit(X, n_neighbors=K, comb="mle").dimension_)


def faiss_knn(X: np.ndarray, k: int) -> None:
    import faiss

    index = faiss.IndexFlatL2(X.shape[1])
    index.add(X)
    index.search(X, k + 1)  # +1: the point itself comes back first


def dadapy_twonn(X: np.ndarray, maxk: int | None = None) -> dict | None:
    """DADApy's ``Data(X, maxk).compute_id_2NN()`` timed inside the oracle venv."""
    if not ORACLE_PYTHON.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "X.npy"
        np.save(path, X)
        cmd = [str(ORACLE_PYTHON), str(HERE / "dadapy_oracle.py"), "time", str(path)]
        if maxk is not None:
            cmd += ["--maxk", str(maxk)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- memory (child)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(tool: str, n: int) -> None:
    """Run in a fresh interpreter: peak RSS of one call above the RSS after imports and data.

    ``VmHWM`` (the high-water mark of this process's own memory map) is used next to
    ``ru_maxrss``: after ``exec`` the latter also keeps the parent's peak, since Linux folds the
    replaced memory map's high-water mark into it. Writing 5 to ``/proc/self/clear_refs`` resets
    ``VmHWM`` to the current RSS, so data generation's temporaries do not count.
    """
    if tool == "repscope":
        import torch  # noqa: F401

        import repscope  # noqa: F401
    else:
        from sklearn.neighbors import NearestNeighbors
    X = gaussian_mixture(n)
    base_kb = _status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    start = time.perf_counter()
    if tool == "repscope":
        repscope_mle(X, K)
    else:
        NearestNeighbors(n_neighbors=K, algorithm="brute").fit(X).kneighbors()
    seconds = time.perf_counter() - start
    out = {
        "tool": tool,
        "n": n,
        "seconds": seconds,
        "baseline_rss_bytes": base_kb * 1024,
        "peak_rss_bytes": _status_kb("VmHWM") * 1024,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_reset_after_data": reset,
    }
    print(json.dumps(out))


def memory_run(tool: str, n: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", tool, "--n", str(n)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the benchmark


class Table:
    """Rows of the report, printed as they are measured and kept for the JSON file."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, section: str, measure: str, n: int | None, **fields: Any) -> dict:
        row = {"section": section, "measure": measure, "n": n, **fields}
        self.rows.append(row)
        print(f"  {section:<13} {measure:<45} {'' if n is None else n:>7}  {_brief(row)}")
        sys.stdout.flush()
        return row


def _brief(row: dict) -> str:
    keys = ("repscope_s", "peer_s", "ratio", "value_repscope", "value_peer")
    return " ".join(f"{k}={_fmt(row[k])}" for k in keys if row.get(k) is not None)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def warm_up(with_dadapy: bool) -> None:
    X = gaussian_mixture(2000)
    repscope_mle(X, K)
    repscope_mle(X, (5, 10, 50))
    repscope_twonn(X)
    skdim_mle(X)
    faiss_knn(X, K)
    if with_dadapy:
        dadapy_twonn(X)


def bench_local_mle(table: Table, X: np.ndarray) -> None:
    n = len(X)
    t_ours, res = measure(lambda: repscope_mle(X, K))
    t_peer, peer = measure(lambda: skdim_mle(X))
    ours = float(res.profile[K])
    table.add(
        "MLE K=50",
        "local_dimension(k=50, harmonic, pca=None)",
        n,
        repscope_s=t_ours,
        peer="scikit-dimension MLE().fit(X, n_neighbors=50)",
        peer_s=t_peer,
        ratio=t_peer / t_ours,
        ratio_meaning="speed-up (peer s / repscope s)",
        value_repscope=ours,
        value_peer=peer,
        value_rel_diff=rel_diff(ours, peer),
        values_agree=rel_diff(ours, peer) <= 1e-6,
        target="speedup_vs_skdim" if n == 50_000 else None,
        target_met=(t_peer / t_ours >= 4.0) if n == 50_000 else None,
    )


def bench_twonn(table: Table, X: np.ndarray, with_dadapy: bool) -> None:
    n = len(X)
    t_ours, ours = measure(lambda: repscope_twonn(X))
    peers = [(None, "DADApy Data(X).compute_id_2NN() (default maxk=100)")]
    peers.append((2, "DADApy Data(X, maxk=2).compute_id_2NN()"))
    for maxk, label in peers:
        peer = dadapy_twonn(X, maxk) if with_dadapy else None
        table.add(
            "TwoNN global",
            "knn(k=2) + twonn_global(linear, 0.1)",
            n,
            repscope_s=t_ours,
            peer=label,
            peer_s=None if peer is None else peer["seconds"],
            ratio=None if peer is None else peer["seconds"] / t_ours,
            ratio_meaning="speed-up (peer s / repscope s)",
            value_repscope=ours,
            value_peer=None if peer is None else peer["id"],
            value_rel_diff=None if peer is None else rel_diff(ours, peer["id"]),
            note=None if peer is not None else "not run: make oracle (or --no-dadapy given)",
        )


def bench_knn(table: Table, X: np.ndarray) -> None:
    import repscope

    n = len(X)
    t_ours, _ = measure(lambda: repscope.knn(X, K, device="cpu"))
    t_peer, _ = measure(lambda: faiss_knn(X, K))
    table.add(
        "kNN K=50",
        "knn(X, 50), exact float64 distances",
        n,
        repscope_s=t_ours,
        peer="faiss-cpu IndexFlatL2 add + search(k=51)",
        peer_s=t_peer,
        ratio=t_peer / t_ours,
        ratio_meaning="speed-up (peer s / repscope s)",
    )


def bench_profile(table: Table, X: np.ndarray, device: str = "cpu") -> None:
    n = len(X)
    t_profile, res = measure(lambda: repscope_mle(X, SCALES, device))
    t_1000, _ = measure(lambda: repscope_mle(X, 1000, device))
    t_50, _ = measure(lambda: repscope_mle(X, K, device))
    section = "profile" if device == "cpu" else f"profile {device}"
    table.add(
        section,
        "local_dimension(k=(5, ..., 1000)), 8 scales",
        n,
        repscope_s=t_profile,
        peer="the same call at k=1000 only",
        peer_s=t_1000,
        ratio=t_profile / t_1000,
        ratio_meaning="slow-down (profile s / single s)",
        profile={str(k): float(v) for k, v in res.profile.items()},
        target="profile_over_single" if device == "cpu" and n >= 50_000 else None,
        target_met=(t_profile / t_1000 <= 1.3) if device == "cpu" and n >= 50_000 else None,
    )
    table.add(
        section,
        "local_dimension(k=(5, ..., 1000)), 8 scales",
        n,
        repscope_s=t_profile,
        peer="the same call at k=50 only",
        peer_s=t_50,
        ratio=t_profile / t_50,
        ratio_meaning="slow-down (profile s / single s)",
    )


def bench_memory(table: Table, sklearn_peak: bool) -> None:
    tools = ["repscope"] + (["sklearn"] if sklearn_peak else [])
    for tool in tools:
        m = memory_run(tool, N_MEMORY)
        extra = m["peak_rss_bytes"] - m["baseline_rss_bytes"]
        label = (
            "repscope local_dimension(k=50, pca=None)"
            if tool == "repscope"
            else "sklearn NearestNeighbors(50, brute).kneighbors()"
        )
        table.add(
            "memory",
            label,
            N_MEMORY,
            seconds=m["seconds"],
            peak_above_baseline_gb=extra / GB,
            peak_rss_gb=m["peak_rss_bytes"] / GB,
            baseline_rss_gb=m["baseline_rss_bytes"] / GB,
            ru_maxrss_gb=m["ru_maxrss_bytes"] / GB,
            peak_reset_after_data=m["peak_reset_after_data"],
            target="peak_memory" if tool == "repscope" else None,
            target_met=(extra < GB) if tool == "repscope" else None,
        )


def bench_cuda(table: Table, sizes: list[int]) -> None:
    import torch

    for n in sizes:
        X = gaussian_mixture(n)
        repscope_mle(X[:2000], K, "cuda")
        t_mle, res = measure(lambda X=X: repscope_mle(X, K, "cuda"))
        t_twonn, twonn = measure(lambda X=X: repscope_twonn(X, "cuda"))
        table.add(
            "cuda",
            f"local_dimension MLE K=50 / TwoNN ({torch.cuda.get_device_name()})",
            n,
            repscope_s=t_mle,
            twonn_s=t_twonn,
            value_repscope=float(res.profile[K]),
            twonn_value=twonn,
        )
    bench_profile(table, gaussian_mixture(max(sizes)), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    X = gaussian_mixture(N_MEMORY)
    t, _ = measure(lambda: repscope_mle(X, K, "cuda"))
    table.add(
        "cuda",
        "local_dimension K=50, peak GPU memory (torch allocator)",
        N_MEMORY,
        repscope_s=t,
        peak_gpu_gb=torch.cuda.max_memory_allocated() / GB,
    )


# --------------------------------------------------------------------------- report


def render(table: Table, meta: dict) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    out = RichTable(title=f"repscope benchmark — {meta['data']}", show_lines=False)
    for col in ("section", "measure", "N", "repscope s", "peer", "peer s", "ratio", "values"):
        out.add_column(col, overflow="fold")
    for row in table.rows:
        if row["section"] == "memory":
            values = (
                f"peak {row['peak_rss_gb']:.3f} GB abs, +{row['peak_above_baseline_gb']:.3f} GB "
                f"over baseline {row['baseline_rss_gb']:.3f} GB ({row['seconds']:.1f} s)"
            )
            out.add_row(row["section"], row["measure"], str(row["n"]), "", "", "", "", values)
            continue
        values = ""
        if row.get("value_repscope") is not None:
            values = f"{row['value_repscope']:.6f}"
            if row.get("value_peer") is not None:
                values += f" vs {row['value_peer']:.6f} (rel diff {row['value_rel_diff']:.1e})"
        if row.get("twonn_s") is not None:
            values += f"; TwoNN {row['twonn_s']:.3f} s = {row['twonn_value']:.4f}"
        if row.get("peak_gpu_gb") is not None:
            values = f"peak GPU {row['peak_gpu_gb']:.3f} GB"
        if row.get("note"):
            values = row["note"]
        ratio = row.get("ratio")
        out.add_row(
            row["section"],
            row["measure"],
            str(row["n"]),
            _secs(row.get("repscope_s")),
            row.get("peer") or "",
            _secs(row.get("peer_s")),
            "" if ratio is None else f"{ratio:.2f}×",
            values,
        )
    console = Console(width=200)
    console.print(out)
    console.print("Targets (issue 3):")
    for key, text in TARGETS.items():
        hits = [r for r in table.rows if r.get("target") == key]
        if not hits:
            console.print(f"  {text}: not measured in this run")
            continue
        for r in hits:
            if key == "peak_memory":
                got = (
                    f"+{r['peak_above_baseline_gb']:.3f} GB over baseline "
                    f"(absolute peak {r['peak_rss_gb']:.3f} GB)"
                )
            elif key == "speedup_vs_skdim":
                got = f"{r['ratio']:.2f}× faster"
            else:
                got = f"{r['ratio']:.2f}×"
            console.print(f"  {text}: measured {got} → {'MET' if r['target_met'] else 'NOT MET'}")
    console.print(f"Wrote {RESULTS.relative_to(ROOT)}")


def _secs(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def metadata(args: argparse.Namespace) -> dict:
    import faiss
    import scipy
    import skdim
    import sklearn
    import torch

    import repscope

    return {
        "data": DESCRIPTION,
        "k": K,
        "scales": list(SCALES),
        "quick": args.quick,
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "versions": {
            "repscope": repscope.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "scikit-dimension": getattr(skdim, "__version__", "0.5.0"),
            "faiss": faiss.__version__,
            "torch": torch.__version__,
            "dadapy": "0.3.4 in .venv-oracle" if ORACLE_PYTHON.exists() else None,
        },
        "timing": (
            f"perf_counter; warm-up on 2000 points per tool; calls < {REPEAT_BELOW_S} s "
            f"repeated {REPEATS}× after one discarded run, minimum reported"
        ),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="repscope vs peers on the same data")
    parser.add_argument("--quick", action="store_true", help="N = 10 000 only, no memory run")
    parser.add_argument(
        "--sklearn-peak",
        action="store_true",
        help="also measure scikit-learn brute kNN's peak memory at N = 100 000 (~75 s more)",
    )
    parser.add_argument("--no-dadapy", action="store_true", help="skip DADApy (oracle venv)")
    parser.add_argument("--memory-child", choices=["repscope", "sklearn"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=N_MEMORY, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.n)
        return

    import torch

    with_dadapy = not args.no_dadapy and ORACLE_PYTHON.exists()
    if not args.no_dadapy and not with_dadapy:
        print("DADApy rows skipped: .venv-oracle missing, run `make oracle`.")
    sizes = [10_000] if args.quick else [10_000, 50_000]
    meta = metadata(args)
    table = Table()
    print(f"Data: {DESCRIPTION}")
    print("Warming up every tool on 2 000 points ...")
    warm_up(with_dadapy)
    if not args.quick:
        # first, while this process is still small
        bench_memory(table, args.sklearn_peak)
    for n in sizes:
        X = gaussian_mixture(n)
        bench_local_mle(table, X)
        bench_twonn(table, X, with_dadapy)
        bench_knn(table, X)
    bench_profile(table, X)
    if torch.cuda.is_available():
        bench_cuda(table, sizes)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    RESULTS.write_text(json.dumps({"meta": meta, "targets": TARGETS, "rows": table.rows}, indent=1))
    render(table, meta)


if __name__ == "__main__":
    main()
