"""The tables of a study config, one frozen pydantic model each (keys in ``config``'s docstring).

Validators raise ``ValueError`` with a "problem; fix." message; :class:`LocatedError` also
says which key a problem belongs to when that is not the key being validated, and
``wrong_type`` reports a value of the wrong kind the way pydantic's own type errors are
reported. Relative paths resolve against ``context["base_dir"]`` of the validation (the
config file's folder), else the working directory.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from repscope._validation import InputError
from repscope.alignment.methods import METHODS
from repscope.dimension.local import AGGREGATES, ESTIMATORS
from repscope.finetune.tasks import TASKS
from repscope.io._builtin_images import BUILTIN_SETS
from repscope.io._model_spec import near_matches, parse_model_spec

__all__ = [
    "CLUSTER_KEYS",
    "CLUSTER_KINDS",
    "COVARIATES",
    "LABELLED_SETS",
    "AlignmentSection",
    "BrainSection",
    "ClusterSection",
    "DimensionSection",
    "EmbeddingSection",
    "GeneralizationSection",
    "LocatedError",
    "ModelsSection",
    "PreprocessingSection",
    "SimulatedBrain",
    "StatisticsSection",
    "StimuliSection",
    "StudySection",
    "WeightsSection",
]

#: Model properties a correlation across models can be controlled for.
COVARIATES: tuple[str, ...] = ("family", "log_params", "log_pretrain_images")
#: NSD's subjects.
NSD_SUBJECTS = 8
#: The fewest images :func:`repscope.io.simulate.simulate_nsd` accepts.
MIN_SIMULATED_IMAGES = 20
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class LocatedError(ValueError):
    """A problem that belongs at other keys, given relative to the validated one.

    The first of ``locs`` written in the file is reported; if none is, the first one's
    nearest written parent.
    """

    def __init__(self, message: str, *locs: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.locs = locs or ((),)


def wrong_type(expected: str) -> PydanticCustomError:
    """A type error that names what was expected, e.g. ``"a positive integer or false"``."""
    return PydanticCustomError("wrong_type", "Input should be {expected}", {"expected": expected})


def _one_of(value: str, *, options: tuple[str, ...], what: str) -> str:
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(
            f"{value!r} is not a known {what}{near_matches(value, options)}; write one of {listed}."
        )
    return value


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise LocatedError(f"{value!r} is listed twice; keep it once.", (index,))
        seen.add(value)
    return values


def _resolve_path(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise wrong_type("a path string (relative to the config file's folder)")
    base = Path((info.context or {}).get("base_dir", Path.cwd()))
    return (base / Path(value).expanduser()).resolve()


def _stimulus_source(value: Any, info: ValidationInfo) -> str:
    """``"nsd"``, ``"builtin:NAME"`` (NAME checked) or a path made absolute."""
    if not isinstance(value, str) or not value.strip():
        raise wrong_type('a string: an image folder, an .hdf5 file, "builtin:NAME" or "nsd"')
    if value == "nsd":
        return value
    if value.startswith("builtin:"):
        _one_of(value.removeprefix("builtin:"), options=BUILTIN_SETS, what="built-in stimulus set")
        return value
    return str(_resolve_path(value, info))


def _image_source(value: Any, info: ValidationInfo) -> str:
    if value == "nsd":
        raise ValueError(
            '"nsd" cannot be the stimuli of a simulation; write "builtin:NAME" or a folder.'
        )
    return _stimulus_source(value, info)


def _components(value: Any) -> Any:
    if value is False or (type(value) is int and value > 0):
        return value
    raise wrong_type("a positive integer or false")


def _batch_size(value: Any) -> Any:
    if value == "auto" or (type(value) is int and value > 0):
        return value
    raise wrong_type('a positive integer or "auto"')


def _device(value: str) -> str:
    if not _DEVICE.fullmatch(value):
        raise ValueError(f'{value!r} is not a device; write "auto", "cpu", "cuda" or "cuda:N".')
    return value


def _model_spec(value: str) -> str:
    return parse_model_spec(value).raw


def _scales(values: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(_unique(values)))


PositiveInt = Annotated[StrictInt, Field(gt=0)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
Text = Annotated[StrictStr, Field(min_length=1)]
ConfigPath = Annotated[Path, BeforeValidator(_resolve_path)]
Components = Annotated[int | Literal[False], BeforeValidator(_components)]
Scale = Annotated[StrictInt, Field(ge=2)]
Subject = Annotated[StrictInt, Field(ge=1, le=NSD_SUBJECTS)]


def _choice(options: tuple[str, ...], what: str) -> Any:
    """A string from ``options``."""
    return Annotated[StrictStr, AfterValidator(partial(_one_of, options=options, what=what))]


def _choices(options: tuple[str, ...], what: str) -> Any:
    """An array of distinct strings from ``options``."""
    return Annotated[tuple[_choice(options, what), ...], AfterValidator(_unique)]


Estimators = Annotated[_choices(ESTIMATORS, "estimator"), Field(min_length=1)]
Methods = Annotated[_choices(METHODS, "alignment method"), Field(min_length=1)]
Covariates = _choices(COVARIATES, "covariate")
Aggregate = _choice(AGGREGATES, "aggregate")
Names = Annotated[tuple[Text, ...], Field(min_length=1), AfterValidator(_unique)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudySection(_Section):
    """``[study]``: what the study is called, asks, and where it writes."""

    name: Text
    question: Text
    output: ConfigPath
    seed: NonNegativeInt = 0
    device: Annotated[StrictStr, AfterValidator(_device)] = "auto"
    threads: PositiveInt = 1


class ModelsSection(_Section):
    """``[models]``: the zoo, as spec strings or filtered from the paper's metadata table."""

    specs: (
        Annotated[
            tuple[Annotated[StrictStr, AfterValidator(_model_spec)], ...],
            Field(min_length=1),
            AfterValidator(_unique),
        ]
        | None
    ) = None
    zoo: Literal["paper"] | None = None
    family: Names | None = None
    max_params: Annotated[StrictFloat, Field(gt=0)] | None = None
    metadata: ConfigPath | None = None
    pretrained: StrictBool = True
    allow_few: StrictBool = False
    _specs: tuple[str, ...] = PrivateAttr(default=())

    @property
    def model_specs(self) -> tuple[str, ...]:
        """The study's models: ``specs``, or the zoo rows the filters keep, in table order."""
        return self._specs

    @model_validator(mode="after")
    def _select(self) -> ModelsSection:
        if self.specs is not None and self.zoo is not None:
            raise LocatedError(
                'give either specs = [...] or zoo = "paper", not both; keep the one you mean.',
                ("specs",),
            )
        if self.specs is None and self.zoo is None:
            raise LocatedError(
                'no models are named; add specs = ["timm:convnext_tiny.fb_in1k", ...] or '
                'zoo = "paper".',
                ("specs",),
            )
        if self.zoo is None and (self.family is not None or self.max_params is not None):
            raise LocatedError(
                'family and max_params filter zoo = "paper"; add zoo = "paper" or remove them.',
                ("family",),
                ("max_params",),
            )
        table = self.zoo_table() if self.zoo is not None or self.metadata else None
        self._specs = self.specs if self.specs is not None else self._filter(table)
        self._check_count()
        return self

    def zoo_table(self) -> Any:
        """The paper's zoo table extended by ``metadata`` (:func:`load_zoo_table`)."""
        from repscope.zoo.metadata import load_zoo_table

        try:
            return load_zoo_table(self.metadata)
        except InputError as exc:
            raise LocatedError(str(exc), ("metadata",)) from None

    def _filter(self, table: Any) -> tuple[str, ...]:
        rows = table
        if self.family is not None:
            known = tuple(sorted(set(table["family"])))
            for index, family in enumerate(self.family):
                if family not in known:
                    raise LocatedError(
                        f"no zoo model has family {family!r}{near_matches(family, known)}; "
                        f"write one of {', '.join(map(repr, known))}.",
                        ("family", index),
                    )
            rows = rows[rows["family"].isin(self.family)]
        if self.max_params is not None:
            rows = rows[rows["params_m"] * 1e6 <= self.max_params]
        return tuple(rows["spec"])

    def _check_count(self) -> None:
        count = len(self._specs)
        if count >= 3 or (self.allow_few and count > 0):
            return
        key = ("specs",) if self.specs is not None else ("zoo",)
        if count == 0:
            raise LocatedError("the filters keep no model; loosen family or max_params.", key)
        raise LocatedError(
            f"{count} model{'s' if count > 1 else ''} selected, but correlations across models "
            "need at least 3; add models, loosen the filters, or set allow_few = true.",
            key,
        )


