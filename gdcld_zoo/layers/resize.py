"""Resizing to arbitrary (dynamic) sizes as small matrix products, as PyTorch does it.

Three operations of the reference implementations have no exact Keras layer
that also works on dynamic heights and widths:

- PyTorch's adaptive average pooling (PSPNet / UperNet pyramid pooling to 1, 2,
  3 and 6 bins of a map whose size is not a multiple of the bins);
- bilinear resizing to a size that is not an integer multiple
  (`F.interpolate(..., mode="bilinear", align_corners=False)`);
- bicubic resizing (`mode="bicubic"`, Keys kernel with a = -0.75) of position
  embeddings. `keras.ops.image.resize` uses a = -0.5 on the TensorFlow and JAX
  backends and a = -0.75 on torch, so its results depend on the backend.

Each axis is resized by a (out, in) weight matrix built from `keras.ops`
(`arange`, comparisons), so sizes can be symbolic tensors (a TensorFlow graph
with unknown height and width), and the result is the same on every backend and
equal to PyTorch's to float precision. Sizes known as Python ints stay Python
ints: under `jax.jit` every shape is static, and `arange` of a traced size fails.
"""

import keras
from keras import layers, ops

# PyTorch's bicubic convolution coefficient (`upsample_bicubic2d`).
CUBIC_A = -0.75


def _as_float(size):
    return float(size) if isinstance(size, int) else ops.cast(size, "float32")


def _as_int(size):
    return size if isinstance(size, int) else ops.cast(size, "int32")


def _one_hot_rows(indices, in_size):
    """(out,) float indices -> (out, in) rows with a 1 at each index."""
    grid = ops.arange(in_size, dtype="float32")
    return ops.cast(ops.equal(grid[None, :], indices[:, None]), "float32")


def _source_positions(out_size, in_size):
    """Half-pixel source coordinate of every output position (align_corners=False)."""
    scale = _as_float(in_size) / _as_float(out_size)
    return (ops.arange(out_size, dtype="float32") + 0.5) * scale - 0.5


def linear_resize_matrix(out_size, in_size):
    """(out, in) weights of 1-D linear resizing, PyTorch `align_corners=False`."""
    source = ops.maximum(_source_positions(out_size, in_size), 0.0)
    last = _as_float(in_size) - 1.0
    low = ops.floor(source)
    frac = source - low
    low = ops.minimum(low, last)
    high = ops.minimum(low + 1.0, last)
    return (1.0 - frac)[:, None] * _one_hot_rows(low, in_size) + frac[:, None] * _one_hot_rows(high, in_size)


def _cubic_near(x):
    return ((CUBIC_A + 2.0) * x - (CUBIC_A + 3.0)) * x * x + 1.0


def _cubic_far(x):
    return ((CUBIC_A * x - 5.0 * CUBIC_A) * x + 8.0 * CUBIC_A) * x - 4.0 * CUBIC_A


def cubic_resize_matrix(out_size, in_size):
    """(out, in) weights of 1-D bicubic resizing, PyTorch `align_corners=False`
    (taps outside the input are clamped to the border, as PyTorch does)."""
    source = _source_positions(out_size, in_size)
    last = _as_float(in_size) - 1.0
    low = ops.floor(source)
    t = source - low
    weights = (_cubic_far(t + 1.0), _cubic_near(t), _cubic_near(1.0 - t), _cubic_far(2.0 - t))
    matrix = 0.0
    for offset, weight in zip((-1.0, 0.0, 1.0, 2.0), weights):
        index = ops.clip(low + offset, 0.0, last)
        matrix = matrix + weight[:, None] * _one_hot_rows(index, in_size)
    return matrix


def adaptive_average_matrix(out_size, in_size):
    """(out, in) weights of PyTorch's adaptive average pooling along one axis:
    bin i averages inputs floor(i*in/out) .. ceil((i+1)*in/out) - 1."""
    bins = ops.arange(out_size, dtype="int32")
    in_size = _as_int(in_size)
    out_size = _as_int(out_size)
    start = ops.floor_divide(bins * in_size, out_size)
    end = ops.floor_divide((bins + 1) * in_size + out_size - 1, out_size)
    grid = ops.arange(in_size, dtype="int32")[None, :]
    inside = ops.logical_and(grid >= start[:, None], grid < end[:, None])
    return ops.cast(inside, "float32") / ops.cast(end - start, "float32")[:, None]


def resize_with_matrices(x, rows, cols):
    """Apply (out_h, H) `rows` and (out_w, W) `cols` to a (B, H, W, C) tensor."""
    rows = ops.cast(rows, x.dtype)
    cols = ops.cast(cols, x.dtype)
    x = ops.einsum("oh,bhwc->bowc", rows, x)
    return ops.einsum("pw,bowc->bopc", cols, x)


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class AdaptiveAveragePooling2D(layers.Layer):
    """PyTorch's `nn.AdaptiveAvgPool2d(output_size)` for (B, H, W, C) maps of any size.

    Example:
    >>> import numpy as np
    >>> tuple(AdaptiveAveragePooling2D(3)(np.ones((1, 16, 10, 2), "float32")).shape)
    (1, 3, 3, 2)
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = int(output_size)

    def call(self, x):
        height, width = ops.shape(x)[1], ops.shape(x)[2]
        rows = adaptive_average_matrix(self.output_size, height)
        cols = adaptive_average_matrix(self.output_size, width)
        return resize_with_matrices(x, rows, cols)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_size, self.output_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class BilinearResizeLike(layers.Layer):
    """Resize `x` bilinearly (PyTorch `align_corners=False`) to the height and
    width of `reference`: `layer([x, reference])`.

    Example:
    >>> import numpy as np
    >>> tuple(BilinearResizeLike()([np.ones((1, 6, 6, 2), "float32"), np.ones((1, 16, 10, 1), "float32")]).shape)
    (1, 16, 10, 2)
    """

    def call(self, inputs):
        x, reference = inputs
        in_height, in_width = ops.shape(x)[1], ops.shape(x)[2]
        out_height, out_width = ops.shape(reference)[1], ops.shape(reference)[2]
        rows = linear_resize_matrix(out_height, in_height)
        cols = linear_resize_matrix(out_width, in_width)
        return resize_with_matrices(x, rows, cols)

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])
