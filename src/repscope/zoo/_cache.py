"""The cache entries both zoos write: a weights file, then a JSON sidecar that marks it complete.

An entry is ``cache_dir / ZOO / NAME / {weights file, sidecar}``. The sidecar is written last
(atomically), so its presence means the weights are complete; it records their sha256, which
is checked before they are used.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from repscope.io.atomic import sha256_file
from repscope.io.paths import default_cache_dir

__all__ = ["cache_root", "read_sidecar", "weights_intact"]

logger = logging.getLogger(__name__)


def cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    """``cache_dir`` expanded, or :func:`repscope.io.paths.default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def read_sidecar(
    path: Path, *, version: int, keys: Collection[str], what: str
) -> dict[str, Any] | None:
    """The parsed sidecar at ``path``, or None if missing, unreadable, of another format or
    lacking one of ``keys`` (or the weights' sha256); ``what`` names the zoo in log lines."""
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("%s: unreadable sidecar %s (%s)", what, path, exc)
        return None
    if not isinstance(sidecar, dict) or sidecar.get("format") != version:
        return None
    if not set(keys) <= sidecar.keys() or "sha256" not in sidecar["weights"]:
        logger.warning("%s: incomplete sidecar %s", what, path)
        return None
    return sidecar


def weights_intact(weights: Path, sidecar: dict[str, Any]) -> bool:
    """Whether ``weights`` exists and hashes to the sha256 its sidecar recorded."""
    return weights.is_file() and sha256_file(weights) == sidecar["weights"]["sha256"]
