"""The paper's model zoo as a table: timm specs, sizes, training data and published top-1.

The shipped table ``repscope/zoo/data/paper_zoo.csv`` lists the ConvNeXt zoo of METHOD.md §1
(atto…xxlarge; ImageNet-1K, ImageNet-22K, ImageNet-12K and LAION/CLIP training) and the
cross-check families (ResNet, ResMLP, MAE ViT). Every ``imagenet_top1`` is copied from a
published table named in ``top1_source``; a model without a published number or without an
ImageNet-1K classifier has an empty top-1, never an invented one. ``params_m`` is what
:func:`count_parameters` computes from the architecture, rounded to 0.01 M.

Columns
-------
spec : str
    ``"timm:<architecture>.<pretrained tag>"``, the key rows are merged on.
architecture, family, size : str
    timm architecture; family (convnext, resnet, resmlp, vit); size label (atto…xxlarge,
    ResNet depth, ResMLP depth, ViT base/large/huge).
params_m : float
    Parameters in millions, with the tag's classifier (21 841 classes for ImageNet-22K heads,
    none for MAE encoders).
pretrain_data : str
    Largest training set the weights saw (e.g. ``ImageNet-22K``, ``LAION-2B``).
pretrain_images : float
    Images in ``pretrain_data``; ``pretrain_images_approx`` marks rounded counts.
finetune_data : str
    Later supervised stages, ``→``-separated; empty if none.
resolution : int
    Training input side length of the tag (timm's pretrained config ``input_size``).
imagenet_top1 : float
    Published ImageNet-1K validation top-1 (%), evaluated at ``top1_resolution``.
top1_source : str
    Where ``imagenet_top1`` comes from, ``"unsourced"``, or ``"none: ..."`` when the model has
    no ImageNet-1K classifier.

The shipped table also has ``pretrain_images_approx`` (bool), ``supervision`` (supervised,
clip, mae, ...), ``top1_resolution`` (evaluation side length of the published top-1; timm
evaluates many models above their training resolution) and ``notes``.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path
from typing import Any

from repscope._validation import InputError

__all__ = ["REQUIRED_COLUMNS", "count_parameters", "load_zoo_table"]

REQUIRED_COLUMNS = (
    "spec",
    "architecture",
    "family",
    "size",
    "params_m",
    "pretrain_data",
    "pretrain_images",
    "finetune_data",
    "resolution",
    "imagenet_top1",
    "top1_source",
)
_TEXT_COLUMNS = (
    "spec",
    "architecture",
    "family",
    "size",
    "pretrain_data",
    "finetune_data",
    "top1_source",
)
_NUMERIC_COLUMNS = ("params_m", "pretrain_images", "resolution", "imagenet_top1")
_OPTIONAL_NUMERIC = ("top1_resolution",)
_TABLE = "paper_zoo.csv"


def load_zoo_table(extra: str | os.PathLike[str] | Any | None = None) -> Any:
    """The paper's zoo table, optionally extended or overridden by a user table.

    Parameters
    ----------
    extra : path-like or pandas.DataFrame, optional
        A CSV (or DataFrame) with at least :data:`REQUIRED_COLUMNS`. Its rows replace shipped
        rows with the same ``spec`` (in place) and new specs are appended; extra columns are
        kept. An empty ``top1_source`` next to a top-1 value is recorded as coming from the
        user table.

    Returns
    -------
    pandas.DataFrame
        One row per model, numeric columns as float (empty cells NaN), text columns as str.

    Raises
    ------
    InputError
        Missing file or column, empty or duplicated spec, non-numeric value in a numeric column.

    Examples
    --------
    >>> table = load_zoo_table()
    >>> ref = "timm:convnext_large_mlp.clip_laion2b_soup_ft_in12k_in1k_384"
    >>> float(table.set_index("spec").loc[ref, "imagenet_top1"])
    88.306
    """
    import pandas as pd

    shipped = resources.files("repscope.zoo").joinpath("data", _TABLE)
    with resources.as_file(shipped) as path:
        base = _read_table(path, f"the shipped {_TABLE}")
    if extra is None:
        return base
    if isinstance(extra, pd.DataFrame):
        user = _check_table(extra.copy(), "the extra DataFrame")
    else:
        user = _read_table(Path(extra), str(extra))
    return _merge(base, user)


def _read_table(path: Path, name: str) -> Any:
    import pandas as pd

    if not path.is_file():
        raise InputError(
            f"zoo table {name} does not exist; pass the path of a CSV with columns "
            f"{', '.join(REQUIRED_COLUMNS)}."
        )
    try:
        frame = pd.read_csv(path, dtype={c: "string" for c in _TEXT_COLUMNS})
    except (ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"zoo table {name} could not be read as CSV ({first}).") from None
    return _check_table(frame, name)


def _check_table(frame: Any, name: str) -> Any:
    """Validate columns and values; return the table with clean dtypes."""
    import pandas as pd

    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        plural = len(missing) > 1
        raise InputError(
            f"zoo table {name} lacks column{'s' if plural else ''} {', '.join(missing)}; "
            f"add {'them' if plural else 'it'} (required: {', '.join(REQUIRED_COLUMNS)})."
        )
    frame = _clean_text(frame)
    empty = frame.index[frame["spec"] == ""]
    if len(empty):
        raise InputError(
            f"zoo table {name} has an empty spec in row {int(empty[0]) + 1}; "
            "give every row a spec such as timm:convnext_tiny.fb_in1k."
        )
    duplicated = frame["spec"][frame["spec"].duplicated()]
    if len(duplicated):
        raise InputError(
            f"zoo table {name} lists spec {duplicated.iloc[0]} twice; keep one row per spec."
        )
    for column in (*_NUMERIC_COLUMNS, *(c for c in _OPTIONAL_NUMERIC if c in frame.columns)):
        values = pd.to_numeric(frame[column], errors="coerce").astype(float)
        bad = values.isna() & frame[column].notna() & (frame[column].astype(str).str.strip() != "")
        if bad.any():
            row = frame.loc[bad].iloc[0]
            raise InputError(
                f"zoo table {name}: {column}={row[column]!r} for {row['spec']} is not a number; "
                "write a number or leave the cell empty."
            )
        frame[column] = values
    unsourced = frame["imagenet_top1"].notna() & (frame["top1_source"] == "")
    frame.loc[unsourced, "top1_source"] = f"user table {name}"
    return frame.reset_index(drop=True)


def _clean_text(frame: Any) -> Any:
    """Text columns (the required ones and every non-numeric extra) as stripped str, NaN -> ""."""
    import pandas as pd

    for column in frame.columns:
        values = frame[column]
        textual = not pd.api.types.is_numeric_dtype(values) and all(
            isinstance(v, str) for v in values.dropna()
        )
        if column in _TEXT_COLUMNS or textual:
            frame[column] = frame[column].astype("string").fillna("").str.strip().astype(object)
    return frame


def _merge(base: Any, user: Any) -> Any:
    """Rows of ``user`` replace rows of ``base`` with the same spec in place; new ones appended."""
    import pandas as pd

    order = {spec: i for i, spec in enumerate(pd.unique(pd.concat([base.spec, user.spec])))}
    merged = pd.concat([base, user], ignore_index=True).drop_duplicates("spec", keep="last")
    merged = merged.sort_values("spec", key=lambda s: s.map(order), kind="stable")
    return _clean_text(merged.reset_index(drop=True))


def count_parameters(spec: str) -> int:
    """Parameters of a zoo model, from its architecture alone: no weights, no memory.

    The model is built on PyTorch's ``meta`` device, where tensors have shapes but no storage,
    with the tag's pretrained config (so its classifier size), and never downloads anything.

    Parameters
    ----------
    spec : str
        ``"timm:<architecture>[.<tag>]"`` or ``"minizoo:<name>"``.

    Returns
    -------
    int
        Number of parameters, classifier included.

    Raises
    ------
    InputError
        Unknown source, architecture or tag (near matches listed), or timm not installed.

    Examples
    --------
    >>> count_parameters("timm:resnet50.tv_in1k")
    25557032
    """
    source, sep, name = str(spec).partition(":")
    if not sep or not name:
        raise InputError(
            f"spec {spec!r} has no source prefix; pass e.g. 'timm:convnext_tiny.fb_in1k' "
            "or 'minizoo:cnn-w16-d2-n4000'."
        )
    if source == "timm":
        return _count_timm(name)
    if source == "minizoo":
        return _count_minizoo(name)
    raise InputError(
        f"spec {spec!r} has source {source!r}; count_parameters knows 'timm' and 'minizoo'."
    )


def _count_timm(name: str) -> int:
    try:
        import timm
    except ImportError:
        raise InputError(
            'counting timm parameters needs timm; run pip install "timm==1.0.31".'
        ) from None
    _check_timm_name(timm, name)
    return _count_timm_shape(*_shape_key(timm, name))


def _shape_key(timm: Any, name: str) -> tuple[Any, ...]:
    """The build arguments a pretrained tag sets, as timm's builder derives them from its cfg.

    Tags that agree on these (e.g. ``fb_in1k`` and ``fb_in22k_ft_in1k``) build the same shapes,
    so one meta build serves them all.
    """
    cfg = timm.models.get_pretrained_cfg(name)
    cfg = {} if cfg is None else cfg.to_dict()
    input_size = cfg.get("input_size")
    num_classes = cfg.get("num_classes")
    img_size = tuple(input_size[-2:]) if input_size and cfg.get("fixed_input_size") else None
    return (
        name.partition(".")[0],
        num_classes if num_classes is not None and num_classes >= 0 else None,
        cfg.get("global_pool"),
        input_size[0] if input_size else None,
        img_size,
    )


@functools.lru_cache(maxsize=256)
def _count_timm_shape(
    architecture: str,
    num_classes: int | None,
    global_pool: str | None,
    in_chans: int | None,
    img_size: tuple[int, int] | None,
) -> int:
    import timm
    import torch

    given = {"num_classes": num_classes, "global_pool": global_pool, "in_chans": in_chans}
    kwargs = {k: v for k, v in given.items() if v is not None}
    if img_size is not None:
        kwargs["img_size"] = img_size
    # on the meta device tensors have shapes but no storage: no memory, no weights
    with torch.device("meta"):
        model = timm.create_model(architecture, pretrained=False, **kwargs)
    return sum(p.numel() for p in model.parameters())


def _check_timm_name(timm: Any, name: str) -> None:
    import difflib

    architecture, _, tag = name.partition(".")
    if not timm.is_model(architecture):
        near = difflib.get_close_matches(architecture, timm.list_models(), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(near)}?" if near else "see timm.list_models()."
        raise InputError(f"timm has no architecture {architecture!r}; {hint}")
    if tag and name not in timm.list_pretrained(name):
        tags = timm.list_pretrained(f"{architecture}.*")
        near = difflib.get_close_matches(name, tags, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(near)}?" if near else f"known: {', '.join(tags)}."
        raise InputError(f"timm has no pretrained tag {name!r}; {hint}")


def _count_minizoo(name: str) -> int:
    import torch

    from repscope.zoo.minizoo import build_minizoo_module

    with torch.device("meta"):
        module = build_minizoo_module(name)
    return sum(p.numel() for p in module.parameters())
