"""The study's ``[weights]`` stage: fine-tune a model, compare its spectral basis, summarise.

Per model: the fine-tuned zoo (:func:`repscope.zoo.finetuned.finetune_zoo`, cached) fine-tunes
it on the section's task; :func:`repscope.weightspace.spectral_stability` compares every weight
matrix before and after; the comparison becomes measure rows (``layer = "weights"``, ``k`` = the
rank r, ``estimator`` = the depth bin ``all``/``early``/``middle``/``late``, ``target`` = the
task), so the zoo statistics can correlate stability with pretraining-set size, LID and
alignment like any other per-model quantity.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from repscope.experiment.measures import measure_frame

__all__ = ["DEPTH_BINS", "LAYER", "weights_frame"]

#: ``layer`` of the weight-space rows: they summarise every weight matrix, not one layer.
LAYER = "weights"
#: ``estimator`` values: all layers, then each third of the depth.
DEPTH_BINS = ("all", "early", "middle", "late")
# measure → the SpectralStability columns it averages (left and right together)
_CURVES = {
    "spectral_overlap": ("overlap_left", "overlap_right"),
    "spectral_baseline": ("baseline_left", "baseline_right"),
    "spectral_update_share": ("update_share",),
    "spectral_sigma_change": ("sigma_change",),
}


def weights_frame(spec: str, section: Any, seed: int, cache_dir: Any) -> pd.DataFrame:
    """Fine-tune ``spec`` on ``section.task`` (or reuse it) and return its measure rows.

    Parameters
    ----------
    spec : str
        The model spec.
    section : WeightsSection
    seed : int
        The study's seed (fine-tuning split, head and batch order).
    cache_dir : path-like or None
        Cache root of the mini zoo, the fine-tuned zoo and the model weights.

    Returns
    -------
    pandas.DataFrame
        Measure rows (:data:`repscope.results.MEASURE_COLUMNS`).
    """
    import warnings

    from repscope.weightspace import spectral_stability
    from repscope.zoo.finetuned import finetune_zoo, load_finetuned

    table = finetune_zoo(
        [spec],
        tasks=(section.task,),
        cache_dir=cache_dir,
        progress=False,
        seed=seed,
        **section.budget(),
    )
    row = table.iloc[0]
    tuned = load_finetuned(row["name"], cache_dir=cache_dir)
    with warnings.catch_warnings():  # capping at small layers is expected; summaries skip it
        warnings.simplefilter("ignore", UserWarning)
        result = spectral_stability(
            spec, tuned, section.ranks, gap_tol=section.gap_tol, cache_dir=cache_dir
        )
    return measure_frame(_rows(spec, section, result, row, tuned.config.n_test))


def _rows(
    spec: str, section: Any, result: Any, finetuned: pd.Series, n_test: int
) -> list[dict[str, Any]]:
    common = {"model": spec, "layer": LAYER, "target": section.task}
    rows = []
    for (depth, rank), group in _by_depth_and_rank(result).items():
        for measure, columns in _CURVES.items():
            source = group[group["changed"]] if measure == "spectral_update_share" else group
            if source.empty:
                continue
            value = float(source[list(columns)].to_numpy().mean())
            rows.append(
                {**common, "measure": measure, "estimator": depth, "k": rank, "value": value,
                 "n": len(group)}
            )  # fmt: skip
    summary = result.summary(section.rank)
    rows.append(
        {**common, "measure": "spectral_update_norm", "estimator": "all",
         "value": summary["update_norm"], "n": summary["n_layers"]}
    )  # fmt: skip
    rows.append(
        {**common, "measure": "finetune_accuracy", "estimator": "full",
         "value": float(finetuned["test_accuracy"]), "n": n_test}
    )  # fmt: skip
    return rows


def _by_depth_and_rank(result: Any) -> dict[tuple[str, int], pd.DataFrame]:
    """Layer rows with r below both dimensions, grouped by (depth bin or "all", rank)."""
    from repscope.weightspace.stability import _informative, depth_bins

    layers = _informative(result.layers)
    layers = layers.assign(depth_bin=depth_bins(layers["depth"], 3).astype(str))
    groups = {("all", int(r)): g for r, g in layers.groupby("rank")}
    for (depth, r), g in layers.groupby(["depth_bin", "rank"]):
        groups[(str(depth), int(r))] = g
    return groups
