"""Weight-space geometry: the spectral basis pretraining builds and fine-tuning reuses.

- :func:`spectral_stability`: per layer and rank, how much of a base model's singular basis
  survives fine-tuning (index-wise alignment, subspace overlap beside its random baseline r/d,
  the share of the update inside the pretrained subspaces, singular-value change).
- :func:`spectral_sharing`: whether fine-tunes on different tasks move the weights along the
  same directions, against a null of random orthogonal rotations.
- :func:`weight_matrices`: the matrices both read (METHOD.md §10).
"""

from repscope.weightspace.sharing import SpectralSharing, spectral_sharing
from repscope.weightspace.stability import (
    DEFAULT_RANKS,
    SUMMARY_RANK,
    SpectralStability,
    spectral_stability,
)

__all__ = [
    "DEFAULT_RANKS",
    "SUMMARY_RANK",
    "SpectralSharing",
    "SpectralStability",
    "spectral_sharing",
    "spectral_stability",
]
