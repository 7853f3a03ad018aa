"""Typed, frozen configuration for a facegan run.

A `Config` is the whole description of a run: data, model, loss, augmentation,
optimizers and the training schedule, one frozen section each. It is
validated when it is built, so a bad value fails before any data is read or
any model is built, with a message that names the field, the value received
and what is allowed.

- `common`: `ConfigError`, the allowed values and the limits.
- `data_model`: the `data` and `model` sections.
- `training`: the `loss`, `augment`, `optim` and `train` sections.
- `run_config`: `Config` itself, with TOML/JSON reading and writing.

This package imports no TensorFlow: the CLI can validate a config (and print
`--help`) in milliseconds.
"""

from facegan.config.common import (
    ARCHITECTURES,
    AUGMENTS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIZE,
    DIFFAUGMENT_OPS,
    EMBEDDED_LFW,
    LOSSES,
    PRECISIONS,
    STRATEGIES,
    UPDATES,
    ConfigError,
)
from facegan.config.data_model import DataConfig, ModelConfig, parse_label_classes
from facegan.config.run_config import RESUME_CHANGES, SECTIONS, Config
from facegan.config.training import AugmentConfig, LossConfig, OptimConfig, TrainConfig
from facegan.errors import UserError

__all__ = [
    "ARCHITECTURES",
    "AUGMENTS",
    "AugmentConfig",
    "Config",
    "ConfigError",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIZE",
    "DIFFAUGMENT_OPS",
    "DataConfig",
    "EMBEDDED_LFW",
    "LOSSES",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "PRECISIONS",
    "RESUME_CHANGES",
    "SECTIONS",
    "STRATEGIES",
    "TrainConfig",
    "UPDATES",
    "UserError",
    "parse_label_classes",
]
