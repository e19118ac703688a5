"""Bilinear upsampling by integer factors, identical to PyTorch `align_corners=False`.

Why not Keras's own layers: `keras.layers.Resizing` defaults to `training=True`
in Keras 3.15 and leaks training mode into the batch norm after it, and
`UpSampling2D(interpolation="bilinear")` / `keras.ops.image.resize` check the
target size with Python comparisons, so they fail inside a `tf.function` whose
height and width are unknown (tf.data with varied tile sizes, ONNX export with
dynamic sizes).

With half-pixel centres an integer factor `k` makes every output row `k*i + r`
a fixed blend of two input rows (edges replicated), so the upsampling is `k`
two-tap blends of shifted slices per axis, interleaved by a reshape: exact,
separable, and made of `keras.ops` that run on every backend and export to ONNX.
"""

import keras
from keras import layers, ops


def _phase_weights(factor):
    """For each output phase r: (weight of previous, current, next input row)."""
    weights = []
    for r in range(factor):
        offset = (r + 0.5) / factor - 0.5
        if offset < 0:
            weights.append((-offset, 1.0 + offset, 0.0))
        else:
            weights.append((0.0, 1.0 - offset, offset))
    return weights


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class BilinearUpsample(layers.Layer):
    """Upsample (B, H, W, C) by an integer `factor`, bilinear with half-pixel centres.

    Example:
    >>> import numpy as np
    >>> BilinearUpsample(2)(np.array([0.0, 1.0]).reshape(1, 1, 2, 1))[0, 0, :, 0]
    array([0.  , 0.25, 0.75, 1.  ], dtype=float32)
    """

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        if int(factor) != factor or factor < 1:
            raise ValueError(f"factor must be a positive integer, got {factor!r}.")
        self.factor = int(factor)

    def _upsample_axis(self, x, axis):
        first, last = (x[:, :1], x[:, -1:]) if axis == 1 else (x[:, :, :1], x[:, :, -1:])
        padded = ops.concatenate([first, x, last], axis=axis)
        neighbours = [
            padded[:, :-2] if axis == 1 else padded[:, :, :-2],
            padded[:, 1:-1] if axis == 1 else padded[:, :, 1:-1],
            padded[:, 2:] if axis == 1 else padded[:, :, 2:],
        ]
        phases = []
        for weights in _phase_weights(self.factor):
            terms = [n * w for n, w in zip(neighbours, weights) if w]
            phases.append(terms[0] + terms[1] if len(terms) == 2 else terms[0])
        stacked = ops.stack(phases, axis=axis + 1)
        shape = ops.shape(x)
        if axis == 1:
            return ops.reshape(stacked, (-1, shape[1] * self.factor, shape[2], shape[3]))
        return ops.reshape(stacked, (-1, shape[1], shape[2] * self.factor, shape[3]))

    def call(self, x):
        if self.factor == 1:
            return x
        return self._upsample_axis(self._upsample_axis(x, 1), 2)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        scale = lambda side: None if side is None else side * self.factor  # noqa: E731
        return (batch, scale(height), scale(width), channels)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def bilinear_upsample(x, factor, name=None, dtype=None):
    """Upsample a (B, H, W, C) tensor by an integer `factor` with bilinear sampling."""
    if factor == 1:
        return x
    return BilinearUpsample(factor, name=name, dtype=dtype)(x)


def full_resolution_logits(logits, factor, name="logits"):
    """The output contract of every model: logits at input resolution, float32.

    `logits` are at stride `factor`; the result is (B, factor*H, factor*W, K) in
    float32 even under a mixed-precision policy, so losses and metrics are
    always computed in full precision.
    """
    if factor == 1:
        return layers.Activation("linear", dtype="float32", name=name)(logits)
    return BilinearUpsample(factor, dtype="float32", name=name)(logits)
