"""A study as a TOML file: which models, which images, which measures, which brain data.

:func:`load_config` reads the file with :mod:`tomllib` and validates it into a frozen
:class:`StudyConfig`. Every problem raises :class:`ConfigError` with one line,
``"<file>:<line>: <problem>; <fix>"``: TOML syntax, an unknown key (with the nearest valid
one), a value of the wrong type, a missing key, an invalid value. Relative paths resolve
against the config file's folder. Files named by the config are read by the run, not here
(the NSD root need not exist yet), except the ``metadata`` table, which decides the models.

Keys (defaults after ``=``; keys without one are required)
----------------------------------------------------------
``[study]``
    ``name``, ``question`` (strings; the question heads the report), ``output`` (results
    folder), ``seed = 0``, ``device = "auto"`` (``"auto"``, ``"cpu"``, ``"cuda"``,
    ``"cuda:N"``), ``threads = 1`` (BLAS and torch threads of every task: with the same value
    the tables are identical bit for bit in process and on any number of Dask workers; raise
    it to use more cores of one machine in process).
``[models]``
    Either ``specs = [...]``, model spec strings (:func:`repscope.io.models.parse_model_spec`:
    ``"timm:convnext_tiny.fb_in1k"``, ``"minizoo:cnn-w8-d1-n500"``, ...), or
    ``zoo = "paper"``, the rows of the paper's zoo table
    (:func:`repscope.zoo.metadata.load_zoo_table`) kept by the optional filters
    ``family = [...]`` and ``max_params`` (parameters, e.g. ``100e6``). ``metadata`` (a CSV
    with the zoo table's columns) adds models to the table or overrides its rows: family, size,
    training data and top-1 of models named in ``specs``. ``pretrained = true`` (false: seeded
    random weights). At least 3 models, unless ``allow_few = true``.
``[stimuli]``
    ``source``: an image folder, an NSD ``.hdf5``, ``"builtin:NAME"``, or ``"nsd"``: the
    ``nsd_stimuli.hdf5`` of the ``[brain]`` dataset, restricted to the images its subjects saw.
    ``n_images`` (optional): keep the first N.
``[embedding]``
    ``layers = ["penultimate"]`` (or module names), ``pooling = "mean"`` (``"cls"``),
    ``batch_size = "auto"`` (or a positive integer).
``[preprocessing]``
    ``pca = 300``: principal components kept before dimension and alignment (``false``: none).
``[dimension]``
    ``estimators = ["mle"]`` (:data:`repscope.ESTIMATORS`),
    ``k = [5, 10, 20, 50, 100, 200, 500, 1000]`` (neighbourhood sizes >= 2, stored sorted),
    ``global_measures = true`` (PCA-based dimensions), ``aggregate = "mean"``
    (:data:`repscope.AGGREGATES`).
``[alignment]``
    ``methods = ["ridge"]`` (:data:`repscope.alignment.methods.METHODS`),
    ``reference = "best"`` (the model with the best accuracy), a spec among the models, or
    ``"all-pairs"``; ``both_directions = true`` (average A→B and B→A); ``k = 50``, the K
    whose LID is compared with model–model alignment (must be in ``[dimension] k``).
``[brain]`` (optional)
    Exactly one of ``nsd = "NSD_ROOT"`` and ``simulated = {stimuli = ..., n_images = ...,
    subjects = 2, seed = 0}`` (:func:`repscope.io.simulate.simulate_nsd`, written by the run;
    ``n_images`` >= 20, default all). ``subjects`` (default all: 1-8 for NSD, 1-N simulated),
    ``rois = ["EBA", "V1", "V2", "V3", "hV4"]`` (:func:`repscope.io.nsd.load_nsd` names),
    ``test = "shared"`` (NSD's shared images as the test split; ``"random"``: seeded 80/20),
    ``pca = 300`` (or false), ``k = 1000``, the K whose LID is compared with brain
    alignment (must be in ``[dimension] k``).
``[generalization]`` (optional)
    Probes and the third paper's diagnostics (:mod:`repscope.generalization`) of every
    model's penultimate embedding on a labelled set: ``data = "builtin:mnist"`` (also
    ``"builtin:digits"``, ``"builtin:fashion-mnist"``). The probe split is shared by every
    model: for MNIST the mini zoo's 1 000 held-out images as test and the first ``n_train``
    images of its training pool (at most 4 000); for the other sets a seeded stratified split
    with ``test_size = 0.2``, at most ``n_train = 1000`` training images. ``probes =
    ["linear", "knn"]`` (logistic regression with its penalty chosen by ``cv = 5``-fold CV;
    majority vote of ``knn_k = 10`` neighbours). ``accuracy = "missing"``: the linear probe's
    (else the first probe's) test accuracy fills the models table's ``accuracy`` where a model
    has none; ``"probe"``: for every model; ``"keep"``: never. ``diagnostics = true``: LID at
    ``k = 20`` of the train embedding, W1 between train and test embeddings (exact optimal
    transport up to ``w1_max_exact = 5000`` points a side, else sliced with ``n_projections
    = 1000``), the head's Lipschitz bound and the generalization gap. ``head = "auto"`` uses a
    model's own classifier where repscope knows its training data (mini-zoo members on
    ``builtin:mnist``: their own training images against the held-out 1 000), else a linear
    probe fit on the train split; ``"probe"`` always the probe.
``[weights]`` (optional)
    The fourth paper's weight-space analysis (:mod:`repscope.weightspace`): every model is
    fine-tuned on ``task = "digits"`` (also ``"mnist"``, ``"fashion-mnist"``; the fine-tuned
    zoo of :func:`repscope.zoo.finetuned.finetune_zoo`, cached, a new head, all weights
    trained), and each weight matrix's top-r singular subspaces before and after are
    compared at ``ranks = [1, 2, 4, 8, 16, 32, 64]``; ``rank = 16`` is the one the statistics
    correlate with pretraining-set size, LID and alignment. ``n_train``, ``n_test``,
    ``epochs`` and ``image_size`` override the fine-tuned zoo's budget; ``gap_tol = 0.01`` is
    the relative singular-value gap above which index-wise alignment is reported. Needs
    ``[models] pretrained = true``.
``[statistics]``
    ``covariates = ["family", "log_params"]`` (of :data:`COVARIATES`), ``bootstrap = 10000``,
    ``permutations = 10000``, ``confidence = 0.95``.
``[cluster]`` (optional)
    Where ``repscope run`` runs the per-model stages; without it, in process.
    ``--workers``/``--scheduler`` override it. Never part of a stage's key, the digest or
    :meth:`StudyConfig.to_dict`: where the work runs does not change the results.
    ``kind = "local"`` with ``workers`` (a Dask LocalCluster of that many single-threaded
    processes); ``kind = "scheduler"`` with ``address`` (``"tcp://host:8786"``, a running Dask
    scheduler); ``kind = "slurm"`` (a ``dask_jobqueue.SLURMCluster``): ``cores`` (CPUs per job)
    and ``memory`` (per job, e.g. ``"16GB"``) required, ``jobs = 1`` (jobs submitted),
    ``processes`` (single-threaded worker processes per job, default ``cores``; with
    ``[study] threads = T`` write ``cores / T``), ``queue`` (partition), ``account``,
    ``walltime`` (``"HH:MM:SS"`` or ``"D-HH:MM:SS"``), ``job_extra_directives = []``
    (``#SBATCH`` options, e.g. ``["--gres=gpu:1"]``), ``job_script_prologue = []`` (shell lines
    run before the worker, e.g. ``["module load cuda", "source venv/bin/activate"]``),
    ``local_directory`` (worker scratch on the node, e.g. ``"$TMPDIR"``), ``python`` (the
    interpreter on the nodes, default this one). Unset SLURM options fall back to
    dask-jobqueue's ``jobqueue.yaml``. A key of another kind is an error.

Examples
--------
>>> config = parse_config('''
... [study]
... name = "demo"
... question = "Does lower LID go with higher alignment?"
... output = "results"
... [models]
... specs = ["minizoo:cnn-w8-d1-n500", "minizoo:cnn-w8-d2-n1000", "minizoo:mlp-w64-d1-n500"]
... [stimuli]
... source = "builtin:digits"
... ''', base_dir="/studies")
>>> config.study.output, config.dimension.k[:3], config.brain
(PosixPath('/studies/results'), (5, 10, 20), None)
>>> parse_config('[study]\\nnmae = "x"\\n', source="study.toml")
Traceback (most recent call last):
  ...
repscope.experiment.config.ConfigError: study.toml:2: unknown key 'nmae' in [study]; did you mean 'name'?
"""  # noqa: E501

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from repscope._validation import InputError
from repscope.experiment._config_errors import syntax_message, validation_message
from repscope.experiment._sections import (
    COVARIATES,
    AlignmentSection,
    BrainSection,
    ClusterSection,
    DimensionSection,
    EmbeddingSection,
    GeneralizationSection,
    LocatedError,
    ModelsSection,
    PreprocessingSection,
    SimulatedBrain,
    StatisticsSection,
    StimuliSection,
    StudySection,
    WeightsSection,
)

