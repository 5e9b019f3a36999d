"""The tidy tables a study produces: the contract between the run, the statistics and the report.

A run (:mod:`repscope.experiment`) writes two tables; :mod:`repscope.stats` and
:mod:`repscope.report` read only these, never the run's internals.

``measures`` — one row per model × layer × measure × K × subject × ROI × target:

=============  =======  ==================================================================
column         dtype    meaning
=============  =======  ==================================================================
model          str      model spec (``timm:convnext_tiny.fb_in1k``, ``minizoo:cnn-…``)
layer          str      layer read (``penultimate`` or a module name)
measure        str      one of :data:`MEASURES` (below)
estimator      str      LID estimator (``mle``…), alignment method (``ridge``…), or ``""``
k              Int64    neighbourhood size K for LID measures, rank r for spectral ones; <NA> else
subject        str      ``"1"``…``"8"``, ``"all"`` (pooled over subjects); ``""`` if not brain
roi            str      ROI name for brain measures; ``""`` otherwise
target         str      the other model for model–model alignment; ``""`` otherwise
value          float64  the measure (units in :data:`MEASURES`)
ci_low         float64  lower end of its confidence interval (NaN when none)
ci_high        float64  upper end (NaN when none)
n              Int64    points / images / voxels the value is computed from
=============  =======  ==================================================================

``models`` — one row per model: ``model`` (str), ``family`` (str), ``n_params`` (float64),
``pretrain_data`` (str), ``pretrain_size`` (float64, images), ``accuracy`` (float64, fraction,
the generalization score: ImageNet top-1 from metadata or a measured probe), ``accuracy_source``
(str).
"""

from __future__ import annotations

from typing import Any

from repscope._validation import InputError

__all__ = ["MEASURES", "MEASURE_COLUMNS", "MODEL_COLUMNS", "check_table"]

#: ``measures`` table columns, in order, with their pandas dtypes.
MEASURE_COLUMNS: dict[str, str] = {
    "model": "string",
    "layer": "string",
    "measure": "string",
    "estimator": "string",
    "k": "Int64",
    "subject": "string",
    "roi": "string",
    "target": "string",
    "value": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "n": "Int64",
}

#: ``models`` table columns, in order, with their pandas dtypes.
MODEL_COLUMNS: dict[str, str] = {
    "model": "string",
    "family": "string",
    "n_params": "float64",
    "pretrain_data": "string",
    "pretrain_size": "float64",
    "accuracy": "float64",
    "accuracy_source": "string",
}

#: Measure names and what their value is.
MEASURES: dict[str, str] = {
    "lid": "mean pointwise local intrinsic dimension at K (per estimator)",
    "lid_slope": "OLS slope of the LID profile against ln K (per estimator)",
    "lid_slope_without_largest": "the same slope without the largest K",
    "lid_cv": "coefficient of variation (sd/mean) of the LID profile",
    "pca90": "principal components explaining 90 % of the variance",
    "pca95": "principal components explaining 95 % of the variance",
    "participation_ratio": "(Σλ)² / Σλ² of the covariance spectrum",
    "effective_rank": "exp of the entropy of the normalized singular values",
    "spectrum_alpha": "power-law exponent of the eigenspectrum",
    "model_alignment": "held-out score of predicting ``target``'s PCs (ridge R²; or similarity)",
    "model_alignment_mean": "model–model alignment averaged over targets and both directions",
    "brain_r2": "mean held-out R² over the ROI's voxels",
    "brain_pearson_r": "mean held-out Pearson r over the ROI's voxels",
    "brain_noise_ceiling": "mean noise ceiling (fraction) of the test images",
    "brain_r2_normalized": "mean R² / mean noise ceiling",
    "brain_profile_distance": "L2 distance of z-scored LID profiles, model vs ROI",
    "roi_lid": "mean pointwise LID of the ROI's response patterns at K (model = 'brain')",
    "probe_accuracy": "held-out accuracy of a probe (estimator linear or knn) on a labelled set",
    "gen_lid": "mean MLE of the train embedding at K, as the head sees it (no PCA)",
    "gen_w1": "Wasserstein-1 between train and test embeddings (estimator exact or sliced)",
    "gen_lipschitz": "upper bound of the head's Lipschitz constant (estimator = head kind)",
    "gen_lipschitz_w1": "gen_lipschitz × gen_w1: the shape of the bound on the gap",
    "gen_train_accuracy": "accuracy of the head on the train images (fraction)",
    "gen_test_accuracy": "accuracy of the head on the test images (fraction)",
    "gen_train_loss": "mean cross-entropy of the head on the train images (nats)",
    "gen_test_loss": "mean cross-entropy of the head on the test images (nats)",
    "gen_gap_accuracy": "train − test accuracy of the head (fraction)",
    "gen_gap_loss": "test − train cross-entropy of the head (nats)",
    "spectral_overlap": (
        "mean top-r singular-subspace overlap ‖U_rᵀU′_r‖²/r of the weights before and after "
        "fine-tuning on ``target``, left and right (k = r; estimator = depth bin or all)"
    ),
    "spectral_baseline": "the overlap a random r-subspace has, r/d, averaged like it",
    "spectral_update_share": "share of the fine-tuning update inside the top-r subspaces",
    "spectral_sigma_change": "relative change of the top-r singular values",
    "spectral_update_norm": "mean ‖W′ − W‖_F / ‖W‖_F over the weight matrices",
    "finetune_accuracy": "held-out accuracy of the model fine-tuned on ``target`` (fraction)",
}


def check_table(table: Any, columns: dict[str, str], name: str) -> None:
    """Raise when ``table`` (a pandas DataFrame) lacks a column of the schema ``columns``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(
            f"the {name} table lacks columns {missing}; build it with the columns of "
            f"repscope.results ({', '.join(columns)})."
        )
