"""Shared test setup: quiet TensorFlow, quick JAX compiles, and seed every test the same way."""

import os

from tests.backends import JAX_XLA_FLAGS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ.setdefault("XLA_FLAGS", JAX_XLA_FLAGS)

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)
    yield
