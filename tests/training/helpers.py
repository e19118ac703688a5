"""Tiny in-memory landslide data and a tiny registered model for training tests.

Tracing a training step of even `segformer_tiny` takes ~30 s on the shared
2-core machine, so the engine tests train `engine_test_cnn`, a three-layer
CNN registered here (`public=False`); one slow test trains `segformer_tiny`.
"""

import keras
import numpy as np

from gdcld_zoo.registry import ModelSpec, get_model_spec, register_model
from gdcld_zoo.errors import UnknownNameError

TEST_MODEL = "engine_test_cnn"


def build_engine_test_cnn(num_classes=1, input_shape=(None, None, 3), filters=8, activation="relu", batch_norm=True):
    # activation="linear" lets NaN inputs reach the loss (oneDNN's ReLU turns NaN into 0).
    # batch_norm=False: a model that a vanishing learning rate freezes (batch-norm
    # moving statistics follow the data whatever the learning rate).
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(filters, 3, padding="same")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation(activation)(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation=activation)(x)
    logits = keras.layers.Conv2D(num_classes, 1, dtype="float32")(x)
    return keras.Model(inputs, logits, name=TEST_MODEL)


try:
    get_model_spec(TEST_MODEL)
except UnknownNameError:
    register_model(
        ModelSpec(name=TEST_MODEL, builder=build_engine_test_cnn, description="training tests", public=False)
    )


def squares(count, size=32, seed=0):
    """Images (N, size, size, 3) normalised around 0 and masks (N, size, size, 1) with 0/1/255."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.3, size=(count, size, size, 3)).astype("float32")
    masks = np.zeros((count, size, size, 1), "uint8")
    for i in range(count):
        y, x = rng.integers(0, size - 12, size=2)
        images[i, y : y + 12, x : x + 12] += 1.5
        masks[i, y : y + 12, x : x + 12] = 1
    masks[:, :2] = 255  # a nodata strip
    return images, masks

