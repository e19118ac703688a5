"""Training: run config, learning-rate schedule, callbacks and the `train` entry point."""

import importlib

from gdcld_zoo.training.config import ConfigError, TrainConfig

# Keras and TensorFlow load only when these are first used, so that reading a
# run config (every `gdcld-zoo` command registers `train`'s options) is quick.
_LAZY = {
    "PolynomialDecayWithWarmup": "gdcld_zoo.training.schedule",
    "ResumeError": "gdcld_zoo.training.trainer",
    "TrainingDivergedError": "gdcld_zoo.training.trainer",
    "train": "gdcld_zoo.training.trainer",
    "TrainingModel": "gdcld_zoo.training.training_model",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gdcld_zoo.training' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "PolynomialDecayWithWarmup",
    "ResumeError",
    "TrainConfig",
    "TrainingDivergedError",
    "TrainingModel",
    "train",
]
