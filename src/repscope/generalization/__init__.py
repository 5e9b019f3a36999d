"""Generalization from embedding geometry (METHOD.md §6): probes and the third paper's diagnostics.

- :func:`linear_probe`, :func:`knn_probe`: measured generalization scores of an embedding on
  a labelled stimulus set with a seeded held-out split.
- :func:`wasserstein1`, :func:`wasserstein_convergence`: W1 between two embedding samples
  (exact optimal transport with POT, or sliced), and its ``n^(−1/d)`` convergence.
- :func:`lipschitz_upper_bound`, :func:`lipschitz_estimate`: the head's Lipschitz constant,
  bounded above by the product of its layers' spectral norms, and estimated from below.
- :func:`generalization_diagnostics`: all of them for one model, with its generalization gap.
"""

from repscope.generalization.diagnostics import (
    GeneralizationDiagnostics,
    generalization_diagnostics,
)
from repscope.generalization.lipschitz import (
    LipschitzBound,
    lipschitz_estimate,
    lipschitz_upper_bound,
)
from repscope.generalization.probes import ProbeResult, knn_probe, linear_probe, probe_split
from repscope.generalization.wasserstein import (
    Wasserstein1,
    WassersteinConvergence,
    wasserstein1,
    wasserstein_convergence,
)

__all__ = [
    "GeneralizationDiagnostics",
    "LipschitzBound",
    "ProbeResult",
    "Wasserstein1",
    "WassersteinConvergence",
    "generalization_diagnostics",
    "knn_probe",
    "linear_probe",
    "lipschitz_estimate",
    "lipschitz_upper_bound",
    "probe_split",
    "wasserstein1",
    "wasserstein_convergence",
]
