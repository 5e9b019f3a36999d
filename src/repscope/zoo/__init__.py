"""Model zoos: the paper's timm zoo as metadata, and a mini zoo that trains here offline.

- :func:`load_zoo_table` / :func:`count_parameters`: the paper's ConvNeXt zoo and the ResNet,
  ResMLP and MAE ViT cross-checks, with sizes, training data and published ImageNet top-1.
- :data:`MINIZOO`, :func:`train_minizoo`, :func:`load_minizoo_model`: small CNN and MLP digit
  classifiers trained on the CPU in seconds, cached, with a held-out accuracy per member.
- :data:`FINETUNE_BASES`, :func:`finetune_zoo`, :func:`load_finetuned`: offline pretrained
  models (or mini-zoo members) fully fine-tuned on offline image tasks, cached as base/tuned
  pairs for the weight-space analysis.

Importing this package is cheap: torch and pandas are imported by the functions that need them.
"""

from repscope.zoo._mnist import MnistTransform, minizoo_test_split
from repscope.zoo.finetuned import (
    FINETUNE_BASES,
    FinetuneConfig,
    FineTunedModel,
    finetune_zoo,
    finetuned_name,
    load_finetuned,
)
from repscope.zoo.metadata import REQUIRED_COLUMNS, count_parameters, load_zoo_table
from repscope.zoo.minizoo import (
    MINIZOO,
    MiniZooConfig,
    MiniZooModel,
    build_minizoo_module,
    load_minizoo_model,
    train_minizoo,
)

__all__ = [
    "FINETUNE_BASES",
    "MINIZOO",
    "REQUIRED_COLUMNS",
    "FineTunedModel",
    "FinetuneConfig",
    "MiniZooConfig",
    "MiniZooModel",
    "MnistTransform",
    "build_minizoo_module",
    "count_parameters",
    "finetune_zoo",
    "finetuned_name",
    "load_finetuned",
    "load_minizoo_model",
    "load_zoo_table",
    "minizoo_test_split",
    "train_minizoo",
]
