"""Training: run config, learning-rate schedule, callbacks and the `train` entry point."""

from gdcld_zoo.training.config import ConfigError, TrainConfig
from gdcld_zoo.training.schedule import PolynomialDecayWithWarmup
from gdcld_zoo.training.trainer import ResumeError, TrainingDivergedError, train
from gdcld_zoo.training.training_model import TrainingModel

__all__ = [
    "ConfigError",
    "PolynomialDecayWithWarmup",
    "ResumeError",
    "TrainConfig",
    "TrainingDivergedError",
    "TrainingModel",
    "train",
]