class StimuliSection(_Section):
    """``[stimuli]``: the images every model embeds."""

    source: Annotated[str, BeforeValidator(_stimulus_source)]
    n_images: PositiveInt | None = None


class EmbeddingSection(_Section):
    """``[embedding]``: which layers, how tokens pool, how many images per batch."""

    layers: Names = ("penultimate",)
    pooling: Literal["mean", "cls"] = "mean"
    batch_size: Annotated[int | Literal["auto"], BeforeValidator(_batch_size)] = "auto"


class PreprocessingSection(_Section):
    """``[preprocessing]``: PCA of each embedding before dimension and alignment."""

    pca: Components = 300


class DimensionSection(_Section):
    """``[dimension]``: local estimators, their scales, and the global measures."""

    estimators: Estimators = ("mle",)
    k: Annotated[tuple[Scale, ...], Field(min_length=1), AfterValidator(_scales)] = (
        5,
        10,
        20,
        50,
        100,
        200,
        500,
        1000,
    )
    global_measures: StrictBool = True
    aggregate: Aggregate = "mean"


class AlignmentSection(_Section):
    """``[alignment]``: model–model alignment and the K its LID is compared at."""

    methods: Methods = ("ridge",)
    reference: Text = "best"
    both_directions: StrictBool = True
    k: Scale = 50


