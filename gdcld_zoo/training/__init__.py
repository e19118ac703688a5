"""Training: run config, learning-rate schedule, callbacks and the `train` entry point."""

from gdcld_zoo.lazy_imports import lazy_attributes
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
__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "ConfigError",
    "PolynomialDecayWithWarmup",
    "ResumeError",
    "TrainConfig",
    "TrainingDivergedError",
    "TrainingModel",
    "train",
]
