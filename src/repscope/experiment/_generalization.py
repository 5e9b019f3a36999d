"""The study's ``[generalization]`` stage: probes and diagnostics of one model on a labelled set.

Every model is scored on one shared probe split, so probe accuracies are comparable across the
zoo. The diagnostics use a model's own head and own training images where repscope knows them
(mini-zoo members on ``builtin:mnist``), and otherwise a linear probe fit on the shared split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from repscope.experiment.measures import measure_frame

__all__ = ["LabelledSplit", "generalization_frame", "labelled_split", "probe_accuracies"]

#: The layer the diagnostics read: the head's input.
LAYER = "penultimate"
#: Measures of the diagnostics, with the :class:`GeneralizationDiagnostics` value they hold.
DIAGNOSTIC_MEASURES = {
    "gen_lid": "lid",
    "gen_w1": "w1",
    "gen_lipschitz": "lipschitz",
    "gen_lipschitz_w1": "lipschitz_w1",
    "gen_train_accuracy": "train_accuracy",
    "gen_test_accuracy": "test_accuracy",
    "gen_train_loss": "train_loss",
    "gen_test_loss": "test_loss",
    "gen_gap_accuracy": "gap_accuracy",
    "gen_gap_loss": "gap_loss",
}


@dataclass(frozen=True)
class LabelledSplit:
    """The labelled stimulus set and its probe split, shared by every model.

    Attributes
    ----------
    source : str
        ``"builtin:NAME"``.
    train_ids, test_ids : tuple of str
        Stimulus ids of the probe split.
    labels : dict of str to int
        Class label of every id of the set.
    """

    source: str
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    labels: dict[str, int]

    def describe(self) -> str:
        """E.g. ``"builtin:mnist, 1000 train / 1000 test images"``."""
        return f"{self.source}, {len(self.train_ids)} train / {len(self.test_ids)} test images"


def labelled_split(section: Any, seed: int) -> LabelledSplit:
    """The probe split of ``[generalization]`` (see the config docs), loading labels only."""
    from repscope._validation import InputError
    from repscope.io.stimuli import open_stimuli

    stimuli = open_stimuli(section.data)
    if stimuli.labels is None:
        raise InputError(f"{section.data} has no class labels; pick one of the labelled sets.")
    ids = np.asarray(stimuli.ids)
    labels = dict(zip(stimuli.ids, (int(v) for v in stimuli.labels), strict=True))
    if section.data == "builtin:mnist":
        train, test = _mnist_split(section.n_train)
    else:
        from repscope.generalization.probes import probe_split

        train, test = probe_split(stimuli.labels, test_size=section.test_size, random_state=seed)
        if section.n_train < len(train):
            keep = np.random.default_rng(seed).permutation(len(train))[: section.n_train]
            train = np.sort(train[keep])
    return LabelledSplit(section.data, tuple(ids[train]), tuple(ids[test]), labels)


def _mnist_split(n_train: int) -> tuple[np.ndarray, np.ndarray]:
    """The mini zoo's split: the first ``n_train`` of its pool, and its 1 000 held-out images."""
    from repscope._validation import InputError
    from repscope.zoo._mnist import N_POOL, minizoo_test_split, training_subset

    if n_train > N_POOL:
        raise InputError(
            f"[generalization] n_train = {n_train} exceeds the {N_POOL} training images of "
            f"builtin:mnist's split; pass n_train <= {N_POOL}."
        )
    return training_subset(n_train)[0], minizoo_test_split()[0]


def own_training(spec: str, split: LabelledSplit, cache_dir: Any) -> tuple[tuple[str, ...], Any]:
    """The ids a model was trained on and its own head where repscope knows them, else empty.

    Returns ``((), None)`` for models whose training data repscope does not know.

    Mini-zoo members were trained on a prefix of the MNIST pool; their head is their last
    ``nn.Linear``, whose input is the penultimate embedding.
    """
    if not (spec.startswith("minizoo:") and split.source == "builtin:mnist"):
        return (), None
    from repscope.zoo._mnist import training_subset
    from repscope.zoo.minizoo import load_minizoo_model

    member = load_minizoo_model(spec.split(":", 1)[1], cache_dir=cache_dir)
    indices = training_subset(member.config.n_train)[0]
    return tuple(f"mnist-{i:04d}" for i in indices), member.module[-1]


