"""repscope: geometry and convergence of learned representations.

Local intrinsic dimension at many scales from one exact kNN search, global spectral measures
and scale-invariance metrics. The public API takes and returns NumPy arrays.
"""

import importlib
from typing import Any

from repscope._validation import InputError
from repscope.alignment.matrix import AlignmentMatrix, alignment_matrix
from repscope.alignment.null import PermutationNull, permutation_null
from repscope.alignment.similarity import (
    MutualKNN,
    MutualKNNProfile,
    canonical_correlations,
    cca_similarity,
    linear_cka,
    linear_cka_debiased,
    mutual_knn,
    mutual_knn_profile,
    procrustes_distance,
    pwcca,
    rbf_cka,
    rbf_cka_debiased,
    rsa,
    svcca,
)
from repscope.dimension.estimate import (
    DEFAULT_SCALES,
    LocalDimensionResult,
    local_dimension,
)
from repscope.dimension.gromov import gromov_wasserstein_profile
from repscope.dimension.local import AGGREGATES, ESTIMATORS
from repscope.dimension.scales import (
    DimensionalStability,
    dimensional_stability,
    neighbourhood_jaccard,
    pointwise_rank_consistency,
    profile_distance,
)
from repscope.dimension.spectral import Spectrum, spectrum
from repscope.neighbors import KNNResult, knn

__version__ = "0.1.0"

__all__ = [
    "AGGREGATES",
    "DEFAULT_SCALES",
    "ESTIMATORS",
    "AlignmentMatrix",
    "DimensionalStability",
    "GeneralizationDiagnostics",
    "InputError",
    "KNNResult",
    "LipschitzBound",
    "LocalDimension",
    "LocalDimensionResult",
    "MutualKNN",
    "MutualKNNProfile",
    "PermutationNull",
    "ProbeResult",
    "RidgeEncoder",
    "RidgeScores",
    "SpectralSharing",
    "SpectralStability",
    "Spectrum",
    "Wasserstein1",
    "__version__",
    "alignment_matrix",
    "canonical_correlations",
    "cca_similarity",
    "dimensional_stability",
    "generalization_diagnostics",
    "gromov_wasserstein_profile",
    "knn",
    "knn_probe",
    "linear_cka",
    "linear_cka_debiased",
    "linear_probe",
    "lipschitz_upper_bound",
    "local_dimension",
    "mutual_knn",
    "mutual_knn_profile",
    "neighbourhood_jaccard",
    "permutation_null",
    "pointwise_rank_consistency",
    "procrustes_distance",
    "profile_distance",
    "pwcca",
    "rbf_cka",
    "rbf_cka_debiased",
    "ridge_alignment",
    "rsa",
    "spectral_sharing",
    "spectral_stability",
    "spectrum",
    "svcca",
    "wasserstein1",
]

# names whose modules import scikit-learn (slow): loaded on first use only
_LAZY = {
    "GeneralizationDiagnostics": "repscope.generalization",
    "LipschitzBound": "repscope.generalization",
    "ProbeResult": "repscope.generalization",
    "Wasserstein1": "repscope.generalization",
    "generalization_diagnostics": "repscope.generalization",
    "knn_probe": "repscope.generalization",
    "linear_probe": "repscope.generalization",
    "lipschitz_upper_bound": "repscope.generalization",
    "wasserstein1": "repscope.generalization",
    "LocalDimension": "repscope.dimension.estimator",
    "RidgeEncoder": "repscope.alignment.ridge",
    "RidgeScores": "repscope.alignment.ridge",
    "ridge_alignment": "repscope.alignment.ridge",
    "SpectralSharing": "repscope.weightspace",
    "SpectralStability": "repscope.weightspace",
    "spectral_sharing": "repscope.weightspace",
    "spectral_stability": "repscope.weightspace",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'repscope' has no attribute {name!r}")