class SimulatedBrain(_Section):
    """``[brain] simulated``: a simulated NSD written by the run (:func:`simulate_nsd`)."""

    stimuli: Annotated[str, BeforeValidator(_image_source)]
    n_images: Annotated[StrictInt, Field(ge=MIN_SIMULATED_IMAGES)] | None = None
    subjects: Subject = 2
    seed: NonNegativeInt = 0


def _all_subjects(data: dict[str, Any]) -> tuple[int, ...]:
    simulated = data.get("simulated")
    count = simulated.subjects if isinstance(simulated, SimulatedBrain) else NSD_SUBJECTS
    return tuple(range(1, count + 1))


class BrainSection(_Section):
    """``[brain]``: fMRI responses (NSD on disk or simulated) and model–brain alignment."""

    nsd: ConfigPath | None = None
    simulated: SimulatedBrain | None = None
    subjects: Annotated[tuple[Subject, ...], Field(min_length=1), AfterValidator(_unique)] = Field(
        default_factory=_all_subjects
    )
    rois: Names = (
        "EBA",
        "V1",
        "V2",
        "V3",
        "hV4",
    )
    test: Literal["shared", "random"] = "shared"
    pca: Components = 300
    k: Scale = 1000

    @model_validator(mode="after")
    def _one_dataset(self) -> BrainSection:
        if (self.nsd is None) == (self.simulated is None):
            raise LocatedError(
                'give exactly one of nsd = "NSD_ROOT" and simulated = {stimuli = ...}; '
                f"{'remove one' if self.nsd else 'add one'}.",
                ("nsd",),
                ("simulated",),
            )
        if self.simulated is not None:
            for index, subject in enumerate(self.subjects):
                if subject > self.simulated.subjects:
                    raise LocatedError(
                        f"subject {subject} is not simulated (simulated.subjects = "
                        f"{self.simulated.subjects}); list subjects 1-{self.simulated.subjects} "
                        "or simulate more.",
                        ("subjects", index),
                    )
        return self


