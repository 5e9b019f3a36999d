"""The only module that imports torch: device choice, dtypes and memory budgets.

The public API takes and returns NumPy arrays; kernels (the kNN engine, later ridge) get
tensors and devices from here. torch is imported lazily so ``import repscope`` stays fast.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from repscope._validation import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

Device = Literal["auto", "cpu", "cuda"] | str

__all__ = ["Device", "available_memory", "resolve_device", "to_numpy", "to_tensor", "torch"]


def _torch() -> Any:
    import torch

    return torch


def resolve_device(device: Device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks the first CUDA device when one is present, else the CPU.
    """
    torch = _torch()
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise InputError(
                f"device={device!r} is not understood; pass 'auto', 'cpu' or 'cuda'."
            ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was asked for but no CUDA device is visible; pass 'cpu'.")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device={device!r} is not supported; pass 'auto', 'cpu' or 'cuda'.")
    return dev


def to_tensor(X: np.ndarray, device: torch.device, dtype: Any = None) -> torch.Tensor:
    """Copy a NumPy array to ``device`` (zero-copy on the CPU when dtypes match)."""
    torch = _torch()
    t = torch.from_numpy(np.ascontiguousarray(X))
    return t.to(device=device, dtype=dtype or t.dtype)


def to_numpy(t: Any) -> np.ndarray:
    """Return a CPU NumPy array from a tensor (detached) or anything array-like."""
    if hasattr(t, "detach"):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def _cpu_available_bytes() -> int:
    """MemAvailable, or less when a cgroup (container, batch job) limits this process."""
    free = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if free is None:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limited = _cgroup_available_bytes()
    return free if limited is None else min(free, limited)


# (limit, usage, stat key of reclaimable page cache) for cgroup v2 and v1
_CGROUP_FILES = (
    ("memory.max", "memory.current", "inactive_file"),
    ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
)


def _cgroup_dirs() -> list[str]:
    """This process's memory cgroup folders: the mount root and its own path below it."""
    dirs = []
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/memory"):
        dirs.append(root)
        try:
            with open("/proc/self/cgroup") as fh:
                for line in fh:
                    _, controllers, path = line.rstrip("\n").split(":", 2)
                    if path not in ("", "/") and (controllers in ("", "memory")):
                        dirs.append(root + path)
        except (OSError, ValueError):
            pass
    return dirs


def _cgroup_available_bytes() -> int | None:
    """Bytes left under the tightest cgroup memory limit (reclaimable cache counted as
    free), or None when no limit applies."""
    best = None
    for folder in _cgroup_dirs():
        for limit_name, usage_name, inactive_key in _CGROUP_FILES:
            try:
                with open(os.path.join(folder, limit_name)) as fh:
                    text = fh.read().strip()
                if text == "max" or int(text) >= 1 << 60:
                    continue
                with open(os.path.join(folder, usage_name)) as fh:
                    usage = int(fh.read().strip())
                inactive = 0
                with open(os.path.join(folder, "memory.stat")) as fh:
                    for line in fh:
                        key, _, value = line.partition(" ")
                        if key == inactive_key:
                            inactive = int(value)
                            break
            except (OSError, ValueError):
                continue
            left = max(0, int(text) - usage + inactive)
            best = left if best is None else min(best, left)
    return best


def available_memory(device: torch.device) -> int:
    """Bytes that a kernel may use now on ``device`` (free memory, before any safety factor)."""
    torch = _torch()
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return _cpu_available_bytes()


def __getattr__(name: str) -> Any:
    if name == "torch":
        return _torch()
    raise AttributeError(name)
