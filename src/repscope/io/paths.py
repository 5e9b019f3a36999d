"""Where repscope keeps its cache: ``$REPSCOPE_CACHE``, else ``$XDG_CACHE_HOME/repscope``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir"]


def default_cache_dir() -> Path:
    """The cache root used when no ``cache_dir`` is passed.

    Returns
    -------
    Path
        ``$REPSCOPE_CACHE`` if set, else ``$XDG_CACHE_HOME/repscope``, else
        ``~/.cache/repscope``. Not created here; writers create what they need.
    """
    explicit = os.environ.get("REPSCOPE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "repscope"
