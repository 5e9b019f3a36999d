"""repscope: geometry and convergence of learned representations.

Local intrinsic dimension at many scales from one exact kNN search, global spectral measures
and scale-invariance metrics. The public API takes and returns NumPy arrays.
"""

from typing import Any

from repscope._validation import InputError
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
    "DimensionalStability",
    "InputError",
    "KNNResult",
    "LocalDimension",
    "LocalDimensionResult",
    "Spectrum",
    "__version__",
    "dimensional_stability",
    "gromov_wasserstein_profile",
    "knn",
    "local_dimension",
    "neighbourhood_jaccard",
    "pointwise_rank_consistency",
    "profile_distance",
    "spectrum",
]


def __getattr__(name: str) -> Any:
    # the scikit-learn estimator imports sklearn (slow); load it on first use only
    if name == "LocalDimension":
        from repscope.dimension.estimator import LocalDimension

        return LocalDimension
    raise AttributeError(f"module 'repscope' has no attribute {name!r}")