class StatisticsSection(_Section):
    """``[statistics]``: correlations across models, their intervals and p-values."""

    covariates: Covariates = ("family", "log_params")
    bootstrap: NonNegativeInt = 10000
    permutations: NonNegativeInt = 10000
    confidence: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.95


#: Labelled stimulus sets a ``[generalization]`` section can use (built-in, with class labels).
LABELLED_SETS: tuple[str, ...] = ("builtin:mnist", "builtin:digits", "builtin:fashion-mnist")
#: Probes of ``[generalization] probes``.
PROBES: tuple[str, ...] = ("linear", "knn")


class GeneralizationSection(_Section):
    """``[generalization]``: probes and the third paper's diagnostics on a labelled set."""

    data: _choice(LABELLED_SETS, "labelled stimulus set") = "builtin:mnist"
    probes: Annotated[_choices(PROBES, "probe"), Field(min_length=1)] = ("linear", "knn")
    accuracy: Literal["missing", "probe", "keep"] = "missing"
    diagnostics: StrictBool = True
    head: Literal["auto", "probe"] = "auto"
    n_train: PositiveInt = 1000
    test_size: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.2
    k: Scale = 20
    knn_k: PositiveInt = 10
    cv: Annotated[StrictInt, Field(ge=2)] = 5
    w1_max_exact: PositiveInt = 5000
    n_projections: PositiveInt = 1000


class WeightsSection(_Section):
    """``[weights]``: every model fine-tuned on a task, its spectral basis compared (§10)."""

    task: _choice(TASKS, "fine-tuning task") = "digits"
    rank: PositiveInt = 16
    ranks: Annotated[tuple[PositiveInt, ...], Field(min_length=1), AfterValidator(_scales)] = (
        1,
        2,
        4,
        8,
        16,
        32,
        64,
    )
    n_train: PositiveInt | None = None
    n_test: PositiveInt | None = None
    epochs: PositiveInt | None = None
    image_size: Annotated[StrictInt, Field(ge=32)] | None = None
    gap_tol: Annotated[StrictFloat, Field(ge=0, lt=1)] = 0.01

    @model_validator(mode="after")
    def _rank_in_ranks(self) -> WeightsSection:
        if self.rank not in self.ranks:
            raise LocatedError(
                f"rank = {self.rank} is not among ranks = {list(self.ranks)}; add it to ranks "
                "or pick one of those.",
                ("rank",),
                ("ranks",),
            )
        return self

    def budget(self) -> dict[str, int]:
        """The fine-tuning settings given here; the rest are the fine-tuned zoo's defaults."""
        keys = ("n_train", "n_test", "epochs", "image_size")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


#: Where a study's per-model stages run: a LocalCluster, a running scheduler, SLURM jobs.
CLUSTER_KINDS: tuple[str, ...] = ("local", "scheduler", "slurm")
#: The ``[cluster]`` keys of each kind (``kind`` itself belongs to all).
CLUSTER_KEYS: dict[str, tuple[str, ...]] = {
    "local": ("workers",),
    "scheduler": ("address",),
    "slurm": (
        "jobs",
        "cores",
        "memory",
        "processes",
        "queue",
        "account",
        "walltime",
        "job_extra_directives",
        "job_script_prologue",
        "local_directory",
        "python",
    ),
}
# the keys each kind needs, with an example value
_CLUSTER_REQUIRED: dict[str, tuple[tuple[str, str], ...]] = {
    "local": (("workers", "2"),),
    "scheduler": (("address", '"tcp://host:8786"'),),
    "slurm": (("cores", "16"), ("memory", '"16GB"')),
}
# dask's byte units, a unit required: "16GB", "16 GiB", "512M", "1.5T"
_MEMORY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*[kmgtp](?:b|i|ib)?", re.IGNORECASE)
# SLURM's --time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_WALLTIME = re.compile(r"\d+(?::\d{1,2}){0,2}|\d+-\d+(?::\d{1,2}){0,2}")


