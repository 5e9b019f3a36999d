"""repscope's global TwoNN and GRIDE against DADApy 0.3.4's own numbers.

DADApy needs numpy<2, so it never runs here: ``benchmarks/dadapy_oracle.py reference`` ran
it in ``.venv-oracle`` (``make oracle``) on ``tests/data/dadapy_input.npz`` (2000 points of a
5-d Gaussian rotated into R^20, and of the unit cube [0, 1]^3) and stored its results, with
the exact calls and versions, in ``tests/data/dadapy_reference.json``. Distances here come
from scikit-learn's exact brute-force ``NearestNeighbors``, so these tests do not depend on
repscope's kNN engine.

Where the definitions agree and where they differ (read from DADApy 0.3.4's
``id_estimation.py`` and ``_utils/utils.py``):

* TwoNN, linear fit -- the same. DADApy's default ``compute_id_2NN()`` (``algorithm="base"``,
  ``mu_fraction=0.9``) sorts ``mu = r2/r1``, keeps the ``int(0.9 N)`` smallest and fits
  ``-log(1 - i/N) = d log mu_(i)`` through the origin by least squares, with the full N in the
  empirical CDF. That is ``twonn_global(fit="linear", discard_fraction=0.1)``.
* TwoNN, maximum likelihood -- differs by N/(N-1). DADApy's ``algorithm="ml"`` is the unbiased
  ``(N - 1) / sum log mu``; ``twonn_global(fit="mle")`` is the MLE ``N / sum log mu``. The test
  checks ``twonn_global(fit="mle") * (N - 1) / N``.
* GRIDE -- two differences. DADApy's likelihood has ``(N - 1) log d`` where ours has
  ``N log d``, and DADApy first drops every ``mu >= q50 + 20 (q95 - q50)`` (none on these data:
  the reference records ``n_mus_filtered = 0``, so only the first difference matters). DADApy
  finds the root by bisection on [0.001, 1000] to 1e-7; ours by Brent's method. The test solves
  DADApy's score with N - 1 (must give DADApy's number: checks our reading of its definition
  and the distances) and with N (must give ``gride_global``). At n1=1, n2=2 both reduce to
  TwoNN's closed forms: DADApy's is ``(N - 1) / sum log mu``, ours ``N / sum log mu``.

Tolerance: rtol = 1e-6. The distances agree to ~1e-15; DADApy's ``curve_fit`` stops at
``ftol = 1.5e-8`` and its bisection at ``|d0 - d1| <= 1e-7`` (about 2e-8 relative at d ~ 3-5),
so 1e-6 leaves margin while still catching a change of definition: the N vs N - 1 change alone
moves GRIDE by 5e-4 at n1 = 1 down to 1.6e-5 at n1 = 32 (N = 2000). Measured agreement:
TwoNN linear 5e-12, TwoNN ML 1e-14.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq
from sklearn.neighbors import NearestNeighbors

from repscope.dimension.local import gride_global, twonn_global

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "dadapy_reference.json").read_text())
INPUT = np.load(DATA / "dadapy_input.npz")
NAMES = sorted(REFERENCE["datasets"])
RTOL = 1e-6


@pytest.fixture(scope="module", params=NAMES)
def case(request: pytest.FixtureRequest) -> tuple[np.ndarray, dict]:
    X = INPUT[request.param]
    ref = REFERENCE["datasets"][request.param]
    n_max = max(ref["gride"]["n2"])
    nn = NearestNeighbors(n_neighbors=n_max, algorithm="brute").fit(X)
    distances, _ = nn.kneighbors()  # no query: each point's own row excludes itself
    return distances, ref


def _dadapy_gride_score(d: float, mus: np.ndarray, n1: int, n2: int, n_term: float) -> float:
    """DADApy 0.3.4's ``_neg_dloglik_did`` with ``N - 1`` made a parameter (``n_term``)."""
    one_m_mus_d = 1.0 - mus ** (-d)
    return float(np.sum(((1 - n2 + n1) / one_m_mus_d + n2 - 1.0) * np.log(mus)) - n_term / d)


def _gride_reference(mus: np.ndarray, n1: int, n2: int, n_term: float) -> float:
    return brentq(_dadapy_gride_score, 1e-3, 1e3, args=(mus, n1, n2, n_term), xtol=1e-12)


def test_reference_matches_input() -> None:
    assert REFERENCE["versions"]["dadapy"] == "0.3.4"
    for name in NAMES:
        assert list(INPUT[name].shape) == REFERENCE["datasets"][name]["shape"]


def test_twonn_linear_equals_dadapy_default(case: tuple[np.ndarray, dict]) -> None:
    distances, ref = case
    ours = twonn_global(distances, fit="linear", discard_fraction=0.1)
    assert ours == pytest.approx(ref["twonn_linear"]["id"], rel=RTOL)


def test_twonn_mle_is_dadapy_ml_times_n_over_n_minus_1(case: tuple[np.ndarray, dict]) -> None:
    distances, ref = case
    n = distances.shape[0]
    ours = twonn_global(distances, fit="mle")
    assert ours * (n - 1) / n == pytest.approx(ref["twonn_ml"]["id"], rel=RTOL)


def test_gride_differs_from_dadapy_only_by_n_log_d(case: tuple[np.ndarray, dict]) -> None:
    distances, ref = case
    n = distances.shape[0]
    gride = ref["gride"]
    assert gride["n_mus_filtered"] == [0] * len(gride["n1"])  # DADApy's outlier cut: inactive
    for n1, n2, dadapy_id in zip(gride["n1"], gride["n2"], gride["id"], strict=True):
        mus = distances[:, n2 - 1] / distances[:, n1 - 1]
        assert _gride_reference(mus, n1, n2, n - 1) == pytest.approx(dadapy_id, rel=RTOL)
        ours = gride_global(distances, n1=n1, n2=n2)
        assert ours == pytest.approx(_gride_reference(mus, n1, n2, n), rel=RTOL)
        # the N vs N - 1 change is visible at this tolerance, so the tests above can tell
        assert abs(ours / dadapy_id - 1) > 5 * RTOL


def test_gride_first_scale_is_twonn_mle(case: tuple[np.ndarray, dict]) -> None:
    distances, ref = case
    n = distances.shape[0]
    assert ref["gride"]["n1"][0] == 1 and ref["gride"]["n2"][0] == 2
    assert ref["gride"]["id"][0] == pytest.approx(ref["twonn_ml"]["id"], rel=RTOL)
    ours = gride_global(distances, n1=1, n2=2)
    assert ours == pytest.approx(n / np.log(distances[:, 1] / distances[:, 0]).sum(), rel=RTOL)
