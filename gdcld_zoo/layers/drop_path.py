"""Stochastic depth (Huang et al., 2016) for residual branches of transformer blocks."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class DropPath(layers.Layer):
    """Drops a whole residual branch per sample with probability `rate` in training.

    Kept surviving samples are scaled by 1 / (1 - rate), so inference is the
    identity. Written here because keras.layers has no per-sample drop-path.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed) if rate > 0 else None

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        noise = keras.random.uniform(shape, dtype=x.dtype, seed=self._seed_generator)
        return x / keep * ops.floor(keep + noise)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