def _memory(value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type('a string such as "16GB"')
    match = _MEMORY.fullmatch(value.strip())
    if match is None or float(match.group(1)) == 0:
        raise ValueError(
            f'{value!r} is not an amount of memory; write a size with its unit, e.g. "16GB".'
        )
    return value.strip()


def _walltime(value: Any) -> str:
    if not isinstance(value, str):
        raise wrong_type('a string such as "04:00:00"')
    if not _WALLTIME.fullmatch(value):
        raise ValueError(
            f'{value!r} is not a SLURM time limit; write "HH:MM:SS" or "D-HH:MM:SS", '
            'e.g. "04:00:00".'
        )
    return value


def _directive(value: str) -> str:
    if value.lstrip().startswith("#SBATCH"):
        raise ValueError(
            f"{value!r} starts with #SBATCH, which is added to every directive; write the "
            'option alone, e.g. "--gres=gpu:1".'
        )
    return value


class ClusterSection(_Section):
    """``[cluster]``: where the per-model stages run; never part of a stage's key.

    ``kind = "local"`` (``workers``), ``"scheduler"`` (``address``) or ``"slurm"`` (the
    ``dask_jobqueue.SLURMCluster`` options in :data:`CLUSTER_KEYS`, ``cores`` and ``memory``
    required); a key of another kind is an error. Unset SLURM options fall back to
    dask-jobqueue's own configuration (``jobqueue.yaml``).
    """

    kind: _choice(CLUSTER_KINDS, "cluster kind")
    workers: PositiveInt | None = None
    address: Text | None = None
    jobs: PositiveInt = 1
    cores: PositiveInt | None = None
    memory: Annotated[str, BeforeValidator(_memory)] | None = None
    processes: PositiveInt | None = None
    queue: Text | None = None
    account: Text | None = None
    walltime: Annotated[str, BeforeValidator(_walltime)] | None = None
    job_extra_directives: tuple[Annotated[Text, AfterValidator(_directive)], ...] = ()
    job_script_prologue: tuple[Text, ...] = ()
    local_directory: Text | None = None
    python: Text | None = None

    @property
    def worker_processes(self) -> int | None:
        """Single-threaded worker processes per SLURM job: ``processes``, else ``cores``."""
        return self.processes if self.processes is not None else self.cores

    @model_validator(mode="after")
    def _keys_of_kind(self) -> ClusterSection:
        stray = sorted(self.model_fields_set - {"kind", *CLUSTER_KEYS[self.kind]})
        if stray:
            key = stray[0]
            owner = next(kind for kind, keys in CLUSTER_KEYS.items() if key in keys)
            raise LocatedError(
                f'{key} is a setting of kind = "{owner}", not of kind = "{self.kind}"; '
                f'remove it or set kind = "{owner}".',
                (key,),
            )
        missing = [(k, e) for k, e in _CLUSTER_REQUIRED[self.kind] if getattr(self, k) is None]
        if missing:
            keys = " and ".join(k for k, _ in missing)
            add = " and ".join(f"{k} = {e}" for k, e in missing)
            raise LocatedError(
                f'kind = "{self.kind}" needs {keys}; add {add} under [cluster].', ("kind",)
            )
        if self.kind == "slurm" and self.processes is not None and self.processes > self.cores:
            raise LocatedError(
                f"processes = {self.processes} is more than cores = {self.cores}; every worker "
                "process needs a core of its own: lower processes or raise cores.",
                ("processes",),
            )
        return self
