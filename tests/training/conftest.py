"""Fixtures for training tests (data and model live in `tests.training.helpers`)."""

import pytest
import tensorflow as tf

from tests.training.helpers import squares


@pytest.fixture
def datasets():
    """(train, val) batched tf.data datasets: 4 steps of 4 tiles, 1 validation batch."""
    train_images, train_masks = squares(16, seed=0)
    val_images, val_masks = squares(4, seed=1)
    train = tf.data.Dataset.from_tensor_slices((train_images, train_masks)).batch(4)
    val = tf.data.Dataset.from_tensor_slices((val_images, val_masks)).batch(4)
    return train, val
