"""The simulated experiment's design: shared images, per-subject image lists, trial order.

NSD's scheme, shrunk to the stimulus set: ``subjectim`` lists each subject's images (0-based
nsdIds here; the writer adds 1), its first ``n_shared`` columns are the shared images, the
same for every subject; ``masterordering`` gives, for every trial, the column of
``subjectim`` shown, and is the same for every subject. Unlike NSD, every subject sees every
image (so all subjects share rows), in a subject-specific order outside the shared block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.io.nsd_layout import NsdLayout, write_expdesign, write_stim_info

__all__ = ["Design", "make_design", "shared_count", "write_design"]

#: NSD's shared set: 1000 images seen by every subject.
_NSD_SHARED = 1000


def shared_count(n_images: int) -> int:
    """Shared images: a tenth of the set, rounded up, at most NSD's 1000."""
    return min(_NSD_SHARED, math.ceil(n_images / 10))


@dataclass(frozen=True)
class Design:
    """Who saw which image on which trial.

    Attributes
    ----------
    subjectim : ndarray of int, shape (n_subjects, n_images)
        0-based nsdIds per subject; the first ``n_shared`` columns are the shared images.
    masterordering : ndarray of int, shape (n_trials,)
        0-based ``subjectim`` column shown on each trial (trial = image × repeat).
    n_shared : int
    repeats : int
        Presentations of every image.
    trials_per_session : int
    """

    subjectim: np.ndarray
    masterordering: np.ndarray
    n_shared: int
    repeats: int
    trials_per_session: int

    @property
    def n_trials(self) -> int:
        """Trials per subject: n_images × repeats."""
        return int(self.masterordering.size)

    @property
    def n_sessions(self) -> int:
        """Sessions per subject; the last one holds the remaining trials."""
        return math.ceil(self.n_trials / self.trials_per_session)

    @property
    def shared(self) -> np.ndarray:
        """0-based nsdIds of the shared images, sorted, shape (n_shared,)."""
        return np.sort(self.subjectim[0, : self.n_shared])

    def trial_images(self, subject: int) -> np.ndarray:
        """0-based nsdId shown on each trial to 1-based ``subject``, shape (n_trials,)."""
        return self.subjectim[subject - 1, self.masterordering]

    def session_trials(self, session: int) -> slice:
        """Trials (0-based, within the subject's run) of 1-based ``session``."""
        start = (session - 1) * self.trials_per_session
        return slice(start, min(start + self.trials_per_session, self.n_trials))


def make_design(
    n_images: int,
    n_subjects: int,
    repeats: int,
    trials_per_session: int,
    rng: np.random.Generator,
) -> Design:
    """A seeded design: a random shared subset, random subject orders, a random trial order."""
    n_shared = shared_count(n_images)
    shared = np.sort(rng.choice(n_images, size=n_shared, replace=False))
    rest = np.setdiff1d(np.arange(n_images), shared)
    subjectim = np.stack(
        [np.concatenate([shared, rng.permutation(rest)]) for _ in range(n_subjects)]
    )
    masterordering = rng.permutation(np.repeat(np.arange(n_images), repeats))
    return Design(subjectim, masterordering, n_shared, repeats, trials_per_session)


def stim_info_table(design: Design, source_ids: Sequence[str]) -> Any:
    """``nsd_stim_info_merged.csv``'s table for the simulated images.

    Columns: ``nsdId`` (0-based), ``source_id`` (the stimulus id in the source set),
    ``shared1000`` (bool), and per subject K ``subjectK`` (1: seen) and ``subjectK_repR``,
    R < repeats, the 1-based trial number of the R-th presentation (trials counted over the
    subject's whole experiment, as NSD does).
    """
    import pandas as pd

    n_images = design.subjectim.shape[1]
    table = {
        "nsdId": np.arange(n_images),
        "source_id": list(source_ids),
        "shared1000": np.isin(np.arange(n_images), design.shared),
    }
    for subject in range(1, design.subjectim.shape[0] + 1):
        images = design.trial_images(subject)
        # stable sort by image: each image's trials in presentation order
        trials = np.argsort(images, kind="stable").reshape(n_images, design.repeats) + 1
        table[f"subject{subject}"] = np.ones(n_images, dtype=np.int64)
        for rep in range(design.repeats):
            table[f"subject{subject}_rep{rep}"] = trials[:, rep]
    return pd.DataFrame(table)


def write_design(layout: NsdLayout, design: Design, source_ids: Sequence[str]) -> None:
    """Write ``nsd_expdesign.mat`` (1-based, as NSD) and ``nsd_stim_info_merged.csv``."""
    write_expdesign(
        layout.expdesign,
        masterordering=design.masterordering + 1,
        subjectim=design.subjectim + 1,
        sharedix=design.shared + 1,
    )
    write_stim_info(layout.stim_info, stim_info_table(design, source_ids))