def generalization_frame(
    spec: str, split: LabelledSplit, section: Any, embed: Any, seed: int, cache_dir: Any
) -> pd.DataFrame:
    """Probe and diagnostic rows of one model.

    Parameters
    ----------
    spec : str
        Model spec.
    split : LabelledSplit
    section : GeneralizationSection
    embed : callable
        ``embed(ids) -> (X, ids)``: the model's penultimate embedding of those stimuli.
    seed : int
    cache_dir : path-like or None
        Where mini-zoo members are cached.

    Returns
    -------
    DataFrame
        ``probe_accuracy`` rows (estimator ``linear``/``knn``, ``n`` = test images) and, with
        ``diagnostics``, the :data:`DIAGNOSTIC_MEASURES` rows (estimator = head kind, except
        ``gen_lid``: ``mle`` with its K, and ``gen_w1``: ``exact`` or ``sliced``).
    """
    own_ids, own_head = (
        own_training(spec, split, cache_dir) if section.head == "auto" else ((), None)
    )
    wanted = list(dict.fromkeys((*split.train_ids, *own_ids, *split.test_ids)))
    X, ids = embed(wanted)
    rows_of = {sid: i for i, sid in enumerate(ids)}

    def block(which: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        kept = [sid for sid in which if sid in rows_of]  # unreadable images were skipped
        return X[[rows_of[s] for s in kept]], np.array([split.labels[s] for s in kept])

    train, test = block(split.train_ids), block(split.test_ids)
    rows = []
    diagnostics = None
    if section.diagnostics:
        own_train = block(own_ids) if own_head is not None else train
        diagnostics = _diagnostics(own_train, test, own_head, section, seed)
        rows += _diagnostic_rows(spec, diagnostics)
    for kind in section.probes:
        if kind == "linear" and diagnostics is not None and diagnostics.head == "probe":
            accuracy = diagnostics.test_accuracy  # that probe: same split, folds and seed
        else:
            accuracy = _probe(kind, train, test, section, seed).test_accuracy
        rows.append(
            {
                "model": spec,
                "layer": LAYER,
                "measure": "probe_accuracy",
                "estimator": kind,
                "value": accuracy,
                "n": len(test[1]),
            }
        )
    return measure_frame(rows)


def _diagnostics(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    head: Any,
    section: Any,
    seed: int,
) -> Any:
    from repscope.generalization.diagnostics import generalization_diagnostics

    return generalization_diagnostics(
        train[0],
        test[0],
        train[1],
        test[1],
        head=head,
        k=section.k,
        max_exact=section.w1_max_exact,
        n_projections=section.n_projections,
        cv=section.cv,
        random_state=seed,
    )


def _diagnostic_rows(spec: str, diagnostics: Any) -> list[dict[str, Any]]:
    values = diagnostics.to_dict()
    rows = []
    for measure, key in DIAGNOSTIC_MEASURES.items():
        row = {"model": spec, "layer": LAYER, "measure": measure, "value": values[key]}
        if measure == "gen_lid":
            row.update(estimator="mle", k=diagnostics.lid_k, n=diagnostics.n_train)
        elif measure == "gen_w1":
            row.update(estimator=diagnostics.wasserstein.method, n=diagnostics.wasserstein.n_a)
        else:
            row.update(estimator=diagnostics.head, n=diagnostics.n_test)
        rows.append(row)
    return rows


def _probe(
    kind: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    section: Any,
    seed: int,
) -> Any:
    from repscope.generalization.diagnostics import stacked_split
    from repscope.generalization.probes import knn_probe, linear_probe

    X, y, split = stacked_split(train, test)
    if kind == "linear":
        return linear_probe(X, y, split=split, cv=section.cv, random_state=seed)
    return knn_probe(X, y, split=split, n_neighbors=section.knn_k)


def probe_accuracies(
    models: pd.DataFrame, measures: pd.DataFrame, section: Any, split: LabelledSplit
) -> pd.DataFrame:
    """The models table with probe accuracies filled in as ``[generalization] accuracy`` asks.

    The linear probe's test accuracy (else the first probe's) replaces missing accuracies
    (``"missing"``) or all of them (``"probe"``); ``"keep"`` returns ``models`` unchanged.
    """
    if section.accuracy == "keep":
        return models
    kind = "linear" if "linear" in section.probes else section.probes[0]
    rows = measures[(measures["measure"] == "probe_accuracy") & (measures["estimator"] == kind)]
    probed = rows.set_index("model")["value"]
    out = models.copy()
    chosen = out["model"].isin(probed.index)
    if section.accuracy == "missing":
        chosen &= out["accuracy"].isna()
    out.loc[chosen, "accuracy"] = out.loc[chosen, "model"].map(probed).astype("float64")
    out.loc[chosen, "accuracy_source"] = f"{kind} probe test accuracy on {split.describe()}"
    return out.astype(models.dtypes.to_dict())
