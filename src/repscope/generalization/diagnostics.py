"""The third paper's generalization diagnostics for one model on a labelled train/test set.

The population risk of a predictor ``head ∘ embedding`` is bounded through the Wasserstein
convergence of the empirical embedding distribution: a term of the shape
``Lip(head) · W1(train, test)``, where W1 shrinks like ``n^(−1/d)`` with ``d`` the intrinsic
dimension of the embedding (METHOD.md §6). :func:`generalization_diagnostics` measures every
factor of that term on the final-layer embedding, and the gap it bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from repscope._validation import InputError, check_embedding
from repscope.generalization.lipschitz import LipschitzBound, lipschitz_upper_bound
from repscope.generalization.probes import linear_probe
from repscope.generalization.wasserstein import Wasserstein1, wasserstein1

__all__ = ["GeneralizationDiagnostics", "generalization_diagnostics", "stacked_split"]


@dataclass(frozen=True)
class GeneralizationDiagnostics:
    """Geometry of a model's final-layer embedding next to its generalization gap.

    Attributes
    ----------
    head : {"own", "probe"}
        ``"own"``: the model's own head (trained with the model on the train set);
        ``"probe"``: a linear probe fit on the train embeddings (its penalty chosen by CV).
    lid : float
        Mean Levina–Bickel MLE of the train embeddings at ``lid_k`` neighbours (no PCA).
    lid_k : int
    wasserstein : Wasserstein1
        W1 between the train and test embedding distributions, in embedding units.
    lipschitz : LipschitzBound
        Upper bound of the head's Lipschitz constant (logits per embedding unit).
    train_accuracy, test_accuracy : float
        Fractions, of the head's argmax prediction.
    train_loss, test_loss : float
        Mean cross-entropy of the head's logits, in nats.
    n_train, n_test : int
        Embedded stimuli of each split.
    """

    head: str
    lid: float
    lid_k: int
    wasserstein: Wasserstein1
    lipschitz: LipschitzBound
    train_accuracy: float
    test_accuracy: float
    train_loss: float
    test_loss: float
    n_train: int
    n_test: int

    @property
    def gap_accuracy(self) -> float:
        """Train minus test accuracy (fraction)."""
        return self.train_accuracy - self.test_accuracy

    @property
    def gap_loss(self) -> float:
        """Test minus train cross-entropy (nats): positive when the model generalizes worse."""
        return self.test_loss - self.train_loss

    @property
    def lipschitz_w1(self) -> float:
        """``Lip(head) · W1(train, test)``: the shape of the bound on the gap in logit units."""
        return self.lipschitz.value * self.wasserstein.distance

    def to_dict(self) -> dict[str, Any]:
        """JSON-able scalars: every attribute, the gaps and ``lipschitz_w1``."""
        return {
            "head": self.head,
            "lid": self.lid,
            "lid_k": self.lid_k,
            "w1": self.wasserstein.distance,
            "w1_method": self.wasserstein.method,
            "w1_n_train": self.wasserstein.n_a,
            "w1_n_test": self.wasserstein.n_b,
            "w1_subsampled": self.wasserstein.subsampled,
            "lipschitz": self.lipschitz.value,
            "lipschitz_w1": self.lipschitz_w1,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "train_loss": self.train_loss,
            "test_loss": self.test_loss,
            "gap_accuracy": self.gap_accuracy,
            "gap_loss": self.gap_loss,
            "n_train": self.n_train,
            "n_test": self.n_test,
        }


def generalization_diagnostics(
    train: npt.ArrayLike,
    test: npt.ArrayLike,
    y_train: npt.ArrayLike,
    y_test: npt.ArrayLike,
    *,
    head: Any = None,
    k: int = 20,
    w1_method: Literal["auto", "exact", "sliced"] = "auto",
    max_exact: int = 5000,
    n_projections: int = 1000,
    cv: int = 5,
    random_state: int = 0,
    device: str = "auto",
) -> GeneralizationDiagnostics:
    """Final-layer LID, train–test W1, the head's Lipschitz bound and the generalization gap.

    Parameters
    ----------
    train : array-like of shape (n_train, n_features)
        Final-layer (penultimate) embedding of the training stimuli: the head's input.
    test : array-like of shape (n_test, n_features)
        The same layer for the held-out stimuli.
    y_train : array-like of shape (n_train,)
        Class labels; with an own ``head``, integers indexing its logits.
    y_test : array-like of shape (n_test,)
    head : torch.nn.Module, optional
        The model's own map from embedding to logits (e.g. its last ``nn.Linear``, or an
        ``nn.Sequential`` head). None fits a linear probe on ``train``
        (:func:`repscope.generalization.linear_probe`) and uses it as the head.
    k : int
        Neighbours of the LID estimate.
    w1_method, max_exact, n_projections
        As in :func:`repscope.generalization.wasserstein1`: exact optimal transport (POT)
        while both sets have at most ``max_exact`` points, sliced W1 beyond.
    cv : int
        Folds choosing the probe's penalty (``head=None`` only).
    random_state : int
        Seeds the probe's folds and any W1 subsample or projection.
    device : str
        Where the kNN search runs.

    Returns
    -------
    GeneralizationDiagnostics

    References
    ----------
    "Understanding Generalization from Embedding Dimension and Distributional Convergence"
    (2026): the bound ``risk gap ≲ Lip(head) · W1``, with ``W1 ~ n^(−1/d)``.
    """
    from repscope.dimension.estimate import local_dimension

    X_train = check_embedding(train, name="train")
    X_test = check_embedding(test, name="test", min_samples=1)
    if X_train.shape[1] != X_test.shape[1]:
        raise InputError(
            f"train has {X_train.shape[1]} features but test has {X_test.shape[1]}; embed both "
            "splits with the same layer."
        )
    y_tr, y_te = _labels(y_train, len(X_train), "y_train"), _labels(y_test, len(X_test), "y_test")
    if head is None:
        kind = "probe"
        scores, bound = _probe_head(X_train, X_test, y_tr, y_te, cv, random_state)
    else:
        kind = "own"
        scores = _own_head_scores(head, X_train, X_test, y_tr, y_te)
        bound = lipschitz_upper_bound(head)
    lid = local_dimension(X_train, k=[k], pca=None, device=device).profile[k]
    w1 = wasserstein1(
        X_train,
        X_test,
        method=w1_method,
        max_exact=max_exact,
        n_projections=n_projections,
        random_state=random_state,
    )
    return GeneralizationDiagnostics(
        head=kind,
        lid=float(lid),
        lid_k=int(k),
        wasserstein=w1,
        lipschitz=bound,
        **scores,
        n_train=len(X_train),
        n_test=len(X_test),
    )


def _labels(y: npt.ArrayLike, n: int, name: str) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != n:
        raise InputError(
            f"{name} has shape {labels.shape} but its embedding has {n} rows; pass one label "
            "per row."
        )
    return labels


def stacked_split(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """``(X, y, split)`` for a probe: train rows then test rows, and their positions."""
    n_train = len(train[0])
    split = (np.arange(n_train), np.arange(n_train, n_train + len(test[0])))
    return np.vstack([train[0], test[0]]), np.concatenate([train[1], test[1]]), split


def _probe_head(
    X_train: np.ndarray,
    X_test: np.ndarray,
    y_train: np.ndarray,
    y_test: np.ndarray,
    cv: int,
    seed: int,
) -> tuple[dict[str, float], LipschitzBound]:
    """Scores of a linear probe fit on train, and its Lipschitz bound (its raw-unit weights)."""
    X, y, split = stacked_split((X_train, y_train), (X_test, y_test))
    probe = linear_probe(X, y, split=split, cv=cv, random_state=seed)
    scores = {
        "train_accuracy": probe.train_accuracy,
        "test_accuracy": probe.test_accuracy,
        "train_loss": float(probe.train_loss),
        "test_loss": float(probe.test_loss),
    }
    return scores, lipschitz_upper_bound([probe.coef])


def _own_head_scores(
    head: Any, X_train: np.ndarray, X_test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray
) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``head``'s logits on both splits."""
    train_acc, train_loss = _head_scores(head, X_train, y_train, "y_train")
    test_acc, test_loss = _head_scores(head, X_test, y_test, "y_test")
    return {
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "train_loss": train_loss,
        "test_loss": test_loss,
    }


def _head_scores(head: Any, X: np.ndarray, y: np.ndarray, name: str) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(
            f"{name} has dtype {y.dtype}; an own head needs integer labels that index its "
            "logits (0 … n_classes − 1)."
        )
    param = next(head.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    where = param.device if param is not None else torch.device("cpu")
    was_training = head.training
    head.eval()
    try:
        with torch.no_grad():
            logits = head(torch.as_tensor(X, dtype=dtype, device=where)).double().cpu()
    finally:
        head.train(was_training)
    if logits.ndim != 2 or y.min() < 0 or y.max() >= logits.shape[1]:
        raise InputError(
            f"the head returns logits of shape {tuple(logits.shape)} but {name} holds labels "
            f"{int(y.min())} … {int(y.max())}; pass labels 0 … n_classes − 1 for its outputs."
        )
    target = torch.as_tensor(y, dtype=torch.long)
    accuracy = float((logits.argmax(dim=1) == target).double().mean())
    return accuracy, float(F.cross_entropy(logits, target))
