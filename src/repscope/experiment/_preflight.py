"""What ``repscope run`` checks before its first stage, so that bad input fails at once.

Problems the config alone cannot show, found once the output folder, the brain data and the
stimuli are known but before any model is trained, embedded or measured: an output folder
that cannot be written, a model name its library does not know, a neighbourhood size K that
the stimulus set is too small for, stimuli the brain data never saw. Each raises
:class:`~repscope._validation.InputError` with one line naming the problem and the fix, and
nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repscope._validation import InputError, check_writable_folder

__all__ = ["check_inputs", "check_output"]


def check_output(output: Path) -> None:
    """The study's output folder can be made and written (nothing is created here)."""
    check_writable_folder(output, "output folder ([study] output or --output)")


def check_inputs(config: Any, stimuli: Any, brains: Sequence[Any]) -> None:
    """Model names, K against the stimulus count, stimuli against the brain data."""
    from repscope.io._model_sources import check_name
    from repscope.io._model_spec import parse_model_spec

    for spec in config.model_specs:
        check_name(parse_model_spec(spec))
    n = len(stimuli.ids)
    too_large = [k for k in config.dimension.k if k >= n - 1]
    if too_large:
        raise InputError(
            f"[dimension] k = {list(config.dimension.k)} has K = {too_large[0]}, but the study "
            f"has {n} stimuli and K must be below n - 1 = {n - 1}; drop K >= {n - 1} from "
            "[dimension] k or use more images ([stimuli] n_images, source)."
        )
    _check_brain_ids(config, stimuli, brains)


def _check_brain_ids(config: Any, stimuli: Any, brains: Sequence[Any]) -> None:
    from repscope.alignment.brain import MIN_COMMON_IMAGES

    ids = np.asarray(stimuli.ids, dtype=str)
    for brain in brains:
        theirs = np.asarray(brain.stimulus_ids, dtype=str)
        common = int(np.isin(theirs, ids).sum())
        if common < MIN_COMMON_IMAGES:
            ours, seen = str(ids[0]), str(theirs[0])
            raise InputError(
                f"[stimuli] source {config.stimuli.source!r} shares {common} images with "
                f"subject {brain.subject}'s brain data (ids e.g. {ours!r} vs {seen!r}); "
                f'brain alignment needs at least {MIN_COMMON_IMAGES}: write source = "nsd" '
                "(the images the subjects saw) or drop the [brain] section."
            )
