"""Provenance shared by every cached result: which library versions produced it."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["library_versions"]


def library_versions(*packages: str) -> dict[str, str]:
    """Python's and each installed distribution's version (``"unknown"`` when absent).

    Parameters
    ----------
    *packages : str
        Distribution names, e.g. ``"torch"``, ``"open_clip_torch"``; repscope is always added.
    """
    found = {"python": platform.python_version()}
    for name in ("repscope", *packages):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found
