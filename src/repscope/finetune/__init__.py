"""Fine-tuning: the spectral adapter (train only the leading singular values) and the offline
fine-tuning tasks that produce base/tuned pairs for the weight-space analysis.

- :func:`spectral_adapter` / :class:`SpectralAdapter`: W = U diag(σ + δ) Vᵀ with only δ trainable.
- :data:`TASKS`, :func:`task_data`, :func:`fine_tune`: real offline image tasks and one seeded
  training loop shared by the zoo, the study and the benchmark.

Importing this package is cheap: torch is imported by the functions that need it.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TASKS",
    "FineTuneResult",
    "SpectralAdapter",
    "TaskData",
    "fine_tune",
    "replace_head",
    "spectral_adapter",
    "task_data",
]

_LAZY = {
    "SpectralAdapter": "repscope.finetune.adapter",
    "spectral_adapter": "repscope.finetune.adapter",
    "TASKS": "repscope.finetune.tasks",
    "TaskData": "repscope.finetune.tasks",
    "task_data": "repscope.finetune.tasks",
    "FineTuneResult": "repscope.finetune.train",
    "fine_tune": "repscope.finetune.train",
    "replace_head": "repscope.finetune.train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'repscope.finetune' has no attribute {name!r}")