__all__ = [
    "COVARIATES",
    "AlignmentSection",
    "BrainSection",
    "ClusterSection",
    "ConfigError",
    "DimensionSection",
    "EmbeddingSection",
    "GeneralizationSection",
    "ModelsSection",
    "PreprocessingSection",
    "SimulatedBrain",
    "StatisticsSection",
    "StimuliSection",
    "StudyConfig",
    "StudySection",
    "WeightsSection",
    "load_config",
    "parse_config",
]

#: Keys that name or place a study but do not change its numbers: left out of the digest.
COSMETIC = (("study", "name"), ("study", "question"), ("study", "output"), ("study", "device"))
_REFERENCES = ("best", "all-pairs")


class ConfigError(InputError):
    """A study config that cannot be used: ``"<file>:<line>: <problem>; <fix>"``."""


class StudyConfig(BaseModel):
    """A validated study (keys and defaults in the module docstring).

    Attributes
    ----------
    study : StudySection
    models : ModelsSection
        ``models.model_specs`` lists the study's models (zoo filters applied).
    stimuli : StimuliSection
    embedding, preprocessing, dimension, alignment, statistics
        Their sections, defaults filled.
    brain : BrainSection or None
        None when the study has no ``[brain]`` section.
    generalization : GeneralizationSection or None
        None when the study has no ``[generalization]`` section.
    weights : WeightsSection or None
        None when the study has no ``[weights]`` section.
    cluster : ClusterSection or None
        Where ``repscope run`` runs the per-model stages; None: in process.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    study: StudySection
    models: ModelsSection
    stimuli: StimuliSection
    embedding: EmbeddingSection = Field(default_factory=EmbeddingSection)
    preprocessing: PreprocessingSection = Field(default_factory=PreprocessingSection)
    dimension: DimensionSection = Field(default_factory=DimensionSection)
    alignment: AlignmentSection = Field(default_factory=AlignmentSection)
    brain: BrainSection | None = None
    generalization: GeneralizationSection | None = None
    weights: WeightsSection | None = None
    statistics: StatisticsSection = Field(default_factory=StatisticsSection)
    cluster: ClusterSection | None = None

    @property
    def model_specs(self) -> tuple[str, ...]:
        """The study's model specs, in ``specs`` order or the zoo table's."""
        return self.models.model_specs

    def to_dict(self) -> dict[str, Any]:
        """Every setting, defaults included, as JSON-able data (for ``run.json``).

        Paths are absolute strings, arrays lists; ``models.model_specs`` lists the models.
        ``cluster`` is left out: the stage keys and the digest are computed from this dict,
        and where the stages run does not change their results.
        """
        data = self.model_dump(mode="json", exclude={"cluster"})
        data["models"]["model_specs"] = list(self.model_specs)
        return data

    def config_digest(self) -> str:
        """SHA-256 hex digest of the settings that change results.

        Stable under key order and formatting of the file; :data:`COSMETIC` keys (name,
        question, output, device) are left out, so a renamed or moved study still resumes.
        """
        data = self.to_dict()
        for section, key in COSMETIC:
            del data[section][key]
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        self._check_scale("alignment", self.alignment.k)
        if self.brain is not None:
            self._check_scale("brain", self.brain.k)
        self._check_reference()
        if self.weights is not None and not self.models.pretrained:
            raise LocatedError(
                "[weights] compares pretrained weights with their fine-tunes, but [models] "
                "pretrained = false; set pretrained = true or remove [weights].",
                ("weights",),
                ("models", "pretrained"),
            )
        if self.stimuli.source == "nsd" and self.brain is None:
            raise LocatedError(
                'source = "nsd" means the [brain] dataset\'s nsd_stimuli.hdf5, but there is no '
                '[brain] section; add one (nsd = "NSD_ROOT") or name an image source.',
                ("stimuli", "source"),
            )
        return self

    def _check_scale(self, section: str, k: int) -> None:
        scales = list(self.dimension.k)
        if k not in scales:
            raise LocatedError(
                f"{section}.k = {k} is not among [dimension] k = {scales}; add {k} to "
                "[dimension] k or pick one of those.",
                (section, "k"),
                ("dimension", "k"),
            )

    def _check_reference(self) -> None:
        reference = self.alignment.reference
        specs = self.model_specs
        if reference in _REFERENCES or reference in specs:
            return
        from repscope.io._model_spec import near_matches

        raise LocatedError(
            f"reference {reference!r} is not one of the study's {len(specs)} models"
            f"{near_matches(reference, specs)}; write one of their specs, "
            '"best" or "all-pairs".',
            ("alignment", "reference"),
        )


def load_config(path: str | os.PathLike[str]) -> StudyConfig:
    """Read and validate a study config file.

    Parameters
    ----------
    path : path-like
        A TOML file (keys in the module docstring). Relative paths inside it resolve against
        its folder.

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        Unreadable file, TOML syntax, unknown or missing key, wrong type, invalid value; the
        one-line message starts with ``"<file>:<line>:"``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(
            f"{path}:1: cannot read the config ({reason}); pass the path of a UTF-8 .toml file, "
            "e.g. examples/paper_nsd.toml."
        ) from None
    return parse_config(text, base_dir=path.resolve().parent, source=str(path))


def parse_config(
    text: str,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    source: str = "<config>",
) -> StudyConfig:
    """Validate study config text (what :func:`load_config` does after reading the file).

    Parameters
    ----------
    text : str
        TOML text.
    base_dir : path-like, optional
        Folder that relative paths resolve against; default the working directory.
    source : str
        File name used in error messages.

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        As :func:`load_config`.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(syntax_message(exc, text, source)) from None
    context = {"base_dir": Path(base_dir) if base_dir is not None else Path.cwd()}
    try:
        return StudyConfig.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, text, source, StudyConfig)) from None
