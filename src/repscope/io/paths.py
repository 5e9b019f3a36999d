"""Where repscope writes: the cache root (``$REPSCOPE_CACHE``, else ``$XDG_CACHE_HOME/repscope``)
and names inside an output folder that cannot climb out of it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir", "inside"]


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


def inside(root: str | os.PathLike[str], *names: str) -> Path:
    """``root`` joined with ``names``, refused when a name could lead outside ``root``.

    Names built from user input (model specs, ROI names, figure titles) must stay in the
    output folder: an absolute name, a ``..`` component or a NUL byte is an error.

    Parameters
    ----------
    root : path-like
        The folder every written file must stay in.
    *names : str
        Relative path components.

    Raises
    ------
    InputError
        A name is absolute, contains ``..`` or a NUL byte.
    """
    from repscope._validation import InputError

    for name in names:
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or "\0" in name:
            raise InputError(
                f"refusing to write {name!r}: it would leave the output folder {root}; "
                "use a plain relative name."
            )
    return Path(root).joinpath(*names)
